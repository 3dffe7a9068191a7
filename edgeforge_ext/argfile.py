"""The `.arg` file: which build values it carries, their validation, and bash/Earthly-safe quoting.

`.arg` is read twice with different rules: `earthly.sh` runs `source .arg` (bash), and Earthly
itself reads it with joho/godotenv v1.5.1 (the version Earthly's go.mod pins). A value is written
so that BOTH read it back unchanged, or it is refused:

- only `[A-Za-z0-9_./:,@%+=-]` characters: written bare (neither reader treats them specially),
  except a value ending in `---` (godotenv deletes every "---" + newline, a YAML separator, first);
- otherwise, no `'` and not ending in a backslash: single quotes. bash takes them literally;
  godotenv takes single-quoted text literally (no `$` expansion, no escapes) and ends the value at
  the first `'` not preceded by a backslash — hence the rule about a trailing backslash;
- otherwise (it holds a `'`), no `"`, `$`, backtick or backslash: double quotes (bash would expand
  `$`/backtick/backslash, godotenv would expand `$` and unescape backslashes);
- refused: newlines, carriage returns and other control characters (a KEY=VALUE line ends at the
  newline for godotenv; bash cannot hold NUL), a value ending in a backslash that needs quotes, and
  a `'` together with one of `"`, `$`, backtick, backslash: no quoting satisfies both readers.

`.arg` never holds a secret: no password, no token (checked against every secret the config knows).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeforge_ext.secrets import MIN_MASKED_LENGTH, quoted, url_secrets
from edgeforge_ext.settings import ARCHES, K8S_DISTRIBUTIONS, OS_DISTRIBUTIONS

if TYPE_CHECKING:
    from edgeforge_ext.canvos.contract import BuildContract
    from edgeforge_ext.canvos.earthfile import Earthfile
    from edgeforge_ext.config import Config
    from edgeforge_ext.secrets import Secret

_BARE = re.compile(r"[A-Za-z0-9_./:,@%+=-]*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CUSTOM_TAG = re.compile(r"[a-z0-9]+")
_ISO_NAME = re.compile(r"[A-Za-z0-9_-]+")
_K8S_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_REGISTRY = re.compile(r"[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._/-]+)?")
_IMAGE_REPO = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|PRO_KEY|API_KEY|CREDENTIAL", re.IGNORECASE)


class ArgQuoteError(ValueError):
    """A value no quoting writes so that bash and Earthly both read it back unchanged."""


def quote_arg(value: object) -> str:
    """The right-hand side of KEY=VALUE for `value` (see the module docstring for the rules)."""
    text = "true" if value is True else "false" if value is False else str(value)
    why = arg_value_problem(text)
    if why is not None:
        raise ArgQuoteError(why)
    if _BARE.fullmatch(text) and not text.endswith("---"):
        return text
    if "'" not in text and not text.endswith("\\"):
        return f"'{text}'"
    return f'"{text}"'


def arg_value_problem(text: str) -> str | None:
    """Why `text` cannot be a .arg value, or None. The message never repeats the value."""
    if "\n" in text or "\r" in text:
        return "holds a line break, which would end the KEY=VALUE line"
    if _CONTROL.search(text):
        return "holds a control character"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return "holds an invalid character (lone surrogate)"
    if _BARE.fullmatch(text) or ("'" not in text and not text.endswith("\\")):
        return None
    if "'" not in text:
        return ("ends with a backslash — godotenv (Earthly) would read the closing quote as escaped, "
                "and bash needs quotes")
    if any(c in text for c in '"$`\\'):
        return ("holds a single quote together with one of \" $ ` \\ — no quoting reads back the same "
                "in both bash (source .arg) and Earthly (godotenv)")
    return None


# .arg keys and the configuration keys they come from. The first group names the images and the ISO
# the tool then looks for: always written. The rest are written when the user set them or the
# Earthfile has no equal default (an empty value is never written: it would erase a default).
_IDENTITY = ("ARCH", "IMAGE_REGISTRY", "IMAGE_REPO", "OS_DISTRIBUTION", "OS_VERSION", "K8S_DISTRIBUTION",
             "K8S_VERSION", "CUSTOM_TAG", "ISO_NAME", "PE_VERSION")
_OPTION_KEYS = {
    "HTTP_PROXY": "build.http_proxy", "HTTPS_PROXY": "build.https_proxy", "NO_PROXY": "build.no_proxy",
    "UPDATE_KERNEL": "build.update_kernel", "CIS_HARDENING": "build.cis_hardening",
    "FIPS_ENABLED": "build.fips_enabled", "IS_UKI": "build.uki", "BASE_IMAGE": "build.base_image",
    "CLUSTERCONFIG": "build.cluster_config", "EDGE_CUSTOM_CONFIG": "build.edge_custom_config",
}
_PROXY_KEYS = ("HTTP_PROXY", "HTTPS_PROXY")


@dataclass(frozen=True)
class ArgPlan:
    """What the build gives Earthly as build args, before any file is written."""

    values: dict[str, str]  # the .arg in the checkout, in order (never a secret, never empty)
    private: tuple[str, ...] = ()  # keys only in the 0600 .arg the Earthly container gets (secrets)
    defaulted: tuple[str, ...] = ()  # declared ARGs with a default this build leaves to the Earthfile


def arg_values(config: Config, *, pe_version: str | None, k8s_versions: Mapping[str, list[str]] | None,
               problems: list[str], warnings: list[str], contract: BuildContract | None = None) -> dict[str, str]:
    """The `.arg` values (see plan_args); problems and warnings are appended."""
    return plan_args(config, pe_version=pe_version, k8s_versions=k8s_versions, problems=problems,
                     warnings=warnings, contract=contract).values


def plan_args(config: Config, *, pe_version: str | None, k8s_versions: Mapping[str, list[str]] | None,
              problems: list[str], warnings: list[str], contract: BuildContract | None = None,
              redirect_inputs: bool = True) -> ArgPlan:
    """Every build value `.arg` carries, checked against the checkout's Earthfile when it is known.

    Rules (why: Earthly reads `.arg` as overriding build args, and an override beats an ARG's default
    even when empty — Earthly v0.8.15 variables/collection.go ~233-264):
    - an empty value is never written; a value the user did not set that equals the Earthfile's
      default is left to the Earthfile;
    - a key the Earthfile does not declare is refused when the user set it (dropped otherwise);
    - secrets (proxy credentials, the Ubuntu Pro token on tags that take it as a build arg) go only
      into the private `.arg` (`ArgPlan.private`), never into the checkout's `.arg`;
    - with `build.inputs_registry` (and `redirect_inputs`), the ARGs that carry the registries of the
      build's own images point there (canvos/build_inputs.py).
    """
    chosen = list(config.build.k8s_versions)
    pe = config.build.pe_version or pe_version or ""
    candidates: dict[str, str] = {
        "ARCH": config.build.arch,
        "IMAGE_REGISTRY": config.build.image_registry,
        "IMAGE_REPO": config.image_repo,
        "OS_DISTRIBUTION": config.build.os,
        "OS_VERSION": config.build.os_version,
        "K8S_DISTRIBUTION": config.build.k8s_distribution,
        # CanvOS builds one version per Earthly run; the build passes each one as --K8S_VERSION.
        "K8S_VERSION": chosen[0] if chosen else "",
        "CUSTOM_TAG": config.build.custom_tag,
        "ISO_NAME": config.build.iso_name,
        "PE_VERSION": pe,
    }
    for key, name in _OPTION_KEYS.items():
        candidates[key] = _option_value(config, name)
    if not pe:
        warnings.append("PE_VERSION is not set (no CanvOS checkout and no build.pe_version): the Earthfile "
                        "default will be used, and image tags may not match the printed peVersion")
    _check_values(candidates, chosen, k8s_versions, problems, warnings,
                  allow_unlisted=bool(config.build.allow_unlisted_k8s_version))
    earthfile = contract.earthfile if contract is not None else None
    values: dict[str, str] = {}
    private: list[str] = []
    for key, value in candidates.items():
        user_set = key in _IDENTITY or config.source_of(_OPTION_KEYS.get(key, "")) != "default"
        if value == "":
            continue
        if earthfile is not None:
            if key not in earthfile.declared:
                if user_set and key not in ("PE_VERSION",):
                    problems.append(_undeclared(key, _OPTION_KEYS.get(key, key), earthfile.declared, contract))
                continue
            if not user_set and earthfile.base_default(key) == value:
                continue  # the Earthfile says the same
        if key in _PROXY_KEYS and url_secrets(value):
            private.append(key)  # credentials in the proxy URL: never in the checkout's .arg
            continue
        values[key] = value
    _ubuntu_pro(config, contract, values, private, problems)
    if contract is not None and contract.cert_mechanism == "proxy-cert-path" and config.build.ca_certs:
        # CanvOS v4.4.x trusts a proxy CA only when PROXY_CERT_PATH is set; the file is ./sc.crt.
        values["PROXY_CERT_PATH"] = "sc.crt"
    for key, value in config.build.extra_args.items():
        where = f".arg {key} (build.extra_args)"
        if not _KEY.fullmatch(key):
            problems.append(f"{where}: not a valid variable name "
                            "(letters, digits, '_', not starting with a digit)")
        elif key in candidates or key in values:
            problems.append(f"{where}: set by edgeforge-ext itself; use its own option instead")
        elif _SECRET_NAME.search(key):
            problems.append(f"{where}: looks like a secret; .arg never holds secrets (pass them as "
                            "Earthly secrets or environment variables)")
        elif earthfile is not None and key not in earthfile.declared:
            problems.append(_undeclared(key, "build.extra_args", earthfile.declared, contract))
        elif value == "" and earthfile is not None and earthfile.has_default(key):
            problems.append(f"{where}: empty, which would erase the Earthfile's default for {key} "
                            "(Earthly lets an empty override win); leave the key out")
        elif value != "":
            values[key] = value
    if redirect_inputs and config.build.inputs_registry and contract is not None:
        values.update(inputs_overrides(config, contract, values, warnings))
    for key, value in values.items():
        why = arg_value_problem(value)
        if why is not None:
            problems.append(f".arg {key}: {why}")
    overriding = _check_earthly_build_args(config.earthly_build_args, earthfile, contract, problems, warnings)
    defaulted: tuple[str, ...] = ()
    if earthfile is not None:
        given = set(values) | set(private) | set(overriding)
        defaulted = tuple(sorted(n for n in earthfile.defaults() if n not in given))
    return ArgPlan(values, tuple(private), defaulted)


def entry_target(config: Config) -> str:
    """The Earthfile target a build of `build.target` starts from (plan.py runs it)."""
    from edgeforge_ext.settings import EARTHLY_TARGETS

    return EARTHLY_TARGETS[str(config.build.target)]


def inputs_overrides(config: Config, contract: BuildContract, values: Mapping[str, str],
                     warnings: list[str]) -> dict[str, str]:
    """The build args that make the build pull its own images from `build.inputs_registry`."""
    from edgeforge_ext.canvos.build_inputs import find_build_inputs

    found = find_build_inputs(contract, values, entry_target(config), None, config.build.inputs_registry)
    return dict(found.overrides)


def _check_earthly_build_args(raw: str, earthfile: Earthfile | None, contract: BuildContract | None,
                              problems: list[str], warnings: list[str]) -> dict[str, str]:
    """EARTHLY_BUILD_ARGS (comma-separated KEY=VALUE, as urfave/cli splits it) beats .arg in Earthly
    (cmd/earthly/common/shared.go CombineVariables): same rules as .arg keys. Returns its pairs."""
    pairs: dict[str, str] = {}
    for item in (p for p in raw.split(",") if p.strip()):
        key, _, value = item.partition("=")
        key = key.strip()
        pairs[key] = value
        where = f"EARTHLY_BUILD_ARGS {key}"
        if earthfile is not None and key not in earthfile.declared:
            problems.append(_undeclared(key, "", earthfile.declared, contract, where=where))
        elif value == "" and earthfile is not None and earthfile.has_default(key):
            problems.append(f"{where}: empty, which would erase the Earthfile's default (Earthly lets an empty "
                            "override win); leave the key out")
    if pairs:
        warnings.append(f"EARTHLY_BUILD_ARGS from the environment overrides .arg for: {', '.join(pairs)}")
    return pairs


def _undeclared(key: str, setting: str, declared: frozenset[str], contract: BuildContract | None,
                where: str = "") -> str:
    """`where` names the source when it is not .arg (EARTHLY_BUILD_ARGS KEY)."""
    import difflib

    near = difflib.get_close_matches(key, sorted(declared), n=3, cutoff=0.6)
    hint = f" (nearest declared: {', '.join(near)})" if near else ""
    where = where or f".arg {key} ({setting})"
    return f"{where}: the checkout's Earthfile declares no ARG {key}, so Earthly would ignore it{hint}"


def _ubuntu_pro(config: Config, contract: BuildContract | None, values: dict[str, str], private: list[str],
                problems: list[str]) -> None:
    """The Ubuntu Pro token as the checked-out tag takes it: v4.10+ `UBUNTU_PRO_ATTACH=true` and an
    Earthly secret (earthly.sh `--secret UBUNTU_PRO_KEY`), earlier tags a build arg."""
    from edgeforge_ext.canvos.contract import PRO_BUILD_ARG, PRO_KEY, PRO_SECRET

    if config.ubuntu_pro_key is None:
        return
    if config.build.os != "ubuntu":
        problems.append(f"Ubuntu Pro (build.ubuntu_pro_key_file): applies to --os ubuntu only, not "
                        f"{config.build.os}")
        return
    if contract is None:
        problems.append("Ubuntu Pro (build.ubuntu_pro_key_file): needs the CanvOS checkout to know how this ref "
                        "takes the token")
        return
    mode = contract.ubuntu_pro
    if mode == PRO_SECRET:
        toggle = contract.secret_toggle(PRO_KEY)
        if toggle is not None:
            values[toggle[0]] = toggle[1]
    elif mode == PRO_BUILD_ARG:
        private.append(PRO_KEY)
    else:
        problems.append("Ubuntu Pro (build.ubuntu_pro_key_file): the checkout's Earthfile takes no Ubuntu Pro "
                        f"token (no ARG {PRO_KEY} and no RUN --secret {PRO_KEY})")


def private_args(config: Config, plan: ArgPlan) -> dict[str, Secret]:
    """The values of `plan.private`: only the Earthly container's 0600 `.arg` holds them."""
    from edgeforge_ext.secrets import Secret

    out: dict[str, Secret] = {}
    for key in plan.private:
        if key == "UBUNTU_PRO_KEY" and config.ubuntu_pro_key is not None:
            out[key] = config.ubuntu_pro_key
        elif key in _PROXY_KEYS:
            out[key] = Secret(_option_value(config, _OPTION_KEYS[key]), source=_OPTION_KEYS[key])
    return out


def _option_value(config: Config, key: str) -> str:
    """The .arg text of a build.* option (`build.update_kernel` -> "false")."""
    value = getattr(config.build, key.removeprefix("build."))
    return _bool(value) if isinstance(value, bool) else str(value)


def _bool(flag: bool) -> str:
    return "true" if flag else "false"


def _check_values(values: dict[str, str], chosen: list[str], k8s_versions: Mapping[str, list[str]] | None,
                  problems: list[str], warnings: list[str], *, allow_unlisted: bool = False) -> None:
    def bad(key: str, message: str) -> None:
        problems.append(f".arg {key}: {message}")

    for key, allowed in (("ARCH", ARCHES), ("OS_DISTRIBUTION", OS_DISTRIBUTIONS),
                         ("K8S_DISTRIBUTION", K8S_DISTRIBUTIONS)):
        if values[key] not in allowed:
            bad(key, f"{quoted(values[key])} is not one of {', '.join(allowed)}")
    tag = values["CUSTOM_TAG"]
    if not tag:
        bad("CUSTOM_TAG", "must not be empty (the profile's image URI would end in '-')")
    elif not _CUSTOM_TAG.fullmatch(tag):
        bad("CUSTOM_TAG", f"{quoted(tag)}: only lower-case letters and digits")
    if not _ISO_NAME.fullmatch(values["ISO_NAME"]):
        bad("ISO_NAME", f"{quoted(values['ISO_NAME'])}: only letters, digits, '-' and '_'")
    registry = values["IMAGE_REGISTRY"]
    if not registry:
        bad("IMAGE_REGISTRY", "must not be empty")
    elif "://" in registry:
        bad("IMAGE_REGISTRY", f"{quoted(registry)}: no scheme (write host[:port][/namespace])")
    elif "_" in registry:
        bad("IMAGE_REGISTRY", f"{quoted(registry)}: no underscores (DNS rules)")
    elif not _REGISTRY.fullmatch(registry.rstrip("/")):
        bad("IMAGE_REGISTRY", f"{quoted(registry)}: expected host[:port][/namespace]")
    if not _IMAGE_REPO.fullmatch(values["IMAGE_REPO"]):
        bad("IMAGE_REPO", f"{quoted(values['IMAGE_REPO'])}: lower-case letters, digits and . _ - / separators")
    if not values["OS_VERSION"] or not _BARE.fullmatch(values["OS_VERSION"]):
        bad("OS_VERSION", f"{quoted(values['OS_VERSION'])}: expected a version such as 22.04")
    if values["FIPS_ENABLED"] == "true" and values["UPDATE_KERNEL"] == "true":
        bad("FIPS_ENABLED", "cannot be combined with UPDATE_KERNEL=true (the CanvOS build fails)")
    _check_k8s(values["K8S_DISTRIBUTION"], chosen, k8s_versions, problems, warnings, allow_unlisted=allow_unlisted)


def _check_k8s(dist: str, chosen: list[str], k8s_versions: Mapping[str, list[str]] | None,
               problems: list[str], warnings: list[str], *, allow_unlisted: bool = False) -> None:
    for version in chosen:
        if not _K8S_VERSION.fullmatch(version):
            problems.append(f".arg K8S_VERSION: {quoted(version)} is not x.y.z (no k3s1/rke2r1 suffix)")
    if not chosen:
        return
    if k8s_versions is None:
        warnings.append("K8S_VERSION is not checked against k8s_version.json (no CanvOS checkout)")
        return
    # CanvOS itself never checks K8S_VERSION against k8s_version.json (it reads the file only when
    # K8S_VERSION is empty): a version it does not list may still build, hence the way out.
    listed = list(k8s_versions.get(dist, []))
    report = warnings if allow_unlisted else problems
    way_out = "" if allow_unlisted else "; --allow-unlisted-k8s-version builds it anyway"
    if not listed:
        report.append(f".arg K8S_VERSION: the checkout's k8s_version.json lists no versions for {dist}{way_out}")
        return
    for version in chosen:
        if _K8S_VERSION.fullmatch(version) and version not in listed:
            near = ", ".join(nearest_versions(version, listed))
            report.append(f".arg K8S_VERSION: {version} is not in k8s_version.json for {dist} "
                          f"(nearest: {near}){way_out}")


def nearest_versions(version: str, listed: list[str], count: int = 3) -> list[str]:
    """The listed versions closest to `version`: same minor first, then by distance."""
    def key(v: str) -> tuple[int, ...]:
        m = _K8S_VERSION.fullmatch(v)
        return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)

    want = key(version)

    def distance(v: str) -> tuple[int, int, int]:
        got = key(v)
        return (abs(got[0] - want[0]), abs(got[1] - want[1]), abs(got[2] - want[2]))

    return sorted(sorted(listed, key=distance)[:count], key=key)


def check_no_secrets(arg_text: str, config: Config, problems: list[str]) -> None:
    """A rendered .arg (from any template) must not contain a secret value the config knows."""
    for secret in config.secrets:
        raw = secret.reveal()
        if len(raw) >= MIN_MASKED_LENGTH and raw in arg_text:
            problems.append(f".arg: contains a secret ({secret.source or 'a password or token'}); "
                            ".arg never holds secrets")
