"""Configuration: defaults < edgeforge.toml < EDGEFORGE_* environment < flags, resolved in one place.

`load_config` is the only entry point. It returns a frozen `Config` plus, for every key, the layer
its value came from (`Config.sources`), which `config show` prints.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edgeforge_ext.config_sections import (
    AttestSettings,
    BuildSettings,
    CanvosSettings,
    EarthlySettings,
    InstallSettings,
    OutputSettings,
    PreflightSettings,
    PushSettings,
    RegistrySettings,
    RenderSettings,
    SiteSettings,
    Table,
    section,
)
from edgeforge_ext.errors import ConfigError
from edgeforge_ext.secrets import (
    ECHO_LIMIT,
    MIN_MASKED_LENGTH,
    Secret,
    maskable,
    quoted,
    remember,
    secret_from_env,
    secret_from_file,
    url_login,
    url_secrets,
)
from edgeforge_ext.settings import (
    ENV_ATTEST_KEY_PASSWORD,
    ENV_EDGE_HOST_TOKEN,
    ENV_REGISTRY_PASSWORD,
    ENV_UBUNTU_PRO_KEY,
    KEY_BY_NAME,
    KEYS,
    NETWORK_KEYS,
    REGISTRY_ENTRY_KEYS,
    USER_KEYS,
    VARIANT_KEYS,
    Key,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

CONFIG_FILE_NAME = "edgeforge.toml"
# Keys whose URL may carry user:password@ (a private CanvOS fork, proxies).
_URL_KEYS = ("canvos.url", "build.http_proxy", "build.https_proxy", "site.http_proxy", "site.https_proxy")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class RegistryEntry:
    domain: str
    username: str = ""
    password: Secret | None = None
    repository_name: str = ""
    certificates: tuple[str, ...] = ()
    insecure: bool = False


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: Mapping[str, Any]  # build.* key -> raw value from the file


@dataclass(frozen=True)
class Config:
    """Resolved, validated configuration. `values` maps every key of settings.KEYS to its value."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]
    config_file: Path | None
    registry_password: Secret | None = None
    edge_host_token: Secret | None = None
    ubuntu_pro_key: Secret | None = None
    # The attestation private key (PEM text of attest.key_file) and its password: secrets like the others.
    attest_key: Secret | None = None
    attest_key_password: Secret | None = None
    registries: tuple[RegistryEntry, ...] = ()
    variants: tuple[Variant, ...] = ()
    variant: str | None = None
    # Earthly's own EARTHLY_BUILD_ARGS from the environment: earthly.sh passes it through (docker run
    # --env EARTHLY_BUILD_ARGS), and so does the tool, after checking its keys like .arg's.
    earthly_build_args: str = ""
    warnings: tuple[str, ...] = ()
    layers: tuple[tuple[str, Mapping[str, Any]], ...] = field(default=(), repr=False)

    def __getitem__(self, key: str) -> Any:
        """A value by its dotted key: for the config layer and tests; the rest reads the sections."""
        return self.values[key]

    # --- the typed sections (config_sections.py), built once from the resolved values ------------

    @cached_property
    def canvos(self) -> CanvosSettings:
        return section(CanvosSettings, "canvos", self.values)

    @cached_property
    def build(self) -> BuildSettings:
        return section(BuildSettings, "build", self.values)

    @cached_property
    def registry(self) -> RegistrySettings:
        return section(RegistrySettings, "registry", self.values)

    @cached_property
    def site(self) -> SiteSettings:
        return section(SiteSettings, "site", self.values)

    @cached_property
    def install(self) -> InstallSettings:
        return section(InstallSettings, "install", self.values)

    @cached_property
    def render(self) -> RenderSettings:
        return section(RenderSettings, "render", self.values)

    @cached_property
    def earthly(self) -> EarthlySettings:
        return section(EarthlySettings, "earthly", self.values)

    @cached_property
    def output(self) -> OutputSettings:
        return section(OutputSettings, "output", self.values)

    @cached_property
    def attest(self) -> AttestSettings:
        return section(AttestSettings, "attest", self.values)

    @cached_property
    def push(self) -> PushSettings:
        return section(PushSettings, "push", self.values)

    @cached_property
    def preflight(self) -> PreflightSettings:
        return section(PreflightSettings, "preflight", self.values)

    @cached_property
    def users(self) -> tuple[Table, ...]:
        return tuple(MappingProxyType(dict(t)) for t in self.values["users"])

    def source_of(self, key: str) -> str:
        """The layer a value came from ("default", "file …", "env …", "flag", "variant …")."""
        return self.sources.get(key, "default")

    def from_file(self, key: str) -> bool:
        """Relative paths of values set in edgeforge.toml are relative to that file."""
        return self.config_file is not None and self.source_of(key).startswith("file")

    def all_registries(self) -> tuple[RegistryEntry, ...]:
        """Every external registry with its credentials, once: `registry.domain` (with registry.username,
        the password, registry.certificates, registry.insecure, registry.repository_name) first, then
        each [[registry.registries]] table."""
        entries = list(self.registries)
        r = self.registry
        if r.domain:
            entries.insert(0, RegistryEntry(domain=r.domain, username=r.username, password=self.registry_password,
                                            repository_name=r.repository_name, certificates=r.certificates,
                                            insecure=r.insecure))
        return tuple(entries)

    @property
    def workdir(self) -> Path:
        return Path(self.values["workdir"]).expanduser().resolve()

    @property
    def checkout_dir(self) -> Path:
        return self.workdir / "CanvOS"

    @property
    def output_dir(self) -> Path:
        out = self.output.dir
        return Path(out).expanduser().resolve() if out else self.workdir / "output"

    @property
    def image_repo(self) -> str:
        return self.build.image_repo or self.build.os

    @property
    def has_external_registry(self) -> bool:
        return bool(self.registry.domain or self.registries)

    @property
    def secrets(self) -> tuple[Secret, ...]:
        found = [self.registry_password, self.edge_host_token, self.ubuntu_pro_key, self.attest_key,
                 self.attest_key_password, *(r.password for r in self.registries), *self.url_secrets]
        return tuple(s for s in found if s)

    @property
    def url_secrets(self) -> tuple[Secret, ...]:
        """Credentials in a fork's or a proxy's URL (user:password@), as written and decoded: Earthly
        prints the proxy build args in its log, git may print the fork's URL."""
        found: list[Secret | None] = []
        for key in _URL_KEYS:
            url = str(self.values[key])
            found.append(url_login(url, f"the credentials in {key}"))
            found.extend(Secret(piece, source=f"the credentials in {key}") for piece in url_secrets(url))
        return tuple(s for s in found if s)

    def with_variant(self, name: str) -> Config:
        """This config with one [[variants]] table layered over the file's top-level settings."""
        for variant in self.variants:
            if variant.name == name:
                break
        else:
            known = ", ".join(v.name for v in self.variants) or "none defined"
            raise ConfigError(f"unknown variant {quoted(name)} (variants: {known})")
        layers = list(self.layers)
        insert_at = next((i for i, (src, _) in enumerate(layers) if src.startswith("env")), len(layers))
        layers.insert(insert_at, (f"variant {name}", dict(variant.overrides)))
        values, sources = _resolve(layers)
        return replace(self, values=values, sources=sources, variant=name, layers=tuple(layers))

    def with_layer(self, source: str, overrides: Mapping[str, Any]) -> Config:
        """This config with `overrides` (dotted keys) over every layer, flags included: what one shard of a
        variant builds (`build --shard`: one Kubernetes version of it). The resolved values are kept as
        they are (paths already made relative to the file), only these keys change."""
        values = dict(self.values)
        sources = dict(self.sources)
        for name, value in overrides.items():
            values[name] = _check_type(KEY_BY_NAME[name], value, source)
            sources[name] = source
        return replace(self, values=values, sources=sources, layers=(*self.layers, (source, dict(overrides))))

def load_config(
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
    registry_password: Secret | None = None,
) -> Config:
    """Resolve the whole configuration. `flags` maps dotted keys to values given on the command line
    (None means "not given"); `registry_password` is a secret the CLI read from stdin or a file."""
    env = dict(env if env is not None else {})
    cwd = cwd or Path.cwd()
    warnings: list[str] = []
    # Known before any value is checked: an error that echoes a misplaced secret is then masked.
    remember(registry_password, env.get(ENV_REGISTRY_PASSWORD), env.get(ENV_EDGE_HOST_TOKEN),
             env.get(ENV_UBUNTU_PRO_KEY), env.get(ENV_ATTEST_KEY_PASSWORD))

    file_path = config_path
    if file_path is None and env.get("EDGEFORGE_CONFIG"):
        file_path = Path(env["EDGEFORGE_CONFIG"])
    if file_path is None and (cwd / CONFIG_FILE_NAME).is_file():
        file_path = cwd / CONFIG_FILE_NAME
    file_values: dict[str, Any] = {}
    if file_path is not None:
        file_values = read_config_file(file_path)

    env_values, env_warnings = _env_layer(env)
    warnings.extend(env_warnings)
    flag_values = {k: v for k, v in (flags or {}).items() if v is not None}
    for name in flag_values:
        if name not in KEY_BY_NAME:
            raise KeyError(f"a command passes a flag for the unknown config key {name}")  # a bug: exit 1

    file_label = f"file {file_path}" if file_path else "file"
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("default", {k.name: k.default for k in KEYS}),
        (file_label, {k: v for k, v in file_values.items() if k in KEY_BY_NAME}),
        ("env", env_values),
        ("flag", flag_values),
    ]
    values, sources = _resolve(layers)
    if file_path is not None:
        base = file_path.parent
        for name in ("registry.password_file", "site.edge_host_token_file", "build.ubuntu_pro_key_file",
                     "render.template_dir", "render.extra_user_data", "earthly.buildkit_tls_ca",
                     "earthly.buildkit_tls_cert", "earthly.buildkit_tls_key", "attest.key_file"):
            if sources[name].startswith("file") and values[name]:
                values[name] = str(base / Path(values[name]).expanduser())

    file_dir = file_path.parent if file_path is not None else None
    for name in ("registry.certificates", "site.ca_certs", "build.ca_certs"):
        relative_to = file_dir if sources[name].startswith("file") else None
        values[name] = [_ca_file(item, name, relative_to, sources[name]) for item in values[name]]

    # Same order as every other value: a file named on the command line beats the environment, which
    # beats a file named in edgeforge.toml; stdin (--registry-password-stdin) is a flag too.
    password = registry_password or _layered_secret(
        ENV_REGISTRY_PASSWORD, env, values["registry.password_file"], sources["registry.password_file"],
        "registry password")
    token = _layered_secret(ENV_EDGE_HOST_TOKEN, env, values["site.edge_host_token_file"],
                            sources["site.edge_host_token_file"], "edge host token")
    pro_key = _layered_secret(ENV_UBUNTU_PRO_KEY, env, values["build.ubuntu_pro_key_file"],
                              sources["build.ubuntu_pro_key_file"], "Ubuntu Pro token")
    attest_key = secret_from_file(values["attest.key_file"], "attestation key") if values["attest.key_file"] else None
    attest_password = secret_from_env(ENV_ATTEST_KEY_PASSWORD, env)
    # A key leaks line by line (a PEM is many lines): each base64 line is masked on its own too.
    remember(attest_key, attest_password, *pem_lines(attest_key))
    if password is not None and values["registry.username"]:
        password = password.for_login(str(values["registry.username"]))  # also masked as Basic credentials
    remember(password, token, pro_key)
    # A fork's and the proxies' URLs may carry credentials; git and the build need them, no log shows them.
    url_logins = [url_login(str(values[k]), f"the credentials in {k}") for k in _URL_KEYS]
    remember(*(s for k in _URL_KEYS for s in url_secrets(str(values[k]))), *url_logins)

    registries = tuple(_registry_entry(i, t, env, file_label, file_dir)
                       for i, t in enumerate(values["registry.registries"]))
    remember(*(r.password for r in registries))
    warnings.extend(_unmasked_warnings([password, token, pro_key, attest_password,
                                        *(r.password for r in registries), *url_logins]))
    variants = tuple(_variant(i, t, file_label) for i, t in enumerate(values["variants"]))
    names = [v.name for v in variants]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"variant names must be unique: {', '.join(dupes)} ({file_label})")

    return Config(
        values=values,
        sources=sources,
        config_file=file_path,
        registry_password=password,
        edge_host_token=token,
        ubuntu_pro_key=pro_key,
        attest_key=attest_key,
        attest_key_password=attest_password,
        registries=registries,
        variants=variants,
        earthly_build_args=env.get("EARTHLY_BUILD_ARGS", ""),
        warnings=tuple(warnings),
        layers=tuple(layers),
    )


def _unmasked_warnings(secrets: list[Secret | None]) -> list[str]:
    """One warning for each secret too short to be masked (it would garble ordinary text)."""
    short = dict.fromkeys(s.source for s in secrets if s and not maskable(s.reveal()))
    return [f"the secret from {source} is shorter than {MIN_MASKED_LENGTH} characters: it is not masked in "
            "output (masking so short a text would garble ordinary words)" for source in short]


def pem_lines(key: Secret | None) -> list[str]:
    """The base64 lines of a PEM key (its header and footer lines are not secret)."""
    if key is None:
        return []
    return [line.strip() for line in key.reveal().splitlines() if line.strip() and not line.startswith("-----")
            and ":" not in line]  # "Proc-Type: 4,ENCRYPTED" headers of legacy PEM are not secret either


def _layered_secret(env_name: str, env: Mapping[str, str], file: str, file_source: str, what: str) -> Secret | None:
    from_file = secret_from_file(file, what) if file and file_source == "flag" else None
    secret = from_file or secret_from_env(env_name, env)
    if secret is None and file:
        secret = secret_from_file(file, what)
    return secret


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse an edgeforge.toml into dotted keys; malformed TOML and unknown keys are exit-2 errors."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line N, column M)": keep it, it is what users need.
        raise ConfigError(f"{path}: malformed TOML: {exc}") from exc
    unknown: list[str] = []
    values = _flatten(data, unknown)
    unknown.extend(_unknown_table_keys(values))
    if len(unknown) == 1:
        raise ConfigError(f"{path}: unknown key {unknown[0]}")
    if unknown:
        raise ConfigError(f"{path}: {len(unknown)} unknown keys", details=unknown)
    return values


def _flatten(data: Mapping[str, Any], unknown: list[str], prefix: str = "") -> dict[str, Any]:
    """Dotted keys and their values; each unknown key goes to `unknown` with its "did you mean"."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if name in KEY_BY_NAME:
            out[name] = value
        elif isinstance(value, dict) and any(k.name.startswith(name + ".") for k in KEYS):
            out.update(_flatten(value, unknown, name + "."))
        else:
            probe = f"{name}.{next(iter(value))}" if isinstance(value, dict) and value else name
            unknown.append(f"'{name}'" + _did_you_mean(probe, [k.name for k in KEYS]))
    return out


# The keys each [[table]] of a list-of-tables key may hold.
_TABLE_KEYS = {"registry.registries": REGISTRY_ENTRY_KEYS, "users": USER_KEYS, "site.network": NETWORK_KEYS,
               "variants": ("name", *VARIANT_KEYS)}


def _unknown_table_keys(values: Mapping[str, Any]) -> list[str]:
    """Unknown keys inside the file's [[tables]], each with its "did you mean"."""
    unknown: list[str] = []
    for name, allowed in _TABLE_KEYS.items():
        tables = values.get(name)
        if not isinstance(tables, list):
            continue  # the type check names it
        for i, table in enumerate(tables):
            if isinstance(table, dict):
                unknown.extend(f"'{name}[{i}].{key}'" + _did_you_mean(str(key), list(allowed))
                               for key in table if key not in allowed)
    return unknown


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if not close:
        tail = name.rsplit(".", 1)[-1]
        close = [c for c in candidates if c.rsplit(".", 1)[-1] == tail][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


def _env_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    by_env = {k.env_name: k for k in KEYS if k.env}
    out: dict[str, Any] = {}
    warnings: list[str] = []
    known_other = {ENV_REGISTRY_PASSWORD, ENV_EDGE_HOST_TOKEN, ENV_UBUNTU_PRO_KEY, ENV_ATTEST_KEY_PASSWORD,
                   "EDGEFORGE_CONFIG"}
    for name, raw in env.items():
        if not name.startswith("EDGEFORGE_") or name in known_other:
            continue
        key = by_env.get(name)
        if key is None:
            warnings.append(f"ignoring unknown environment variable {name}"
                            + _did_you_mean(name, list(by_env)))
            continue
        out[key.name] = _from_string(key, raw, f"env {name}")
    return out, warnings


def _from_string(key: Key, raw: str, source: str) -> Any:
    """Environment values are strings; turn them into the key's type."""
    if key.kind == "bool":
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{key.name} must be true or false, got {quoted(raw)} ({source})")
    if key.kind == "int":
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"{key.name} must be a whole number, got {quoted(raw)} ({source})") from exc
    if key.kind == "list":
        return [item.strip() for item in raw.split(",") if item.strip()]
    if key.kind == "dict":
        return parse_pairs([p for p in raw.split(",") if p.strip()], key.name, source)
    return raw


def parse_pairs(items: list[str], what: str, source: str) -> dict[str, str]:
    """KEY=VALUE strings (flags and env) to a dict; a missing '=' is a usage error."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{what} expects KEY=VALUE, got {quoted(item)} ({source})")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _resolve(layers: list[tuple[str, Mapping[str, Any]]] | tuple[tuple[str, Mapping[str, Any]], ...],
             ) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, layer in layers:
        for name, value in layer.items():
            key = KEY_BY_NAME[name]
            source_label = f"env {key.env_name}" if source == "env" else source
            values[name] = _check_type(key, value, source_label)
            sources[name] = source_label
    return values, sources


def _check_type(key: Key, value: Any, source: str) -> Any:
    where = f"({source})"
    kind = key.kind
    if kind in ("str", "path"):
        if not isinstance(value, str):
            raise ConfigError(f"{key.name} must be a string, got {type(value).__name__} {where}")
        if key.choices and value not in key.choices:
            raise ConfigError(f"{key.name} must be one of {', '.join(key.choices)}, got {quoted(value)} {where}"
                              + _did_you_mean(value, list(key.choices)))
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key.name} must be true or false, got {quoted(value)} {where}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key.name} must be a whole number, got {quoted(value)} {where}")
        if key.minimum is not None and value < key.minimum:
            raise ConfigError(f"{key.name} must be at least {key.minimum}, got {value} {where}")
        return value
    if kind == "list":
        if isinstance(value, str):  # a list written as one string ("1.32.3,1.33.1") is not guessed at
            hint = f"write a list: {key.name.rsplit('.', 1)[-1]} = {_as_list(value)}" if len(value) < ECHO_LIMIT \
                else None
            raise ConfigError(f"{key.name} must be a list of strings, got the string {quoted(value)} {where}",
                              hint=hint)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key.name} must be a list of strings {where}")
        for item in value:
            if key.item_choices and item not in key.item_choices:
                raise ConfigError(f"{key.name}: {quoted(item)} is not one of {', '.join(key.item_choices)} {where}"
                                  + _did_you_mean(item, list(key.item_choices)))
        return list(value)
    if kind == "dict":
        if not isinstance(value, dict) or not all(isinstance(v, str | int | bool) for v in value.values()):
            raise ConfigError(f"{key.name} must be a table of strings {where}")
        return {str(k): _scalar_str(v) for k, v in value.items()}
    if kind == "tables":
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f"{key.name} must be a list of tables ([[{key.name}]]) {where}")
        return list(value)
    raise ValueError(f"settings.py gives {key.name} the unknown kind {kind}")  # pragma: no cover - a bug


def _as_list(text: str) -> str:
    """How `text` ("a,b") is written as a TOML list."""
    import json

    return json.dumps([item.strip() for item in text.split(",") if item.strip()])


def _scalar_str(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _ca_file(item: str, where: str, base: Path | None, source: str) -> str:
    """A CA certificate file (relative to the config file when it names it) that can be read, or the PEM
    text itself. A file that is not there is a configuration error naming it."""
    if item.lstrip().startswith("-----BEGIN"):
        return item
    path = Path(item).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the CA certificate file {path}: {exc.strerror} ({source})",
                          hint="give the path of a PEM file (relative paths in edgeforge.toml are relative "
                          "to that file)") from None
    return str(path)


def _registry_entry(i: int, table: Mapping[str, Any], env: Mapping[str, str], source: str,
                    base: Path | None) -> RegistryEntry:
    where = f"registry.registries[{i}]"  # its keys were checked with the file (_unknown_table_keys)
    domain = table.get("domain")
    if not isinstance(domain, str) or not domain:
        raise ConfigError(f"{where}.domain is required ({source})")
    password: Secret | None = None
    if table.get("password_env"):
        password = secret_from_env(str(table["password_env"]), env)
        if password is None:
            raise ConfigError(f"{where}.password_env names {table['password_env']}, which is not set")
    elif table.get("password_file"):
        password = secret_from_file(str(table["password_file"]), f"password for {domain}")
    if password is not None and table.get("username"):
        password = password.for_login(str(table["username"]))
    certs = table.get("certificates", [])
    if not isinstance(certs, list) or not all(isinstance(c, str) for c in certs):
        raise ConfigError(f"{where}.certificates must be a list of strings, got {quoted(certs)} ({source})")
    certs = [_ca_file(c, f"{where}.certificates", base, source) for c in certs]
    insecure = table.get("insecure", False)
    if not isinstance(insecure, bool):
        raise ConfigError(f"{where}.insecure must be true or false ({source})")
    return RegistryEntry(
        domain=domain,
        username=str(table.get("username", "")),
        password=password,
        repository_name=str(table.get("repository_name", "")),
        certificates=tuple(str(c) for c in certs),
        insecure=insecure,
    )


def _variant(i: int, table: Mapping[str, Any], source: str) -> Variant:
    where = f"variants[{i}]"
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name is required ({source})")
    overrides = {VARIANT_KEYS[k]: v for k, v in table.items() if k != "name"}
    for key_name, value in overrides.items():
        _check_type(KEY_BY_NAME[key_name], value, f"variant {name}, {source}")
    return Variant(name=name, overrides=overrides)
