"""YAML quoting for user-data: every value a template writes becomes a YAML scalar that parses back
to exactly that value (the `yq` filter of the templates; the config checks name a key up front).

Apart from render.py (the only Jinja user) so that userdata.py can check values without importing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeforge_ext.secrets import Secret


class QuoteError(ValueError):
    """A value that cannot be written as a YAML scalar (the message never holds the value)."""


# Characters YAML allows raw inside a double-quoted scalar. Everything else is escaped, including
# NEL, LS, PS (PyYAML folds raw ones into line breaks) and the BOM; C0/C1 controls, DEL and
# U+FFFE/U+FFFF are not printable in YAML and must be escaped too.
_RAW_EXCLUDED = {"\x85", "\u2028", "\u2029", "\ufeff"}
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0"}


def _yaml_char(ch: str) -> str:
    short = _SHORT_ESCAPES.get(ch)
    if short is not None:
        return short
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:
        # Lone surrogates (e.g. undecodable bytes from the environment) are not Unicode text.
        raise QuoteError(f"a value contains an invalid character (lone surrogate U+{code:04X}); "
                         "YAML text must be valid Unicode")
    printable = (0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
                 or code >= 0x10000)
    if printable and ch not in _RAW_EXCLUDED:
        return ch
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def yaml_quote(value: Any) -> str:
    """Render a value as a YAML flow scalar/collection that parses back to exactly that value.

    Strings always become double-quoted scalars, so `yes`, `~`, `0123`, `*x`, `!tag`, `#`, `: `
    and leading spaces stay strings. `Secret` values are revealed here, and only here.
    """
    if isinstance(value, Secret):
        value = value.reveal()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + "".join(_yaml_char(ch) for ch in value) + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_quote(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{yaml_quote(str(k))}: {yaml_quote(v)}" for k, v in value.items()) + "}"
    if value is None:
        raise QuoteError("a template wrote a value that is not set (None); guard it with {% if %}")
    raise QuoteError(f"a template wrote a {type(value).__name__}, which has no YAML form here")


def check_yaml_text(value: str) -> str | None:
    """Why `value` cannot be written to YAML, or None. Used to name the config key up front."""
    try:
        yaml_quote(value)
    except QuoteError as exc:
        return str(exc)
    return None
