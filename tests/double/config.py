"""Earthly's config file (/etc/.earthly/config.yml in the image): `config global <yaml>` and reading it.

- The image entrypoint writes it from GLOBAL_CONFIG with `earthly --config <file> config global
  "$GLOBAL_CONFIG"` (earthly-entrypoint.sh:17-19); `config` upserts the YAML value at the dotted path
  (config/config.go:199-243 Upsert), refusing a value whose type does not fit ("cannot set %s to %v, as
  the types are incompatible", config.go:231-233).
- Defaults (config.go:146-166): tls_enabled TRUE; tlsca ./certs/ca_cert.pem, tlscert
  ./certs/earthly_cert.pem, tlskey ./certs/earthly_key.pem (config.go:38-54), relative to the Earthly
  directory ~/.earthly (config.go:545-555 cfgPath + util/cliutil/earthlydir.go:23-38), absolute paths as
  given; paths are only resolved when TLS is on (config.go:515-518).
- `buildkit_host` in the file is used when no --buildkit-host/EARTHLY_BUILDKIT_HOST is given
  (cmd/earthly/app/before.go:133-140).
- An explicit --config that does not exist is an error; the default file may be missing
  (before.go:82-89).

The YAML understood is what these files hold: block mappings (two levels) and flow mappings such as
`{disable_analytics: true, tls_enabled: false}`, with plain, quoted, boolean and integer scalars.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from . import gofmt

DEFAULT_CA_CERT = "./certs/ca_cert.pem"
DEFAULT_CA_KEY = "./certs/ca_key.pem"
DEFAULT_CLIENT_CERT = "./certs/earthly_cert.pem"
DEFAULT_CLIENT_KEY = "./certs/earthly_key.pem"
DEFAULT_SERVER_CERT = "./certs/buildkit_cert.pem"
DEFAULT_SERVER_KEY = "./certs/buildkit_key.pem"

# config.go GlobalConfig fields used here, with their YAML types (the rest are accepted as any value).
_GLOBAL_TYPES: dict[str, type] = {
    "disable_analytics": bool, "tls_enabled": bool, "tlsca": str, "tlsca_key": str, "tlscert": str,
    "tlskey": str, "buildkitd_tlscert": str, "buildkitd_tlskey": str, "buildkit_host": str,
    "buildkit_restart_timeout_s": int, "conversion_parallelism": int, "buildkit_max_parallelism": int,
    "cache_size_mb": int, "cache_size_pct": int, "local_registry_host": str, "secret_provider": str,
    "container_frontend": str, "buildkit_scheme": str, "buildkit_image": str, "disable_log_sharing": bool,
    "ip_tables": str, "cni_mtu": int, "buildkit_additional_args": list, "buildkit_additional_config": str,
}
_TOP_KEYS = ("global", "git", "satellite")


class ConfigError(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# A small YAML subset


def _scalar(text: str) -> Any:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    low = t.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("", "~", "null"):
        return None
    try:
        return int(t)
    except ValueError:
        return t


def _split_flow(body: str) -> list[str]:
    parts, depth, quote, cur = [], 0, "", []
    for ch in body:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return parts


def parse_value(text: str) -> Any:
    """A flow mapping, a flow sequence or a scalar."""
    t = text.strip()
    if t.startswith("{"):
        if not t.endswith("}"):
            raise ConfigError(f"yaml: line 1: did not find expected ',' or '}}' in {t!r}")
        out: dict[str, Any] = {}
        for item in _split_flow(t[1:-1]):
            key, sep, value = item.partition(":")
            if not sep:
                raise ConfigError(f"yaml: line 1: did not find expected ':' in {item.strip()!r}")
            out[key.strip()] = parse_value(value)
        return out
    if t.startswith("["):
        if not t.endswith("]"):
            raise ConfigError(f"yaml: line 1: did not find expected ',' or ']' in {t!r}")
        return [parse_value(i) for i in _split_flow(t[1:-1])]
    return _scalar(t)


def parse_document(text: str) -> dict[str, Any]:
    """Block mappings (any indentation, two levels) whose values may be flow values."""
    doc: dict[str, Any] = {}
    parent: dict[str, Any] | None = None
    parent_indent = -1
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.strip().startswith("#") or line.strip() == "---":
            continue
        indent = len(line) - len(line.lstrip())
        key, sep, value = line.strip().partition(":")
        if not sep:
            raise ConfigError(f"yaml: could not find expected ':' in {line.strip()!r}")
        key = key.strip().strip("'\"")
        if indent == 0:
            if value.strip():
                doc[key] = parse_value(value)
                parent = None
            else:
                doc[key] = {}
                parent, parent_indent = doc[key], indent
        elif parent is not None and indent > parent_indent:
            parent[key] = parse_value(value) if value.strip() else {}
        else:
            raise ConfigError(f"yaml: bad indentation of {line.strip()!r}")
    return doc


def _dump_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_dump_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump_value(v) for v in value) + "]"
    text = str(value)
    return text if text and all(c.isalnum() or c in "._/-:" for c in text) else '"' + text.replace('"', '\\"') + '"'


def dump_document(doc: dict[str, Any]) -> str:
    lines = []
    for key, value in doc.items():
        if isinstance(value, dict) and value:
            lines.append(f"{key}:")
            lines.extend(f"    {k}: {_dump_value(v)}" for k, v in value.items())
        else:
            lines.append(f"{key}: {_dump_value(value)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# `earthly config <path> <value>`


def _compatible(path: list[str], value: Any) -> bool:
    if path[0] == "global":
        if len(path) == 1:
            if not isinstance(value, dict):
                return False
            return all(_fits(k, v) for k, v in value.items())
        return _fits(path[1], value)
    return True


def _fits(key: str, value: Any) -> bool:
    want = _GLOBAL_TYPES.get(key)
    if want is None or value is None:
        return True
    if want is bool:
        return isinstance(value, bool)
    if want is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if want is list:
        return isinstance(value, list)
    return not isinstance(value, (dict, list))


def upsert(config_path: str, dotted: str, value_text: str) -> None:
    """config.go Upsert, saved with WriteConfigFile (config.go:489-497)."""
    path = [p.strip('"') for p in dotted.split(".")]
    if path[0] not in _TOP_KEYS:
        raise ConfigError(f"path is not valid: no such key {path[0]}")
    try:
        with open(config_path, encoding="utf-8") as f:
            doc = parse_document(f.read())
    except FileNotFoundError:
        doc = {}
    value = parse_value(value_text)
    if not _compatible(path, value):
        raise ConfigError(f"cannot set {dotted} to {value_text}, as the types are incompatible")
    node: dict[str, Any] = doc
    for part in path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[path[-1]] = value
    os.makedirs(os.path.dirname(config_path) or ".", exist_ok=True)
    with open(config_path, "w", encoding="utf-8") as f:
        f.write(dump_document(doc))


# --------------------------------------------------------------------------------------------------
# Reading the config


@dataclass
class GlobalConfig:
    tls_enabled: bool = True
    tlsca: str = DEFAULT_CA_CERT
    tlscert: str = DEFAULT_CLIENT_CERT
    tlskey: str = DEFAULT_CLIENT_KEY
    buildkit_host: str = ""
    disable_analytics: bool = False


def earthly_dir() -> str:
    """util/cliutil/earthlydir.go:34-38: $HOME/.earthly (fileutil.HomeDir)."""
    return os.path.join(os.environ.get("HOME") or "/root", ".earthly")


def _cfg_path(path: str) -> str:
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(earthly_dir(), path))  # filepath.Join cleans


def load(config_path: str, *, explicit: bool) -> GlobalConfig:
    """before.go:82-95 + config.go ParseYAML with its defaults and parseTLSPaths."""
    try:
        with open(config_path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        if explicit or not isinstance(exc, FileNotFoundError):
            raise ConfigError(f"read config: failed to read from {config_path}: "
                              f"{gofmt.path_error('open', config_path, exc)}") from exc
        text = ""
    try:
        doc = parse_document(text)
    except ConfigError as exc:
        raise ConfigError(f"failed to parse {config_path}: failed to parse YAML config: {exc}") from exc
    cfg = GlobalConfig()
    glob = doc.get("global") or {}
    if not isinstance(glob, dict):
        raise ConfigError(f"failed to parse {config_path}: failed to parse YAML config: global is not a mapping")
    for key in ("tls_enabled", "disable_analytics"):
        if key in glob:
            if not isinstance(glob[key], bool):
                raise ConfigError(f"failed to parse {config_path}: failed to parse YAML config: yaml: unmarshal "
                                  f"errors:\n  cannot unmarshal {glob[key]!s} into bool")
            setattr(cfg, key, glob[key])
    for key in ("tlsca", "tlscert", "tlskey", "buildkit_host"):
        if glob.get(key):
            setattr(cfg, key, str(glob[key]))
    if cfg.tls_enabled:  # config.go:515-518: relative TLS paths resolved only when TLS is on
        cfg.tlsca, cfg.tlscert, cfg.tlskey = (_cfg_path(cfg.tlsca), _cfg_path(cfg.tlscert), _cfg_path(cfg.tlskey))
    return cfg
