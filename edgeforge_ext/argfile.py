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
from typing import TYPE_CHECKING

from edgeforge_ext.settings import ARCHES, K8S_DISTRIBUTIONS, OS_DISTRIBUTIONS

if TYPE_CHECKING:
    from edgeforge_ext.config import Config

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


def arg_values(config: Config, *, pe_version: str | None, k8s_versions: Mapping[str, list[str]] | None,
               problems: list[str], warnings: list[str]) -> dict[str, str]:
    """Every build value, explicitly, in .arg order; problems and warnings are appended."""
    v = config.values
    chosen = list(v["build.k8s_versions"])
    pe = v["build.pe_version"] or pe_version or ""
    values: dict[str, str] = {
        "ARCH": v["build.arch"],
        "IMAGE_REGISTRY": v["build.image_registry"],
        "IMAGE_REPO": config.image_repo,
        "OS_DISTRIBUTION": v["build.os"],
        "OS_VERSION": v["build.os_version"],
        "K8S_DISTRIBUTION": v["build.k8s_distribution"],
        # CanvOS builds one version per Earthly run; the build passes each one as --K8S_VERSION.
        "K8S_VERSION": chosen[0] if chosen else "",
        "CUSTOM_TAG": v["build.custom_tag"],
        "ISO_NAME": v["build.iso_name"],
        "PE_VERSION": pe,
        "HTTP_PROXY": v["build.http_proxy"],
        "HTTPS_PROXY": v["build.https_proxy"],
        "NO_PROXY": v["build.no_proxy"],
        "UPDATE_KERNEL": _bool(v["build.update_kernel"]),
        "CIS_HARDENING": _bool(v["build.cis_hardening"]),
        "FIPS_ENABLED": _bool(v["build.fips_enabled"]),
        "BASE_IMAGE": v["build.base_image"],
        "CLUSTERCONFIG": v["build.cluster_config"],
        "EDGE_CUSTOM_CONFIG": v["build.edge_custom_config"],
    }
    if not pe:
        del values["PE_VERSION"]
        warnings.append("PE_VERSION is not set (no CanvOS checkout and no build.pe_version): the Earthfile "
                        "default will be used, and image tags may not match the printed peVersion")
    _check_values(values, chosen, k8s_versions, problems, warnings)
    for key, value in v["build.extra_args"].items():
        where = f".arg {key} (build.extra_args)"
        if not _KEY.fullmatch(key):
            problems.append(f"{where}: not a valid variable name "
                            "(letters, digits, '_', not starting with a digit)")
        elif key in values or key == "PE_VERSION":
            problems.append(f"{where}: set by edgeforge-ext itself; use its own option instead")
        elif _SECRET_NAME.search(key):
            problems.append(f"{where}: looks like a secret; .arg never holds secrets (pass them as "
                            "Earthly secrets or environment variables)")
        else:
            values[key] = value
    for key, value in values.items():
        why = arg_value_problem(value)
        if why is not None:
            problems.append(f".arg {key}: {why}")
    return values


def _bool(flag: bool) -> str:
    return "true" if flag else "false"


def _check_values(values: dict[str, str], chosen: list[str], k8s_versions: Mapping[str, list[str]] | None,
                  problems: list[str], warnings: list[str]) -> None:
    def bad(key: str, message: str) -> None:
        problems.append(f".arg {key}: {message}")

    for key, allowed in (("ARCH", ARCHES), ("OS_DISTRIBUTION", OS_DISTRIBUTIONS),
                         ("K8S_DISTRIBUTION", K8S_DISTRIBUTIONS)):
        if values[key] not in allowed:
            bad(key, f"{values[key]!r} is not one of {', '.join(allowed)}")
    tag = values["CUSTOM_TAG"]
    if not tag:
        bad("CUSTOM_TAG", "must not be empty (the profile's image URI would end in '-')")
    elif not _CUSTOM_TAG.fullmatch(tag):
        bad("CUSTOM_TAG", f"{tag!r}: only lower-case letters and digits")
    if not _ISO_NAME.fullmatch(values["ISO_NAME"]):
        bad("ISO_NAME", f"{values['ISO_NAME']!r}: only letters, digits, '-' and '_'")
    registry = values["IMAGE_REGISTRY"]
    if not registry:
        bad("IMAGE_REGISTRY", "must not be empty")
    elif "://" in registry:
        bad("IMAGE_REGISTRY", f"{registry!r}: no scheme (write host[:port][/namespace])")
    elif "_" in registry:
        bad("IMAGE_REGISTRY", f"{registry!r}: no underscores (DNS rules)")
    elif not _REGISTRY.fullmatch(registry.rstrip("/")):
        bad("IMAGE_REGISTRY", f"{registry!r}: expected host[:port][/namespace]")
    if not _IMAGE_REPO.fullmatch(values["IMAGE_REPO"]):
        bad("IMAGE_REPO", f"{values['IMAGE_REPO']!r}: lower-case letters, digits and . _ - / separators")
    if not values["OS_VERSION"] or not _BARE.fullmatch(values["OS_VERSION"]):
        bad("OS_VERSION", f"{values['OS_VERSION']!r}: expected a version such as 22.04")
    if values["FIPS_ENABLED"] == "true" and values["UPDATE_KERNEL"] == "true":
        bad("FIPS_ENABLED", "cannot be combined with UPDATE_KERNEL=true (the CanvOS build fails)")
    _check_k8s(values["K8S_DISTRIBUTION"], chosen, k8s_versions, problems, warnings)


def _check_k8s(dist: str, chosen: list[str], k8s_versions: Mapping[str, list[str]] | None,
               problems: list[str], warnings: list[str]) -> None:
    for version in chosen:
        if not _K8S_VERSION.fullmatch(version):
            problems.append(f".arg K8S_VERSION: {version!r} is not x.y.z (no k3s1/rke2r1 suffix)")
    if not chosen:
        return
    if k8s_versions is None:
        warnings.append("K8S_VERSION is not checked against k8s_version.json (no CanvOS checkout)")
        return
    listed = list(k8s_versions.get(dist, []))
    if not listed:
        problems.append(f".arg K8S_VERSION: the checkout's k8s_version.json lists no versions for {dist}")
        return
    for version in chosen:
        if _K8S_VERSION.fullmatch(version) and version not in listed:
            near = ", ".join(nearest_versions(version, listed))
            problems.append(f".arg K8S_VERSION: {version} is not in k8s_version.json for {dist} "
                            f"(nearest: {near})")


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
        if len(raw) >= 3 and raw in arg_text:
            problems.append(f".arg: contains a secret ({secret.source or 'a password or token'}); "
                            ".arg never holds secrets")
