"""Secret values: masked when printed, read from env/file/stdin, and a redactor for log lines."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from edgeforge_ext.errors import ConfigError

MASK = "********"


class Secret:
    """A string that never shows itself by accident (repr, str, f-strings, logs)."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "") -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The real value: call only where it must be written (user-data, an auth header)."""
        return self._value

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
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} from {p}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} file {p} is not UTF-8 text",
                          hint="write the value alone on one line (e.g. printf '%s' VALUE > FILE)") from None
    # One trailing newline is what `echo x > file` adds; it is not part of the secret.
    value = text[:-1] if text.endswith("\n") else text
    if value.endswith("\r"):
        value = value[:-1]
    if not value:
        raise ConfigError(f"the {what} file {p} is empty")
    return Secret(value, source=f"file {p}")


def secret_from_stdin(what: str) -> Secret:
    data = sys.stdin.read()
    value = data[:-1] if data.endswith("\n") else data
    if not value:
        raise ConfigError(f"no {what} on standard input")
    return Secret(value, source="stdin")


def secret_from_env(name: str, env: Mapping[str, str] | None = None) -> Secret | None:
    source = os.environ if env is None else env
    value = source.get(name)
    if value is None or value == "":
        return None
    return Secret(value, source=f"env {name}")


class Redactor:
    """Replaces every known secret value in a line with a mask.

    Longest values first, so a secret that contains another is masked whole.
    """

    def __init__(self, secrets: Iterable[Secret | str | None] = ()) -> None:
        values: set[str] = set()
        for s in secrets:
            raw = s.reveal() if isinstance(s, Secret) else s
            if raw and len(raw) >= 3:
                values.add(raw)
        self._values = sorted(values, key=len, reverse=True)

    def clear(self) -> None:
        self._values = []

    def add(self, secret: Secret | str | None) -> None:
        raw = secret.reveal() if isinstance(secret, Secret) else secret
        if raw and len(raw) >= 3 and raw not in self._values:
            self._values.append(raw)
            self._values.sort(key=len, reverse=True)

    @property
    def active(self) -> bool:
        return bool(self._values)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def bytes(self, data: bytes) -> bytes:
        for value in self._values:
            raw = value.encode()
            if raw in data:
                data = data.replace(raw, MASK.encode())
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


def url_secrets(url: str) -> list[str]:
    """The secret part of a URL's user info (`user:PASSWORD@` or `TOKEN@`), as written and decoded."""
    from urllib.parse import unquote, urlsplit  # not at import: `--help` stays quick

    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return []
    if "@" not in netloc:
        return []
    info = netloc.rsplit("@", 1)[0]
    secret = info.split(":", 1)[1] if ":" in info else info
    return [s for s in dict.fromkeys((secret, unquote(secret))) if s]
