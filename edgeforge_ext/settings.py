"""The table of every configuration key: type, default, help. The single source of truth.

config.py layers values over these; the CLI and `config show` read the help from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_CANVOS_URL = "https://github.com/spectrocloud/CanvOS.git"
# The Earthly image CanvOS v4.5.3+ pins in earthly.sh (EARTHLY_VERSION=v0.8.15): used only when the
# checkout's earthly.sh names none (the checked-out tag's own choice wins, see earthly_script.py).
DEFAULT_EARTHLY_IMAGE = "us-docker.pkg.dev/palette-images/third-party/edge/earthly/earthly:v0.8.15"

ARCHES = ("amd64", "arm64")
OS_DISTRIBUTIONS = ("ubuntu", "opensuse-leap", "rhel", "sles")
K8S_DISTRIBUTIONS = ("k3s", "rke2", "kubeadm", "kubeadm-fips", "nodeadm", "canonical")
TARGETS = ("all", "iso", "provider-images")
# The Earthfile target each build.target runs (CanvOS names).
EARTHLY_TARGETS = {"all": "build-all-images", "iso": "iso", "provider-images": "build-provider-images"}
PUSH_DESTINATIONS = ("origin", "external")
STEPS = ("preflight", "checkout", "render", "validate", "registry-check", "earthly", "collect", "boot-test", "attest",
         "push", "report")


@dataclass(frozen=True)
class Key:
    name: str
    kind: str  # str | int | bool | list | dict | tables | path
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    env: bool = True  # can come from EDGEFORGE_*
    item_choices: tuple[str, ...] = field(default=())

    @property
    def env_name(self) -> str:
        return "EDGEFORGE_" + self.name.upper().replace(".", "_").replace("-", "_")


def _k(name: str, kind: str, default: Any, help: str, **kw: Any) -> Key:
    return Key(name, kind, default, help, **kw)


KEYS: tuple[Key, ...] = (
    _k("workdir", "path", ".edgeforge", "work directory: the CanvOS checkout and caches live here"),
    _k("canvos.url", "str", DEFAULT_CANVOS_URL, "CanvOS git URL (a private fork may carry credentials)"),
    _k("canvos.ref", "str", "latest", "tag, branch or SHA; 'latest' = highest release tag without pre-release"),
    _k("build.arch", "str", "amd64", "target architecture", choices=ARCHES),
    _k("build.os", "str", "ubuntu", "OS_DISTRIBUTION", choices=OS_DISTRIBUTIONS),
    _k("build.os_version", "str", "22.04", "OS_VERSION"),
    _k("build.k8s_distribution", "str", "k3s", "K8S_DISTRIBUTION", choices=K8S_DISTRIBUTIONS),
    _k("build.k8s_versions", "list", [], "Kubernetes versions to build provider images for"),
    _k("build.all_k8s_versions", "bool", False, "build every version in k8s_version.json (2-5 GB each)"),
    _k("build.custom_tag", "str", "demo", "CUSTOM_TAG: lower-case letters and digits"),
    _k("build.iso_name", "str", "palette-edge-installer", "ISO_NAME: letters, digits, '-' and '_'"),
    _k("build.image_registry", "str", "ttl.sh", "IMAGE_REGISTRY: the registry the provider images are named with"),
    _k("build.image_repo", "str", "", "IMAGE_REPO (default: the OS distribution)"),
    _k("build.pe_version", "str", "", "PE_VERSION override (default: the checkout's Earthfile ARG)"),
    _k("build.target", "str", "all", "all (ISO and provider images), iso, provider-images", choices=TARGETS),
    _k("build.skip", "list", [], "steps to skip", item_choices=STEPS),
    _k("build.extra_args", "dict", {}, "extra KEY=VALUE build args written to .arg"),
    _k("build.http_proxy", "str", "", "HTTP_PROXY for the build"),
    _k("build.https_proxy", "str", "", "HTTPS_PROXY for the build"),
    _k("build.no_proxy", "str", "", "NO_PROXY for the build"),
    _k("build.update_kernel", "bool", False, "UPDATE_KERNEL"),
    _k("build.cis_hardening", "bool", False, "CIS_HARDENING"),
    _k("build.fips_enabled", "bool", False, "FIPS_ENABLED (cannot be combined with UPDATE_KERNEL)"),
    _k("build.base_image", "str", "", "BASE_IMAGE (required for FIPS, RHEL, STIG builds)"),
    _k("build.cluster_config", "str", "spc.tgz", "CLUSTERCONFIG: cluster definition tgz"),
    _k("build.edge_custom_config", "str", ".edge-custom-config.yaml", "EDGE_CUSTOM_CONFIG"),
    _k("build.uki", "bool", False, "IS_UKI: a Unified Kernel Image (Secure Boot) ISO; needs the keys "
       "`earthly.sh +uki-genkey` makes in secure-boot/"),
    _k("build.boot_test", "bool", False, "after collect, boot the ISO in QEMU under BIOS and UEFI (iso boot); "
       "exit 8 when it does not boot"),
    _k("build.boot_test_timeout", "int", 900, "seconds each firmware's boot test may take", minimum=1),
    _k("build.allow_unlisted_k8s_version", "bool", False,
       "build a K8S_VERSION the checkout's k8s_version.json does not list (CanvOS does not check it)"),
    _k("build.ubuntu_pro_key_file", "path", "", "file holding the Ubuntu Pro token (or EDGEFORGE_UBUNTU_PRO_KEY)"),
    _k("build.ca_certs", "list", [], "PEM files the build trusts (a TLS-intercepting proxy's CA), given to CanvOS "
       "the way the checked-out tag takes them: certs/ or PROXY_CERT_PATH"),
    _k("build.inputs_registry", "str", "", "HOST/PREFIX: the build pulls its own images (base, stylus, osbuilder, "
       "provider bases, ...) from here, laid out as `images mirror --build-inputs` puts them (no route to the "
       "internet needed)"),
    _k("registry.domain", "str", "", "the private external registry written into user-data"),
    _k("registry.username", "str", "", "external registry user name"),
    _k("registry.password_file", "path", "", "file holding the external registry password"),
    _k("registry.insecure", "bool", False, "plain HTTP / unverified TLS for the external registry"),
    _k("registry.repository_name", "str", "", "repositoryName for stylus.externalRegistries"),
    _k("registry.certificates", "list", [], "PEM files trusted for the external registry"),
    _k("registry.mapping_rules", "dict", {}, "SRC=DST prefix rules (switches to stylus.externalRegistries)"),
    _k("registry.registries", "tables", [], "several registries ([[registry.registries]] tables)", env=False),
    _k("registry.k8s_registries_yaml", "bool", False,
       "K3s/RKE2: write registries.yaml (credentials for the external registries) from an initramfs stage"),
    _k("site.palette_endpoint", "str", "", "stylus.site.paletteEndpoint"),
    _k("site.project_name", "str", "", "stylus.site.projectName"),
    _k("site.project_uid", "str", "", "stylus.site.projectUid"),
    _k("site.name", "str", "", "stylus.site.name (the edge host name)"),
    _k("site.tags", "dict", {}, "stylus.site.tags"),
    _k("site.ca_certs", "list", [], "PEM files written to stylus.site.caCerts"),
    _k("site.http_proxy", "str", "", "stylus.site.network.httpProxy"),
    _k("site.https_proxy", "str", "", "stylus.site.network.httpsProxy"),
    _k("site.no_proxy", "str", "", "stylus.site.network.noProxy"),
    _k("site.network", "tables", [], "static interfaces ([[site.network]] tables)", env=False),
    _k("site.edge_host_token_file", "path", "", "file holding the edge host registration token"),
    _k("install.poweroff", "bool", False, "power off after installation"),
    _k("install.reboot", "bool", False, "reboot after installation"),
    _k("users", "tables", [], "OS users ([[users]] tables: name, groups, ssh_keys)", env=False),
    _k("render.template_dir", "path", "", "your own templates (same variables as templates/)"),
    _k("render.extra_user_data", "path", "", "a YAML file merged into user-data (its keys win)"),
    _k("render.keep_user_data", "bool", False, "keep user-data in the checkout after the build"),
    _k("earthly.image", "str", "", "the Earthly image (default: the one the checkout's earthly.sh pins)"),
    _k("earthly.buildkit_host", "str", "", "remote BuildKit (tcp://host:8372): Earthly runs unprivileged"),
    _k("earthly.buildkit_tls_ca", "path", "", "CA of the remote BuildKit (mTLS, with tls_cert and tls_key)"),
    _k("earthly.buildkit_tls_cert", "path", "", "client certificate for the remote BuildKit (mTLS)"),
    _k("earthly.buildkit_tls_key", "path", "", "client key for the remote BuildKit (mTLS)"),
    _k("earthly.privileged", "bool", True, "run the Earthly container privileged (local BuildKit)"),
    _k("output.dir", "path", "", "where the ISO, log and report go (default: WORKDIR/output)"),
    _k("attest.enabled", "bool", False, "sign what the build makes: beside the ISO its SLSA provenance and SPDX SBOM "
       "in signed DSSE envelopes; each pushed provider image signed and attested (cosign's .sig/.att tags)"),
    _k("attest.key_file", "path", "", "the PEM ECDSA P-256 private key that signs (edgeforge-ext keygen); its "
       "password, when encrypted, in EDGEFORGE_ATTEST_KEY_PASSWORD"),
    _k("push.enabled", "bool", True, "push provider images after the build"),
    _k("push.to", "list", [], "origin, external (default: external when configured, else origin)",
       item_choices=PUSH_DESTINATIONS),
    _k("preflight.min_cpus", "int", 4, "minimum CPUs", minimum=1),
    _k("preflight.min_memory_gb", "int", 8, "minimum memory in GB", minimum=1),
    _k("preflight.min_disk_gb", "int", 50, "minimum free disk in GB (build dir and Docker data root; 5 GB more "
       "per extra provider image)",
       minimum=1),
    _k("variants", "tables", [], "build variants ([[variants]] tables)", env=False),
)

KEY_BY_NAME: dict[str, Key] = {k.name: k for k in KEYS}

# Keys a [[variants]] table may set, besides `name`; each maps to the build.* key it overrides.
VARIANT_KEYS: dict[str, str] = {
    "os": "build.os",
    "os_version": "build.os_version",
    "k8s_distribution": "build.k8s_distribution",
    "k8s_versions": "build.k8s_versions",
    "all_k8s_versions": "build.all_k8s_versions",
    "arch": "build.arch",
    "custom_tag": "build.custom_tag",
    "iso_name": "build.iso_name",
    "fips_enabled": "build.fips_enabled",
    "update_kernel": "build.update_kernel",
    "base_image": "build.base_image",
    "image_repo": "build.image_repo",
    "uki": "build.uki",
    "target": "build.target",
    "extra_args": "build.extra_args",
}

REGISTRY_ENTRY_KEYS = ("domain", "username", "password_env", "password_file", "repository_name",
                       "certificates", "insecure")
USER_KEYS = ("name", "groups", "ssh_keys", "passwd_env")
NETWORK_KEYS = ("interface", "type", "ip", "mask", "gateway", "nameserver")

# Secrets: never flags with a value. Env names are part of the CLI contract (CLI.md).
ENV_REGISTRY_PASSWORD = "EDGEFORGE_REGISTRY_PASSWORD"
ENV_EDGE_HOST_TOKEN = "EDGEFORGE_EDGE_HOST_TOKEN"
ENV_UBUNTU_PRO_KEY = "EDGEFORGE_UBUNTU_PRO_KEY"
ENV_ATTEST_KEY_PASSWORD = "EDGEFORGE_ATTEST_KEY_PASSWORD"  # the attestation key file's password
SECRET_ENV = (ENV_REGISTRY_PASSWORD, ENV_EDGE_HOST_TOKEN, ENV_UBUNTU_PRO_KEY, ENV_ATTEST_KEY_PASSWORD)
