"""The user-data model: the template variables built from a Config, and checks of the rendered file.

Schema and registry rules: ../shared/reference/palette-edge.md §1-§3. One external registry goes to
`stylus.registryCredentials`; several registries, any mapping rule, or a registry that carries
certificates or a repositoryName go to `stylus.externalRegistries` (never both forms).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from edgeforge_ext.secrets import MASK, MIN_MASKED_LENGTH, Secret, maskable, quoted, remember
from edgeforge_ext.yamlquote import check_yaml_text

if TYPE_CHECKING:
    from edgeforge_ext.config import Config, RegistryEntry

HEADER = "#cloud-config"
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_PEM_END = "-----END CERTIFICATE-----"
_SSH_KEY = re.compile(r"(ssh-|ecdsa-|sk-)\S+ \S+|(github|gitlab):\S+")

# ---------------------------------------------------------------------------------------------
# Building the template variables


def build_context(config: Config, *, problems: list[str], warnings: list[str],
                  env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The variables every user-data template sees (also a user's own templates).

    site, install, users, registry_credentials (or None), external_registries (or None).
    Secrets are the real values: user-data must carry them (a template that printed a masked value
    would put dead credentials into the ISO; check_secrets catches a template that does not write them).
    """
    env = os.environ if env is None else env
    site: dict[str, Any] = {
        "palette_endpoint": config.site.palette_endpoint,
        "edge_host_token": _reveal(config.edge_host_token),
        "project_name": config.site.project_name,
        "project_uid": config.site.project_uid,
        "name": config.site.name,
        "tags": dict(config.site.tags),
        "network": {
            "http_proxy": config.site.http_proxy,
            "https_proxy": config.site.https_proxy,
            "no_proxy": config.site.no_proxy,
            "interfaces": _interfaces(config.site.network, problems),
        },
        "ca_certs": [_read_pem(p, _base(config, "site.ca_certs"), "site.ca_certs", problems)
                     for p in config.site.ca_certs],
    }
    if site["project_name"] and site["project_uid"]:
        problems.append("site.project_name and site.project_uid are both set: give one")
    site["ca_certs"] = [c for c in site["ca_certs"] if c]
    _check_texts(site, "site", problems)

    credentials, external = _registries(config, problems, warnings)
    k8s_registries = _k8s_registries(config, credentials, external, warnings)
    context: dict[str, Any] = {
        "site": site,
        "install": {"poweroff": config.install.poweroff, "reboot": config.install.reboot},
        "users": [_user(i, t, config, env, problems, warnings) for i, t in enumerate(config.users)],
        "registry_credentials": credentials,
        "external_registries": external,
        "k8s_registries": k8s_registries,
    }
    if config.install.poweroff and config.install.reboot:
        warnings.append("install.poweroff and install.reboot are both true: the host powers off")
    _check_texts(context["users"], "users", problems)
    _check_texts(credentials or {}, "registry", problems)
    _check_texts(external or {}, "registry", problems)
    return context


def _reveal(secret: Secret | None) -> str | None:
    return secret.reveal() if secret else None


def _base(config: Config, key: str) -> Path | None:
    """Relative file names in the config file are relative to that file."""
    if config.config_file is not None and config.sources.get(key, "").startswith("file"):
        return config.config_file.parent
    return None


def _resolve(path: str, base: Path | None) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() or base is None else base / p


def _read_pem(path: str, base: Path | None, where: str, problems: list[str]) -> str:
    p = _resolve(path, base)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        problems.append(f"{where}: cannot read certificate {p}: {reason}")
        return ""
    text = text.replace("\r\n", "\n")
    if _PEM_BEGIN not in text or _PEM_END not in text:
        problems.append(f"{where}: {p} holds no PEM certificate ({_PEM_BEGIN} ... {_PEM_END})")
        return ""
    return text if text.endswith("\n") else text + "\n"


def _interfaces(tables: Sequence[Mapping[str, object]], problems: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for i, table in enumerate(tables):
        where = f"site.network[{i}]"
        name = str(table.get("interface", ""))
        if not name:
            problems.append(f"{where}.interface is required (the NIC name, e.g. eth0)")
            continue
        kind = str(table.get("type") or ("static" if table.get("ip") else "dhcp"))
        if kind not in ("static", "dhcp"):
            problems.append(f"{where}.type must be static or dhcp, got {quoted(kind)}")
        if kind == "static" and not table.get("ip"):
            problems.append(f"{where}: a static interface needs ip")
        if name in out:
            problems.append(f"{where}: interface {name} is listed twice")
        entry = {"type": kind}
        for key, target in (("ip", "ip_address"), ("mask", "mask"), ("gateway", "gateway"),
                            ("nameserver", "nameserver")):
            if table.get(key):
                entry[target] = str(table[key])
        out[name] = entry
    return out


def _strings(value: object) -> list[str]:
    """A TOML value that may be one string or a list of them."""
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def _user(i: int, table: Mapping[str, object], config: Config, env: Mapping[str, str],
          problems: list[str], warnings: list[str]) -> dict[str, Any]:
    where = f"users[{i}]"
    name = str(table.get("name", ""))
    if not name:
        problems.append(f"{where}.name is required")
    groups = _strings(table.get("groups", []))
    keys: list[str] = []
    for item in _strings(table.get("ssh_keys", [])):
        item = item.strip()
        if _SSH_KEY.match(item):
            keys.append(item)
            continue
        # Not a key: a public key file (relative to the config file), one key a line.
        path = _resolve(item, _base(config, "users"))
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            problems.append(f"{where}.ssh_keys: {quoted(item)} is neither a public key nor a readable key file")
            continue
        keys.extend(ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#"))
    passwd: str | None = None
    if table.get("passwd_env"):
        var = str(table["passwd_env"])
        if env.get(var):
            passwd = env[var]
            remember(Secret(passwd, source=f"env {var}"))
            if not maskable(env[var]):
                warnings.append(f"{where}: the password from env {var} is shorter than {MIN_MASKED_LENGTH} "
                                "characters: it is not masked in output")
        else:
            problems.append(f"{where}.passwd_env names {var}, which is not set")
    return {"name": name, "groups": groups, "ssh_keys": keys, "passwd": passwd}


def _norm_domain(domain: str, where: str, problems: list[str], *, scheme: bool = True) -> str:
    domain = domain.strip().rstrip("/")
    # Registry domains are checked in the rendered YAML (validate), mapping rules only here.
    if scheme and "://" in domain:
        problems.append(f"{where}: {quoted(domain)} must not have a scheme (write host[:port][/path])")
    elif not domain:
        problems.append(f"{where}: the registry domain is empty")
    return domain


def _registries(config: Config, problems: list[str], warnings: list[str],
                ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:

    every = config.all_registries()
    names = (["registry.domain"] if config.registry.domain else []) + [
        f"registry.registries[{i}]" for i in range(len(config.registries))]
    entries: list[tuple[str, RegistryEntry, Path | None]] = [
        (name, entry, _base(config, "registry.certificates" if name == "registry.domain" else "registry.registries"))
        for name, entry in zip(names, every, strict=True)]
    where = "registry.mapping_rules"
    rules = {_norm_domain(src, where, problems): _norm_domain(dst, where, problems)
             for src, dst in config.registry.mapping_rules.items()}
    items = [_registry_item(where, e, base, problems, warnings) for where, e, base in entries]
    external = (len(entries) > 1 or bool(rules) or bool(config.registries)
                or any(e.certificates or e.repository_name for _, e, _ in entries))
    if not entries and not rules:
        return None, None
    if not external:
        item = items[0]
        return {k: item[k] for k in ("domain", "username", "password", "insecure")}, None
    domains = [item["domain"] for item in items]
    for dup in sorted({d for d in domains if domains.count(d) > 1}):
        problems.append(f"registry: {dup} is configured twice")
    if rules and not entries:
        warnings.append("registry mapping rules without any registry credentials: only right for "
                        "stylus.managementMode local or anonymous registries")
    return None, {"registries": items, "mapping_rules": rules}


# K3s reads /etc/rancher/k3s/registries.yaml; the Palette docs write the same file for RKE2, while
# upstream RKE2 reads /etc/rancher/rke2/registries.yaml: for RKE2 both are written.
_REGISTRIES_YAML_PATHS = {"k3s": ("/etc/rancher/k3s/registries.yaml",),
                          "rke2": ("/etc/rancher/k3s/registries.yaml", "/etc/rancher/rke2/registries.yaml")}


def _k8s_registries(config: Config, credentials: dict[str, Any] | None, external: dict[str, Any] | None,
                    warnings: list[str]) -> dict[str, Any] | None:
    """registries.yaml for K3s/RKE2 (the external registry docs, step 7): `configs` with each external
    registry's credentials, so the core Kubernetes images can be pulled from it. None when not asked."""
    if not config.registry.k8s_registries_yaml:
        return None
    distribution = str(config.build.k8s_distribution)
    paths = _REGISTRIES_YAML_PATHS.get(distribution)
    registries = [credentials] if credentials else list((external or {}).get("registries", []))
    if paths is None:
        warnings.append(f"registry.k8s_registries_yaml is for K3s and RKE2, not {distribution}: for PXK-E use "
                        "`edgeforge-ext profile patch --image-repository`")
        return None
    if not registries:
        warnings.append("registry.k8s_registries_yaml: no external registry is configured, nothing to write")
        return None
    configs: dict[str, Any] = {}
    for reg in registries:
        host = str(reg["domain"]).split("/", 1)[0]
        entry: dict[str, Any] = {}
        if reg.get("username"):
            entry["auth"] = {"username": reg["username"], "password": str(reg.get("password") or "")}
        if reg.get("insecure"):
            entry["tls"] = {"insecure_skip_verify": True}
        configs[host] = entry
    content = yaml.safe_dump({"configs": configs}, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return {"paths": list(paths), "content": content}


def _registry_item(where: str, entry: RegistryEntry, base: Path | None, problems: list[str],
                   warnings: list[str]) -> dict[str, Any]:
    domain = _norm_domain(entry.domain, where, problems, scheme=False)
    password = _reveal(entry.password) or ""
    if entry.username and not entry.password:
        warnings.append(f"{where}: {domain} has a username but no password (set EDGEFORGE_REGISTRY_PASSWORD, "
                        "--registry-password-file/-stdin, or password_env in the table)")
    certs = [_read_pem(c, base, f"{where}.certificates", problems) for c in entry.certificates]
    return {"domain": domain, "username": entry.username, "password": password,
            "repository_name": entry.repository_name, "certificates": [c for c in certs if c],
            "insecure": entry.insecure}


def _check_texts(value: Any, where: str, problems: list[str]) -> None:
    """Name the config key of any value that YAML cannot hold, before the template trips on it."""
    if isinstance(value, Secret):
        value = value.reveal()
    if isinstance(value, str):
        why = check_yaml_text(value)
        if why:
            problems.append(f"{where}: {why}")
    elif isinstance(value, Mapping):
        for k, item in value.items():
            _check_texts(k, where, problems)
            _check_texts(item, f"{where}.{k}", problems)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_texts(item, f"{where}[{i}]", problems)


# ---------------------------------------------------------------------------------------------
# The secrets in the rendered file


def expected_secrets(context: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(field, what, value) of every secret the packaged template writes, by its place in user-data."""
    found: list[tuple[str, str, str]] = []
    token = context["site"]["edge_host_token"]
    if token:
        found.append(("stylus.site.edgeHostToken", "registration token", token))
    single = context["registry_credentials"]
    if single and single["password"]:
        found.append(("stylus.registryCredentials.password", "registry password", single["password"]))
    for i, reg in enumerate((context["external_registries"] or {}).get("registries", [])):
        if reg["password"]:
            found.append((f"stylus.externalRegistries.registries[{i}].password", f"password for {reg['domain']}",
                          reg["password"]))
    stage = 1 if context["k8s_registries"] else 0  # the users stage follows the registries.yaml one
    for user in context["users"]:
        if user["passwd"]:
            found.append((f"stages.initramfs[{stage}].users.{user['name']}.passwd", f"password of {user['name']}",
                          user["passwd"]))
    return found


def check_secrets(text: str, expected: list[tuple[str, str, str]], problems: list[str]) -> None:
    """Every configured secret is in user-data, and no mask is: a template that printed a Secret, or a
    file pasted from `config show`, would put dead credentials into the ISO."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return  # validate() reports it with the line
    values = list(_string_values(data, ""))
    secrets = [value for _, _, value in expected]
    masked = [where for where, value in values if MASK in _without(value, secrets)]
    for where in masked:
        problems.append(f"{where}: holds the mask {MASK} instead of a secret (templates get the real values: "
                        "write them with `| yq`)")
    rest = _without(text, secrets)
    if not masked and MASK in rest:  # in a comment or a key
        line = 1 + rest[:rest.index(MASK)].count("\n")
        problems.append(f"user-data line {line}: holds the mask {MASK} instead of a secret")
    for field, what, secret in expected:
        if not any(secret in value for _, value in values):
            problems.append(f"{field}: the configured {what} is not in the rendered user-data (a template must "
                            "write it, e.g. `{{ registry_credentials.password | yq }}`)")


def _string_values(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(YAML path, text) of every string value in parsed YAML."""
    if isinstance(value, str):
        yield where or "user-data", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_values(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _string_values(item, f"{where}[{i}]")


def _without(text: str, secrets: list[str]) -> str:
    """`text` with the secrets taken out (a secret may itself contain the mask text)."""
    for secret in secrets:
        text = text.replace(secret, "")
    return text


# ---------------------------------------------------------------------------------------------
# Merging a user's extra YAML file


def merge_extra(text: str, path: Path, problems: list[str], warnings: list[str]) -> str:
    """Merge the user's YAML file into the rendered user-data: their keys win; conflicts are warned."""
    try:
        extra = yaml.load(path.expanduser().read_text(encoding="utf-8"), Loader=_Loader)
    except OSError as exc:
        problems.append(f"render.extra_user_data: cannot read {path}: {exc.strerror}")
        return text
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        problems.append(f"render.extra_user_data: {path} is not valid YAML: {exc}")
        return text
    if extra is None:
        return text
    if not isinstance(extra, dict):
        problems.append(f"render.extra_user_data: {path} must hold a mapping at the top level")
        return text
    try:
        generated = yaml.load(text, Loader=_Loader) or {}
    except yaml.YAMLError:
        return text  # validate() reports it with the line
    merged = _deep_merge(generated, extra, "", warnings, path)
    # PyYAML's emitter writes a raw NEL with allow_unicode=True, which its reader folds into a line
    # break: keep the readable form only when it parses back to the same data, else escape non-ASCII.
    for allow_unicode in (True, False):
        body = yaml.safe_dump(merged, sort_keys=False, allow_unicode=allow_unicode, default_flow_style=False,
                              width=2**30)
        if yaml.load(body, Loader=_Loader) == merged:
            return f"{HEADER}\n{body}"
    problems.append(f"render.extra_user_data: the merged user-data does not read back unchanged ({path})")
    return text


def _deep_merge(ours: Any, theirs: Any, where: str, warnings: list[str], path: Path) -> Any:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        out = dict(ours)
        for key, value in theirs.items():
            sub = f"{where}.{key}" if where else str(key)
            out[key] = _deep_merge(ours[key], value, sub, warnings, path) if key in ours else value
        return out
    if ours != theirs:
        warnings.append(f"{path} overrides the generated {where}")
    return theirs


# ---------------------------------------------------------------------------------------------
# Checking the rendered file

_STR, _BOOL, _INT, _ANY = "string", "bool", "int", "any"
_REGISTRY_ITEM = {"domain": _STR, "username": _STR, "password": _STR, "repositoryName": _STR,
                  "certificates": [_STR], "insecure": _BOOL, "encodedPassword": _BOOL}
_SITE: dict[str, Any] = {
    "paletteEndpoint": _STR, "edgeHostToken": _STR, "projectName": _STR, "projectUid": _STR, "name": _STR,
    "hostName": _STR, "prefix": _STR, "registrationURL": _STR, "tags": ("map", _ANY),
    "tagsFromFile": {"fileName": _STR, "delimiter": _STR, "separator": _STR},
    "tagsFromScript": {"scriptName": _STR, "timeout": _INT},
    "deviceUIDPaths": [{"name": _STR, "regex": _STR}],
    "network": {"httpProxy": _STR, "httpsProxy": _STR, "noProxy": _STR, "nameserver": _STR,
                "interfaces": ("map", {"type": ("dhcp", "static"), "ipAddress": _STR, "mask": _STR,
                                       "gateway": _STR, "nameserver": _STR})},
    "caCerts": [_STR], "insecureSkipVerify": _BOOL, "clusterId": _STR, "clusterName": _STR,
    "ntpServers": _ANY,
    "remoteShell": {"disable": _BOOL}, "autoRegister": _BOOL,
    "users": [{"name": _STR, "groups": _ANY, "passwd": _STR, "passwordExpiry": _STR, "lock_passwd": _BOOL,
               "ssh_authorized_keys": [_STR]}],
}
_LOGIN = {"disableRateLimiting": _BOOL, "attemptsBeforeExponentialDelayStarts": _INT,
          "maxFailedAttemptsBeforeLockout": _INT, "lockoutDurationInMinutes": _INT}
_STYLUS: dict[str, Any] = {
    "debug": _BOOL, "trace": _BOOL, "disablePasswordUpdate": _BOOL, "disableTui": _BOOL,
    "enableMultiNode": _BOOL, "featureGate": _STR, "includeTui": _BOOL,
    "installationMode": ("connected", "airgap"), "managementMode": ("central", "local"),
    "localUI": {"port": _INT, "login": _LOGIN}, "path": _STR,
    "registryCredentials": {"domain": _STR, "username": _STR, "password": _STR, "encodedPassword": _BOOL,
                            "insecure": _BOOL},
    "externalRegistries": {"registries": [_REGISTRY_ITEM], "registryMappingRules": ("map", _STR)},
    "site": _SITE, "vip": {"skip": _BOOL}, "imageRedirectWebhook": {"enable": _BOOL, "port": _INT},
    "imageOverride": _ANY, "emcServer": _ANY,
}
_INSTALL: dict[str, Any] = {
    "poweroff": _BOOL, "reboot": _BOOL, "bind_mounts": [_STR], "extra-dirs-rootfs": [_STR],
    "grub_options": _ANY, "partitions": _ANY, "extra-partitions": _ANY, "device": _STR, "auto": _BOOL,
}
_STAGES = ("initramfs", "rootfs", "boot", "fs", "network", "reconcile", "after-install",
           "after-install-chroot", "after-reset", "after-reset-chroot", "before-install", "before-upgrade",
           "before-reset", "boot.after")
_MISPLACED = ("registryCredentials", "externalRegistries", "site", "registryMappingRules")
_TOP: dict[str, Any] = {"stylus": _STYLUS, "install": _INSTALL, "stages": ("map", [_ANY]), "users": _ANY}

_PLACEHOLDER_TOKEN = re.compile(r"x{6,}|^<.*>$", re.IGNORECASE)
_PLACEHOLDER_PASSWORD = re.compile(r"#+|<.*>")
_EXAMPLE_HOST = re.compile(r"(^|[/.@])example\.(com|org|net)(?![A-Za-z0-9-])", re.IGNORECASE)


def validate(text: str, problems: list[str], warnings: list[str]) -> None:
    """Parse the rendered user-data back and check it; errors go to `problems`, the rest to `warnings`."""
    first = text.split("\n", 1)[0].rstrip()
    if first != HEADER:
        problems.append(f"user-data: the first line must be {HEADER!r} (the Edge Installer ignores the file "
                        "without it)")
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problems.append(f"user-data: not valid YAML{line}: {getattr(exc, 'problem', None) or exc}")
        return
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append("user-data: the top level must be a mapping")
        return
    for misplaced in _MISPLACED:
        if misplaced in data:
            problems.append(f"{misplaced}: belongs under stylus (a common indentation mistake)")
    _check_type(data, _TOP, "", problems, warnings, top=True)
    stylus = data.get("stylus")
    if isinstance(stylus, dict):
        _check_stylus(stylus, problems, warnings)
    stages = data.get("stages")
    if isinstance(stages, dict):
        for name in stages:
            if name not in _STAGES:
                warnings.append(f"stages.{name}: not a stage the Edge Installer documents")


def _check_stylus(stylus: dict[str, Any], problems: list[str], warnings: list[str]) -> None:
    single = stylus.get("registryCredentials")
    multi = stylus.get("externalRegistries")
    if single is not None and multi is not None:
        problems.append("stylus: registryCredentials and externalRegistries are both set; use one "
                        "(externalRegistries for several registries or mapping rules)")
    if "registryMappingRules" in stylus:
        problems.append("stylus.registryMappingRules: mapping rules belong under stylus.externalRegistries")
    if isinstance(single, dict):
        if "registryMappingRules" in single:
            problems.append("stylus.registryCredentials.registryMappingRules: mapping rules need "
                            "stylus.externalRegistries")
        _check_registry(single, "stylus.registryCredentials", problems, warnings)
    if isinstance(multi, dict):
        for i, item in enumerate(multi.get("registries") or []):
            if isinstance(item, dict):
                _check_registry(item, f"stylus.externalRegistries.registries[{i}]", problems, warnings)
        rules = multi.get("registryMappingRules")
        if isinstance(rules, dict):
            for src, dst in rules.items():
                for part in (src, dst):
                    if isinstance(part, str) and _EXAMPLE_HOST.search(part):
                        problems.append(f"stylus.externalRegistries.registryMappingRules: {quoted(part)} is the "
                                        "documentation's example.com placeholder")
    site = stylus.get("site")
    if isinstance(site, dict):
        token = site.get("edgeHostToken")
        if isinstance(token, str) and _PLACEHOLDER_TOKEN.search(token):
            problems.append("stylus.site.edgeHostToken: still the upstream placeholder (like "
                            "aUAxxxxxxxxx0ChYCrO); give the tenant registration token")
        endpoint = site.get("paletteEndpoint")
        if isinstance(endpoint, str):
            if _EXAMPLE_HOST.search(endpoint) or endpoint.startswith("<"):
                problems.append(f"stylus.site.paletteEndpoint: {quoted(endpoint)} is a placeholder")
            elif "://" in endpoint:
                warnings.append("stylus.site.paletteEndpoint: the docs write it without a scheme "
                                "(e.g. api.spectrocloud.com)")
        network = site.get("network")
        if isinstance(network, dict):
            for key in ("httpProxy", "httpsProxy"):
                value = network.get(key)
                if isinstance(value, str) and _EXAMPLE_HOST.search(value):
                    problems.append(f"stylus.site.network.{key}: {quoted(value)} is a placeholder")


def _check_registry(item: dict[str, Any], where: str, problems: list[str], warnings: list[str]) -> None:
    password = item.get("password")
    if isinstance(password, str) and _PLACEHOLDER_PASSWORD.fullmatch(password):
        problems.append(f"{where}.password: still the upstream placeholder (####); give the real password")
    domain = item.get("domain")
    if isinstance(domain, str):
        if _EXAMPLE_HOST.search(domain):
            problems.append(f"{where}.domain: {quoted(domain)} is the documentation's example.com placeholder")
        if "://" in domain:
            problems.append(f"{where}.domain: {quoted(domain)} must not have a scheme (write host[:port][/path])")
        if domain.endswith("/"):
            warnings.append(f"{where}.domain: a trailing '/' is not in any documented example")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def _check_type(value: Any, spec: Any, where: str, problems: list[str], warnings: list[str],
                top: bool = False) -> None:
    """A tiny schema walker: type errors are problems, unknown keys are warnings."""
    label = where or "user-data"
    if spec == _ANY:
        return
    if spec in (_STR, _BOOL, _INT):
        if _kind(value) != spec:
            problems.append(f"{label}: expected {spec}, got {_kind(value)}")
        return
    if isinstance(spec, tuple) and spec and spec[0] == "map":
        if not isinstance(value, dict):
            problems.append(f"{label}: expected a mapping, got {_kind(value)}")
            return
        for key, item in value.items():
            _check_type(item, spec[1], f"{label}.{key}", problems, warnings)
        return
    if isinstance(spec, tuple):  # an enum of strings
        if value not in spec:
            problems.append(f"{label}: expected one of {', '.join(spec)}, got {quoted(value)}")
        return
    if isinstance(spec, list):
        if not isinstance(value, list):
            problems.append(f"{label}: expected a list, got {_kind(value)}")
            return
        for i, item in enumerate(value):
            _check_type(item, spec[0], f"{label}[{i}]", problems, warnings)
        return
    if not isinstance(value, dict):
        problems.append(f"{label}: expected a mapping, got {_kind(value)}")
        return
    for key, item in value.items():
        sub = str(key) if top else f"{label}.{key}"
        if key not in spec:
            if not (top and key in _MISPLACED):  # reported by validate() as an error
                warnings.append(f"{sub}: unknown key (not in the Edge Installer reference)")
            continue
        _check_type(item, spec[key], sub, problems, warnings)
