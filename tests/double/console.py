"""Earthly's console output (conslogging/*.go, logbus/formatter/formatter.go), without colour.

- Target output is prefixed with the target name right-aligned in 20 columns (DefaultPadding,
  conslogging/conslogging.go:31-33; prefix_formatter.go Format: `%*s`), then ` | `; a failed target is
  `+iso *failed* | ` (conslogging.go:530-541). EARTHLY_TARGET_PADDING sets the width,
  EARTHLY_FULL_TARGET=true turns padding off (cmd/earthly/main.go:138-149).
- Phases: " Init 🚀", " Build 🔧", " Push Summary ⏫", " Local Output Summary 🎁" (builder/builder.go:50-56)
  with an 80-column underline of "—" and "(disabled)" when off (conslogging.go:198-223).
- Bars: `=== 🌍 Earthly Build  ✅ SUCCESS ===` and `=== ❌ FAILURE ===`, 80 columns (conslogging.go:239-246,
  349-377).
- Help lines: "\\nHelp: <hint>\\n" (conslogging.go HelpPrintf).
- No colour: the container has no TTY (fatih/color disables itself).

Everything goes to stderr, as Earthly's console does (conslogging.go:84-85 getCompatibleStderr); only
urfave/cli's usage errors go to stdout.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

BAR_WIDTH = 80  # conslogging.go:52
DEFAULT_PADDING = 20  # conslogging.go:33

PHASE_INIT = "Init 🚀"
PHASE_BUILD = "Build 🔧"
PHASE_PUSH = "Push Summary ⏫"
PHASE_OUTPUT = "Local Output Summary 🎁"


def _padding(environ: dict[str, str] | os._Environ[str]) -> int:
    padding = DEFAULT_PADDING
    custom = environ.get("EARTHLY_TARGET_PADDING")
    if custom is not None:
        try:
            padding = int(custom)
        except ValueError:
            pass
    if environ.get("EARTHLY_FULL_TARGET", "").lower() in ("1", "t", "true"):
        padding = -1
    return padding


class Console:
    def __init__(self, out: TextIO | None = None, padding: int | None = None) -> None:
        self.out = out if out is not None else sys.stderr
        self.padding = _padding(os.environ) if padding is None else padding

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def prefix(self, name: str, *, failed: bool = False) -> str:
        pretty = name if self.padding < 0 else name.rjust(self.padding)
        return pretty + (" *failed*" if failed else "") + " | "

    def line(self, name: str | None, text: str, *, failed: bool = False) -> None:
        """Print text, each of its lines prefixed (conslogging.go PrintBytes)."""
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        head = self.prefix(name, failed=failed) if name else ""
        self.write("".join(f"{head}{ln}\n" for ln in lines))

    def phase(self, phase: str, *, disabled: bool = False, special: str = "") -> None:
        msg = phase
        if disabled:
            msg = f"{phase} (disabled)"
        elif special:
            msg = f"{phase} ({special})"
        width = max(len(msg) + 2, BAR_WIDTH)
        self.write(f" {msg}\n{'—' * width}\n\n")

    def phase_footer(self) -> None:
        self.write("\n")

    def bar(self, msg: str, phase: str = "") -> None:
        center = f" {msg} [{phase}] " if phase else f" {msg} "
        side = max((BAR_WIDTH - len(center)) // 2, 0)
        right = "=" * side + ("=" if len(center) % 2 == 1 and side > 0 else "")
        self.write(f"\n{'=' * side}{center}{right}\n\n")

    def success(self) -> None:
        self.bar("🌍 Earthly Build  ✅ SUCCESS")

    def failure(self, phase: str = "") -> None:
        self.bar("❌ FAILURE", phase)

    def help(self, hint: str) -> None:
        self.write(f"\nHelp: {hint}" + ("" if hint.endswith("\n") else "\n"))

    def warn(self, text: str) -> None:
        self.write(text if text.endswith("\n") else text + "\n")
