"""Console discipline: humans read stderr, machines read stdout (--json).

No colour or spinners when stderr is not a terminal; under GitHub Actions steps are folded.
rich is imported lazily so `--help` stays quick.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_stderr: Console | None = None


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def is_interactive() -> bool:
    return sys.stderr.isatty() and not in_github_actions() and os.environ.get("TERM") != "dumb"


class _Scrubbed:
    """stderr as the rich console writes it: every known secret masked (secrets.known), so a table
    cell, a warning or a log line that carries one by mistake still shows only the mask."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(_scrub(text))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("rich_"):  # rich's rich_proxied_file would let it write around us
            raise AttributeError(name)
        return getattr(self.stream, name)


def err() -> Console:
    """The stderr console (created on first use, so it follows pytest's capture)."""
    global _stderr
    from rich.console import Console

    if _stderr is None or getattr(_stderr.file, "stream", None) is not sys.stderr:
        interactive = is_interactive()
        _stderr = Console(
            file=_Scrubbed(sys.stderr),  # type: ignore[arg-type]
            force_terminal=interactive,
            no_color=not interactive or "NO_COLOR" in os.environ,
            highlight=False,
            soft_wrap=True,
            width=None if interactive else 200,
        )
    return _stderr


def info(message: str) -> None:
    err().print(message, markup=False)


def note(message: str) -> None:
    err().print(f"[dim]{_escape(message)}[/dim]")


_verbose = False


def set_verbose(on: bool) -> None:
    global _verbose
    _verbose = on


def verbose() -> bool:
    return _verbose


def detail(message: str) -> None:
    """Only with -v/--verbose: what a user debugging a build wants and a nightly log does not."""
    if _verbose:
        note(message)


_warned: set[str] = set()


def forget_warnings() -> None:
    """A new run (`cli.run`) warns afresh."""
    _warned.clear()


def warn(message: str) -> None:
    """A warning, once per run: every variant of `plan --all` reads the same checkout and would repeat it."""
    if message in _warned:
        return
    _warned.add(message)
    err().print(f"[yellow]warning:[/yellow] {_escape(message)}")


def error(message: str) -> None:
    if in_github_actions():
        sys.stderr.write(f"::error::{_gha_escape(_scrub(message))}\n")
    err().print(f"[bold red]error:[/bold red] {_escape(message)}")


def step_summary(markdown: str) -> None:
    """Append Markdown to the GitHub Actions job summary (the file GITHUB_STEP_SUMMARY names), if any."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not in_github_actions() or not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:  # noqa: PTH123 - append mode, one call
            f.write(_scrub(markdown).rstrip("\n") + "\n\n")
    except OSError as exc:
        warn(f"cannot write the job summary {path}: {exc.strerror}")


def print_json(data: Any) -> None:
    from edgeforge_ext.secrets import scrub_data

    sys.stdout.write(json.dumps(scrub_data(data), indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def group(title: str) -> Iterator[None]:
    """A foldable section under GitHub Actions; a heading elsewhere."""
    if in_github_actions():
        sys.stderr.write(f"::group::{_scrub(title)}\n")
        sys.stderr.flush()
        try:
            yield
        finally:
            sys.stderr.write("::endgroup::\n")
            sys.stderr.flush()
    else:
        err().print(f"[bold]==> {_escape(title)}[/bold]")
        yield


def _scrub(text: str) -> str:
    from edgeforge_ext.secrets import scrub  # imported on first output, not by `--help`

    return scrub(text)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _gha_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
