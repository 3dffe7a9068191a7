"""Progress of a long build on the terminal: the log lines, plus a status line with the step, the
elapsed time and the current Earthly target. Without a terminal (CI, cron, a pipe): plain lines only."""

from __future__ import annotations

import re
import sys
import time
from types import TracebackType
from typing import Any

from edgeforge_ext import console
from edgeforge_ext.logrelay import LogRelay

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class _StatusText:
    """Re-rendered on every refresh, so the elapsed time moves even when Earthly is quiet."""

    def __init__(self, progress: BuildProgress) -> None:
        self.progress = progress

    def __rich__(self) -> str:
        p = self.progress
        elapsed = int(time.monotonic() - p.started)
        target = f" · {p.target}" if p.target else ""
        return f"earthly{target} · {elapsed // 60}:{elapsed % 60:02d} elapsed · {p.lines} lines"


class BuildProgress:
    def __init__(self) -> None:
        self.interactive = console.is_interactive()
        self.started = time.monotonic()
        self.target: str | None = None
        self.lines = 0
        self._status: Any = None

    def __enter__(self) -> BuildProgress:
        if self.interactive:
            self._status = console.err().status(_StatusText(self))
            self._status.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def on_line(self, line: str) -> None:
        self.lines += 1
        target = LogRelay.target_of(line)
        if target:
            self.target = target
        if self._status is not None:
            console.err().print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            # No colour codes without a terminal (CI logs, files): strip what Earthly may print.
            sys.stderr.write((_ANSI.sub("", line) if "\x1b" in line else line) + "\n")
