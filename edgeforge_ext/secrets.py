"""Secret values: masked when printed, read from env/file/stdin, and a redactor for log lines."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from edgeforge_ext.errors import ConfigError

MASK = "********"
MIN_MASKED_LENGTH = 4  # a shorter secret would mask pieces of ordinary words ("pas" in "password")


class Secret:
    """A string that never shows itself by accident (repr, str, f-strings, logs).

    `login` is the user name it authenticates (registry, git, proxy), so the redactor also knows the
    `user:password` pair in base64, as a Basic auth header carries it."""

    __slots__ = ("_value", "login", "source")

    def __init__(self, value: str, source: str = "", login: str = "") -> None:
        self._value = value
        self.source = source
        self.login = login

    def reveal(self) -> str:
        """The real value: call only where it must be written (user-data, an auth header)."""
        return self._value

    def for_login(self, login: str) -> Secret:
        """The same secret, known as the password of `login`."""
        return Secret(self._value, self.source, login)

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def secret_from_file(path: str | Path, what: str) -> Secret:
    """The file's bytes are the secret, a CR included; only one final newline is dropped (what
    `echo x > file` adds), as `docker login --password-stdin` does."""
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()  # bytes: text mode would turn CRLF into LF
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} from {p}: {exc.strerror}") from exc
    value = _secret_text(data, f"the {what} file {p}")
    if not value:
        raise ConfigError(f"the {what} file {p} is empty")
    return Secret(value, source=f"file {p}")


def secret_from_stdin(what: str) -> Secret:
    """Standard input read as a secret file is (bytes, one final newline dropped)."""
    stream = getattr(sys.stdin, "buffer", None)
    data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
    value = _secret_text(data, "standard input")
    if not value:
        raise ConfigError(f"no {what} on standard input")
    return Secret(value, source="stdin")


def _secret_text(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text",
                          hint="write the value alone (e.g. printf '%s' VALUE > FILE)") from None
    return text[:-1] if text.endswith("\n") else text


def secret_from_env(name: str, env: Mapping[str, str] | None = None) -> Secret | None:
    source = os.environ if env is None else env
    value = source.get(name)
    if value is None or value == "":
        return None
    return Secret(value, source=f"env {name}")


def maskable(value: str) -> bool:
    """Long enough to be masked without garbling ordinary text."""
    return len(value) >= MIN_MASKED_LENGTH


# --- the forms a secret takes in text -----------------------------------------------------------------

# Short escapes inside a double-quoted YAML scalar: render.yaml_quote's few, and PyYAML's emitter's.
_OUR_YAML = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0"}
_PYYAML = {**_OUR_YAML, "\x07": "\\a", "\x08": "\\b", "\x0b": "\\v", "\x0c": "\\f", "\x1b": "\\e", "\x85": "\\N",
           "\xa0": "\\_", "\u2028": "\\L", "\u2029": "\\P"}
_ALWAYS_ESCAPED = {"\x85", "\u2028", "\u2029", "\ufeff"}


def _yaml_double(value: str, short: dict[str, str], *, unicode: bool, upper: bool) -> str:
    """The inside of a double-quoted YAML scalar as a writer escapes it: printable ASCII as is, Unicode
    as is when `unicode`, the `short` escapes, everything else as \\xXX, \\uXXXX or \\UXXXXXXXX."""
    out = []
    for ch in value:
        code = ord(ch)
        kept = 0x20 <= code <= 0x7E or (unicode and code >= 0xA0 and ch not in _ALWAYS_ESCAPED)
        if ch in short and not (kept and ch not in '"\\'):
            out.append(short[ch])
        elif kept:
            out.append(ch)
        else:
            letter, width = ("x", 2) if code <= 0xFF else ("u", 4) if code <= 0xFFFF else ("U", 8)
            digits = f"{code:0{width}X}" if upper else f"{code:0{width}x}"
            out.append(f"\\{letter}{digits}")
    return "".join(out)


def _escaped(value: str) -> set[str]:
    """`value` as JSON and YAML writers put it inside a quoted string."""
    import json

    return {
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        _yaml_double(value, _OUR_YAML, unicode=True, upper=False),  # render.yaml_quote (the yq filter)
        _yaml_double(value, _PYYAML, unicode=True, upper=True),  # yaml.safe_dump(allow_unicode=True)
        _yaml_double(value, _PYYAML, unicode=False, upper=True),  # yaml.safe_dump()
        value.replace("'", "''"),  # a single-quoted YAML scalar
        repr(value)[1:-1],  # Python's repr, as an error message quotes a value ({value!r})
        ascii(value)[1:-1],
    }


def encoded_forms(value: str) -> set[str]:
    """Every form in which `value` can appear in a log line, an error or a report: as is; JSON- and
    YAML-escaped, also twice (YAML text inside a YAML string, such as registries.yaml in user-data);
    percent-encoded as a URL path or user info (`quote`) and as a form or query value (`quote_plus`)."""
    from urllib.parse import quote, quote_plus  # not at import: `--help` stays quick

    forms = {value}
    once = _escaped(value)
    forms |= once
    for form in once:
        forms |= _escaped(form)
    forms |= {quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, safe="/")}
    return forms


def basic_credentials(username: str, password: str) -> str:
    """`username:password` as an HTTP Basic header carries it: base64 of the UTF-8 bytes (RFC 7617)."""
    import base64

    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


# Characters that JSON, YAML, Python and percent-encoding all leave as they are.
_PLAIN_RUN = re.compile(r"[A-Za-z0-9_.~-]+")


def _anchor(value: str) -> str:
    """A piece of `value` that each of its encoded forms contains, to skip them all when it is absent:
    its longest run of plain characters, or `value` itself when that run is too short to search for."""
    run = max(_PLAIN_RUN.findall(value), key=len, default="")
    return run if len(run) >= MIN_MASKED_LENGTH else value


class Redactor:
    """Replaces every known secret in a text with a mask, in every form it can take there (encoded_forms,
    and the base64 Basic credentials of its login).

    Longest forms first, so a secret that contains another is masked whole. Secrets shorter than
    MIN_MASKED_LENGTH are not masked. A text is searched for each secret's anchor first, and for the
    forms only of the secrets whose anchor it holds: a build log has millions of lines and few secrets."""

    def __init__(self, secrets: Iterable[Secret | str | None] = ()) -> None:
        self._forms: list[tuple[str, str]] = []  # (form, its anchor), longest form first
        self._bytes: list[tuple[bytes, bytes]] = []
        self._raw: set[str] = set()
        self._logins: set[tuple[str, str]] = set()
        for secret in secrets:
            self.add(secret)

    def clear(self) -> None:
        self._forms = []
        self._bytes = []
        self._raw = set()
        self._logins = set()

    def add(self, secret: Secret | str | None) -> None:
        raw = secret.reveal() if isinstance(secret, Secret) else secret
        if not raw or not maskable(raw):
            return
        forms: dict[str, str] = {}
        if raw not in self._raw:
            self._raw.add(raw)
            anchor = _anchor(raw)
            forms.update((form, anchor if anchor in form else form) for form in encoded_forms(raw))
        login = secret.login if isinstance(secret, Secret) else ""
        if login and (login, raw) not in self._logins:
            self._logins.add((login, raw))
            credentials = basic_credentials(login, raw)
            forms[credentials] = credentials
        known = dict(self._forms)
        if forms.keys() - known.keys():
            known.update(forms)
            self._forms = sorted(known.items(), key=lambda item: len(item[0]), reverse=True)
            self._bytes = [(form.encode(), anchor.encode()) for form, anchor in self._forms]

    @property
    def active(self) -> bool:
        return bool(self._forms)

    def __call__(self, text: str) -> str:
        present: dict[str, bool] = {}
        for form, anchor in self._forms:
            found = present.get(anchor)
            if found is None:
                found = present[anchor] = anchor in text
            if found and form in text:
                text = text.replace(form, MASK)
        return text

    def bytes(self, data: bytes) -> bytes:
        mask = MASK.encode()
        present: dict[bytes, bool] = {}
        for form, anchor in self._bytes:
            found = present.get(anchor)
            if found is None:
                found = present[anchor] = anchor in data
            if found and form in data:
                data = data.replace(form, mask)
        return data


# Every secret this process has loaded (load_config fills it; `cli.run` empties it per invocation).
# The console (stderr, --json on stdout), the free text of the report and summary files and the CLI's
# error mapping scrub with it, so a secret that slipped into a message (a value echoed by a validation
# error, a library's exception) is still masked.
known = Redactor()


def remember(*secrets: Secret | str | None) -> None:
    for secret in secrets:
        known.add(secret)


def scrub(text: str) -> str:
    """`text` with every known secret masked."""
    return known(text) if known.active else text


def scrub_data(data: Any) -> Any:
    """A JSON-like value with every known secret masked in its string values. Keys are left alone: they
    are the schema (a short password like "secret" must not turn the key "secrets" into "********s")."""
    if not known.active:
        return data
    if isinstance(data, str):
        return known(data)
    if isinstance(data, dict):
        return {k: scrub_data(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [scrub_data(v) for v in data]
    return data


# --- credentials in URLs: one reader for the fork URL, the proxies and whatever git or a library prints ---

# `scheme://user:password@` or `scheme://token@` (passwords may hold '@'; the last '@' ends the user info).
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/@'\"]*(?:@[^\s/@'\"]*)*@")


def scrub_url(text: str) -> str:
    """`text` with the user info (`user:password@`, `token@`) removed from every URL in it."""
    return _URL_USERINFO.sub(r"\1", text)


def url_credentials(url: str) -> tuple[str, str | None] | None:
    """(user or token, password or None) of a URL's user info, percent-decoded; None without one."""
    from urllib.parse import unquote  # not at import: `--help` stays quick

    match = _URL_USERINFO.search(url)
    if not match:
        return None
    user, has_password, password = match.group(0)[len(match.group(1)):-1].partition(":")
    return unquote(user), unquote(password) if has_password else None


def url_secrets(url: str) -> list[str]:
    """The secret part of a URL's user info (the password, or a lone token), as written and decoded:
    git and libraries may print either."""
    from urllib.parse import unquote

    match = _URL_USERINFO.search(url)
    if not match:
        return []
    info = match.group(0)[len(match.group(1)):-1]
    secret = info.split(":", 1)[1] if ":" in info else info
    return [s for s in dict.fromkeys((secret, unquote(secret))) if s]


def url_login(url: str, what: str) -> Secret | None:
    """The password (or token) in a URL's user info as a Secret of its user name (masked in every
    encoding the Redactor knows, Basic credentials included)."""
    found = url_credentials(url)
    if found is None:
        return None
    user, password = found
    if password is None:
        return Secret(user, source=what)
    return Secret(password, source=what, login=user) if password else None


def scrub_url_secrets(text: str, url: str) -> str:
    """`text` without `url`'s credentials: URLs' user info removed, and the credentials themselves
    masked wherever else they appear (git prints the decoded form too)."""
    text = scrub_url(text)
    found = url_credentials(url)
    pieces = {*url_secrets(url), *(p for p in found or () if p)}
    for piece in sorted((p for p in pieces if maskable(p)), key=len, reverse=True):
        text = text.replace(piece, MASK)
    return text


ECHO_LIMIT = 200  # characters of a user's value an error message quotes


def quoted(value: object) -> str:
    """A user's value as an error message quotes it: repr, known secrets masked, cut to ECHO_LIMIT
    characters (a file pasted into one option would fill the screen; a cut secret would escape the mask)."""
    text = scrub(repr(value))
    return text if len(text) <= ECHO_LIMIT else text[:ECHO_LIMIT - 1] + "…"
