"""Secret values: masked when printed, read from env/file/stdin, and a redactor for log lines."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

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
