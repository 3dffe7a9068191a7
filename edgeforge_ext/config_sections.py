"""The configuration after the cascade, as frozen typed sections (as cibuildwheel's BuildOptions).

`config.load_config` resolves every key with its source in one place (settings.KEYS are the table);
`sections_from` turns those values into these dataclasses once. Everyone outside the config layer reads
`config.build.k8s_versions`, never `config["build.k8s_versions"]` (scripts/check-architecture checks).
Each field is the key `<section>.<field>` of settings.KEYS; a test checks the two never drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

# A [[table]] of the config file (users, site.network) as read from TOML: plain values.
Table = Mapping[str, object]


@dataclass(frozen=True)
class CanvosSettings:
    url: str
    ref: str


@dataclass(frozen=True)
class BuildSettings:
    arch: str
    os: str
    os_version: str
    k8s_distribution: str
    k8s_versions: tuple[str, ...]
    all_k8s_versions: bool
    custom_tag: str
    iso_name: str
    image_registry: str
    image_repo: str  # as configured; Config.image_repo falls back to the OS distribution
    pe_version: str
    target: str
    skip: tuple[str, ...]
    extra_args: Mapping[str, str]
    http_proxy: str
    https_proxy: str
    no_proxy: str
    update_kernel: bool
    cis_hardening: bool
    fips_enabled: bool
    base_image: str
    cluster_config: str
    edge_custom_config: str
    uki: bool

    @property
    def proxies(self) -> dict[str, str]:
        """The build's proxy settings by the names CanvOS's Earthfile declares them (empty ones too)."""
        return {"HTTP_PROXY": self.http_proxy, "HTTPS_PROXY": self.https_proxy, "NO_PROXY": self.no_proxy}
    allow_unlisted_k8s_version: bool
    ubuntu_pro_key_file: str
    ca_certs: tuple[str, ...]
    boot_test: bool
    boot_test_timeout: int
    inputs_registry: str  # HOST/PREFIX the build pulls its inputs from ("": their sources)


@dataclass(frozen=True)
class RegistrySettings:
    domain: str
    username: str
    password_file: str
    insecure: bool
    repository_name: str
    certificates: tuple[str, ...]
    mapping_rules: Mapping[str, str]
    registries: tuple[Table, ...]  # raw tables; Config.registries holds them parsed (RegistryEntry)
    k8s_registries_yaml: bool


@dataclass(frozen=True)
class SiteSettings:
    palette_endpoint: str
    project_name: str
    project_uid: str
    name: str
    tags: Mapping[str, str]
    ca_certs: tuple[str, ...]
    http_proxy: str
    https_proxy: str
    no_proxy: str
    network: tuple[Table, ...]
    edge_host_token_file: str


@dataclass(frozen=True)
class InstallSettings:
    poweroff: bool
    reboot: bool


@dataclass(frozen=True)
class RenderSettings:
    template_dir: str
    extra_user_data: str
    keep_user_data: bool


@dataclass(frozen=True)
class EarthlySettings:
    image: str
    buildkit_host: str
    buildkit_tls_ca: str
    buildkit_tls_cert: str
    buildkit_tls_key: str
    privileged: bool

    @property
    def buildkit_tls(self) -> tuple[str, str, str]:
        """(CA, certificate, key) of a remote BuildKit's mTLS; empty strings where not set."""
        return self.buildkit_tls_ca, self.buildkit_tls_cert, self.buildkit_tls_key


@dataclass(frozen=True)
class OutputSettings:
    dir: str


@dataclass(frozen=True)
class AttestSettings:
    enabled: bool
    key_file: str  # the key itself is Config.attest_key (a Secret), read from this file


@dataclass(frozen=True)
class PushSettings:
    enabled: bool
    to: tuple[str, ...]


@dataclass(frozen=True)
class PreflightSettings:
    min_cpus: int
    min_memory_gb: int
    min_disk_gb: int


SECTIONS: dict[str, type] = {
    "canvos": CanvosSettings, "build": BuildSettings, "registry": RegistrySettings, "site": SiteSettings,
    "install": InstallSettings, "render": RenderSettings, "earthly": EarthlySettings, "output": OutputSettings,
    "attest": AttestSettings, "push": PushSettings, "preflight": PreflightSettings,
}
# Keys outside any section: Config.workdir (a Path), Config.users (tables) and the variants (parsed).
TOP_LEVEL = ("workdir", "users", "variants")

S = TypeVar("S")


def section(cls: type[S], name: str, values: Mapping[str, Any]) -> S:
    """One section from the resolved values; lists become tuples and tables read-only mappings, so a
    section is immutable all the way down."""
    args = {f.name: _frozen(values[f"{name}.{f.name}"]) for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**args)


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        from types import MappingProxyType

        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    return value
