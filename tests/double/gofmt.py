"""How Go prints things, so the double's messages read like Earthly's (which is written in Go).

- `quote`: fmt's `%q` / strconv.Quote (used in godotenv's and Earthly's error messages)
- `errno_text`: the text of a syscall error as Go's syscall package spells it ("no such file or directory")
- `decode_runes`: Go's []rune(string) conversion, where each invalid UTF-8 byte becomes U+FFFD
- `is_space`, `is_letter`, `is_number`: the unicode package's predicates (Python's differ at the edges)
"""

from __future__ import annotations

import errno as _errno
import os
import unicodedata

RUNE_ERROR = "\ufffd"

# unicode.IsSpace above Latin-1: the White_Space property (go/src/unicode/graphic.go, tables.go).
_WHITE_SPACE_HIGH = frozenset((0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000))


def decode_rune(data: bytes, i: int) -> tuple[str, int]:
    """utf8.DecodeRune(data[i:]): (rune, size); an invalid or truncated sequence is (RuneError, 1)."""
    b0 = data[i]
    if b0 < 0x80:
        return chr(b0), 1
    if 0xC2 <= b0 <= 0xDF:
        size = 2
    elif 0xE0 <= b0 <= 0xEF:
        size = 3
    elif 0xF0 <= b0 <= 0xF4:
        size = 4
    else:
        return RUNE_ERROR, 1
    try:
        # Python's strict decoder rejects the same things Go does (overlong forms, surrogates, > U+10FFFF).
        ch = data[i:i + size].decode("utf-8")
    except UnicodeDecodeError:
        return RUNE_ERROR, 1
    return (ch, size) if len(ch) == 1 else (RUNE_ERROR, 1)


def decode_runes(data: bytes) -> list[str]:
    """[]rune(string(data)): one str per rune, U+FFFD for every invalid byte."""
    out: list[str] = []
    i = 0
    while i < len(data):
        ch, size = decode_rune(data, i)
        out.append(ch)
        i += size
    return out


def is_space(ch: str) -> bool:
    """unicode.IsSpace."""
    r = ord(ch)
    if r <= 0xFF:
        return ch in "\t\n\v\f\r " or r in (0x85, 0xA0)
    return r in _WHITE_SPACE_HIGH


def is_letter(ch: str) -> bool:
    """unicode.IsLetter: categories Lu, Ll, Lt, Lm, Lo."""
    return unicodedata.category(ch).startswith("L")


def is_number(ch: str) -> bool:
    """unicode.IsNumber: categories Nd, Nl, No."""
    return unicodedata.category(ch) in ("Nd", "Nl", "No")


def _is_print(ch: str) -> bool:
    # strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def quote(value: str | bytes) -> str:
    """strconv.Quote / fmt %q. A str is taken as UTF-8 text; bytes may hold invalid UTF-8 (printed \\xNN)."""
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    out = ['"']
    i = 0
    while i < len(data):
        ch, size = decode_rune(data, i)
        if ch == RUNE_ERROR and size == 1 and data[i:i + 3] != b"\xef\xbf\xbd":
            out.append(f"\\x{data[i]:02x}")
        elif ch in ('"', "\\"):
            out.append("\\" + ch)
        elif _is_print(ch):
            out.append(ch)
        else:
            special = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                       "\v": "\\v"}.get(ch)
            r = ord(ch)
            if special:
                out.append(special)
            elif r < 0x20 or r == 0x7F:
                out.append(f"\\x{r:02x}")
            elif r < 0x10000:
                out.append(f"\\u{r:04x}")
            else:
                out.append(f"\\U{r:08x}")
        i += size
    out.append('"')
    return "".join(out)


def errno_text(code: int | None) -> str:
    """syscall.Errno.Error(): the C strerror text with a lower-case first letter."""
    text = os.strerror(code) if code is not None else "unknown error"
    if code == _errno.ENOENT:
        return "no such file or directory"
    return text[:1].lower() + text[1:]


def path_error(op: str, path: str, exc: OSError) -> str:
    """*fs.PathError.Error(): "open .arg: no such file or directory"."""
    return f"{op} {path}: {errno_text(exc.errno)}"
