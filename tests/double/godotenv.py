"""A port of joho/godotenv v1.5.1: how Earthly reads `.arg`, `.secret` and `.env`.

Earthly v0.8.15 pins godotenv v1.5.1 (go.mod:36) and reads the three files with `godotenv.Read`
(cmd/earthly/subcmd/build_cmd.go:283-307) and `.env` also with `godotenv.Load` (cmd/earthly/main.go:117).
The port keeps the original's structure and quirks, line for line (godotenv parser.go v1.5.1):

- `\\r\\n` becomes `\\n` first (parser.go:21); blank lines and `#` lines are skipped (parser.go:50-68);
- an optional `export ` prefix, then the key up to `=` or `:` (YAML style), letters/digits/`_`/`.` and
  spaces only; any other byte is an error naming the rest of the file (parser.go:71-117). The key
  loop walks BYTES, so a non-ASCII byte counts as a Latin-1 letter (parser.go:84-106);
- unquoted values end at the end of the line, lose a trailing ` #comment` (the LAST one, searching
  backwards, parser.go:146-153) and surrounding spaces, and have `$VAR`/`${VAR}` expanded;
- single-quoted values are literal; double-quoted ones unescape `\\n`/`\\r` and drop other backslashes
  (parser.go:192-205), then expand variables; a quote preceded by a backslash does not close (:167);
- expansion only knows keys read EARLIER IN THE SAME FILE, upper-case names only (`[A-Z0-9_]+`, :253),
  a missing key is empty, `\\$VAR` is a literal `$VAR` (:257-271); the process environment is never used;
- `KEY=` is an empty string, not an absent key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, MutableMapping

from . import gofmt

_COMMENT = ord("#")
_SINGLE = ord("'")
_DOUBLE = ord('"')

_ESCAPE = re.compile(r"\\.")  # parser.go:252
_EXPAND_VAR = re.compile(r"(\\)?(\$)(\()?\{?([A-Z0-9_]+)?\}?")  # parser.go:253
_UNESCAPE_CHARS = re.compile(r"\\([^$])")  # parser.go:254


class DotenvError(Exception):
    """A parse error, with godotenv's message."""


def _is_space(ch: str) -> bool:
    """parser.go:236-242: a space but not a line break."""
    return ch in "\t\v\f\r " or ch in ("\x85", "\xa0")


def _is_line_end(ch: str) -> bool:
    return ch in "\n\r"  # parser.go:244-249


def _index_func(src: bytes, pred: Callable[[str], bool]) -> int:
    """bytes.IndexFunc: byte offset of the first rune matching pred, or -1."""
    i = 0
    while i < len(src):
        ch, size = gofmt.decode_rune(src, i)
        if pred(ch):
            return i
        i += size
    return -1


def _trim_left_func(src: bytes, pred: Callable[[str], bool]) -> bytes:
    i = _index_func(src, lambda ch: not pred(ch))
    return b"" if i == -1 else src[i:]


def _trim_right_func(src: bytes, pred: Callable[[str], bool]) -> bytes:
    end = len(src)
    while end > 0:
        # Walk back to the start of the last rune (at most 4 bytes) and test it.
        start = end - 1
        while start > 0 and end - start < 4 and (src[start] & 0xC0) == 0x80:
            start -= 1
        ch, size = gofmt.decode_rune(src, start)
        if start + size != end:  # not a whole rune: Go steps back one byte (RuneError)
            ch, start = gofmt.RUNE_ERROR, end - 1
        if not pred(ch):
            break
        end = start
    return src[:end]


def _text(data: bytes) -> str:
    """Go's string(bytes): the bytes unchanged (invalid UTF-8 survives; here as surrogate escapes)."""
    return data.decode("utf-8", "surrogateescape")


def unmarshal_bytes(src: bytes) -> dict[str, str]:
    """godotenv.go UnmarshalBytes."""
    out: dict[str, str] = {}
    parse_bytes(src, out)
    return out


def parse_bytes(src: bytes, out: dict[str, str]) -> None:
    """parser.go:20-45."""
    src = src.replace(b"\r\n", b"\n")
    cutset: bytes | None = src
    while True:
        cutset = _statement_start(cutset or b"")
        if cutset is None:
            break
        key, left = _locate_key_name(cutset)
        value, rest = _extract_var_value(left, out)
        out[key] = value
        cutset = rest


def _statement_start(src: bytes) -> bytes | None:
    """parser.go:50-68 (its recursion as a loop)."""
    while True:
        pos = _index_func(src, lambda ch: not gofmt.is_space(ch))
        if pos == -1:
            return None
        src = src[pos:]
        if src[0] != _COMMENT:
            return src
        pos = _index_func(src, lambda ch: ch == "\n")
        if pos == -1:
            return None
        src = src[pos:]


def _locate_key_name(src: bytes) -> tuple[str, bytes]:
    """parser.go:71-117."""
    src = _trim_left_func(src, _is_space)
    if src.startswith(b"export"):
        trimmed = src[len(b"export"):]
        if _index_func(trimmed, _is_space) == 0:
            src = _trim_left_func(trimmed, _is_space)
    key = ""
    offset = 0
    for i, char in enumerate(src):  # bytes, as `for i, char := range src` over a []byte
        rchar = chr(char)
        if _is_space(rchar):
            continue
        if rchar in "=:":
            key = _text(src[:i])
            offset = i + 1
            break
        if rchar == "_":
            continue
        if gofmt.is_letter(rchar) or gofmt.is_number(rchar) or rchar == ".":
            continue
        raise DotenvError(
            f"unexpected character {gofmt.quote(rchar)} in variable name near {gofmt.quote(src)}")
    if len(src) == 0:
        raise DotenvError("zero length string")
    while key and gofmt.is_space(key[-1]):  # strings.TrimRightFunc(key, unicode.IsSpace)
        key = key[:-1]
    return key, _trim_left_func(src[offset:], _is_space)


def _extract_var_value(src: bytes, variables: MutableMapping[str, str]) -> tuple[str, bytes | None]:
    """parser.go:120-190."""
    quote = src[0] if src and src[0] in (_SINGLE, _DOUBLE) else None
    if quote is None:
        end_of_line = _index_func(src, _is_line_end)
        if end_of_line == -1:
            end_of_line = len(src)
            if end_of_line == 0:
                return "", None
        line = gofmt.decode_runes(src[:end_of_line])
        end_of_var = len(line)
        if end_of_var == 0:
            return "", src[end_of_line:]
        for i in range(end_of_var - 1, -1, -1):
            if line[i] == "#" and i > 0 and _is_space(line[i - 1]):
                end_of_var = i
                break
        trimmed = "".join(line[:end_of_var])
        start, stop = 0, len(trimmed)
        while start < stop and _is_space(trimmed[start]):
            start += 1
        while stop > start and _is_space(trimmed[stop - 1]):
            stop -= 1
        return expand_variables(trimmed[start:stop], variables), src[end_of_line:]

    for i in range(1, len(src)):
        if src[i] != quote:
            continue
        if src[i - 1] == ord("\\"):  # an escaped quote does not close the value
            continue
        qchar = chr(quote)

        def is_quote(ch: str, q: str = qchar) -> bool:
            return ch == q

        value = _text(_trim_left_func(_trim_right_func(src[:i], is_quote), is_quote))
        if quote == _DOUBLE:
            value = expand_variables(expand_escapes(value), variables)
        return value, src[i + 1:]

    end = _index_func(src, lambda ch: ch == "\n")
    if end == -1:
        end = len(src)
    raise DotenvError(f"unterminated quoted value {_text(src[:end])}")


def expand_escapes(text: str) -> str:
    """parser.go:192-205: `\\n` and `\\r` become line breaks, a backslash before anything but `$` goes."""
    def one(match: re.Match[str]) -> str:
        c = match.group(0)[1:]
        return {"n": "\n", "r": "\r"}.get(c, match.group(0))

    return _UNESCAPE_CHARS.sub(r"\1", _ESCAPE.sub(one, text))


def expand_variables(text: str, variables: MutableMapping[str, str]) -> str:
    """parser.go:257-271. (`submatch[2] == "("` can never hold: `$(` is kept as written, as upstream.)"""
    def one(match: re.Match[str]) -> str:
        groups = [match.group(0)] + [g or "" for g in match.groups()]
        if groups[1] == "\\" or groups[2] == "(":
            return groups[0][1:]
        if groups[4] != "":
            return variables.get(groups[4], "")
        return groups[0]

    return _EXPAND_VAR.sub(one, text)


def read(*filenames: str) -> dict[str, str]:
    """godotenv.go Read: each file in turn, later keys win; OSError-like failures as DotenvError with
    Go's text ("open .arg: no such file or directory"), FileNotFoundError kept as the cause."""
    env: dict[str, str] = {}
    for name in filenames or (".env",):
        env.update(_read_file(name))
    return env


class DotenvFileError(DotenvError):
    def __init__(self, message: str, *, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing  # errors.Is(err, os.ErrNotExist)


def _read_file(name: str) -> dict[str, str]:
    try:
        with open(name, "rb") as f:
            data = f.read()
    except IsADirectoryError as exc:  # os.Open succeeds on a directory; the read fails
        raise DotenvFileError(gofmt.path_error("read", name, exc), missing=False) from exc
    except OSError as exc:
        raise DotenvFileError(gofmt.path_error("open", name, exc),
                              missing=isinstance(exc, FileNotFoundError)) from exc
    return unmarshal_bytes(data)


def load(name: str, environ: MutableMapping[str, str] | None = None) -> None:
    """godotenv.go Load/loadFile: set each key that the environment does not already have."""
    env = os.environ if environ is None else environ
    for key, value in _read_file(name).items():
        if key not in env:
            env[key] = value
