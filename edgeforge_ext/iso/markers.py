"""What a successful (or failed) boot of a Palette Edge installer ISO prints on the serial console.

Sources, so the defaults can be checked against upstream:
- CanvOS overlay/files-iso/boot/grub2/grub.cfg (every tag v4.4.12 .. main): each menu entry runs
  `echo Loading kernel...` and boots the kernel with `console=ttyS0` (with console=tty1/tty0), so the
  kernel log, and the serial getty of the live system, reach the first serial port.
- GRUB prints "Welcome to GRUB!" when it starts; on BIOS only the firmware's serial console (SeaBIOS
  sercon, on with QEMU's graphics=off) shows it, and GRUB's `linux` command puts BOOT_IMAGE= first on the
  kernel command line, which the kernel prints: proof the bootloader ran even where its screen is not seen.
  A UKI ISO boots without GRUB: the kernel's EFI stub prints "EFI stub: " lines on the firmware console.
- kairos-io/immucore tests/qemu/login_check.py waits for "login:" on the serial console (the live
  system's serial getty) as its boot-success marker, and for "KAIROS BOOT FAILED", immucore's failure
  banner, which it also prints on serial.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Marker:
    name: str
    pattern: str  # a Python regular expression, searched in the console text without escape sequences

    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern, re.MULTILINE)


DEFAULT_MARKERS: tuple[Marker, ...] = (
    Marker("bootloader", r"Welcome to GRUB!|Loading kernel\.\.\.|BOOT_IMAGE=|EFI stub: "),
    Marker("kernel", r"Linux version \d+\.\d+"),
    Marker("installer", r"\S login: ?"),
)

# Any of these ends the boot at once as failed: waiting for the timeout would only hide the reason.
FAILURE_MARKERS: tuple[Marker, ...] = (
    Marker("kernel panic", r"Kernel panic - not syncing"),
    Marker("Kairos boot failure", r"KAIROS BOOT FAILED"),
    Marker("unreadable ISO", r"ISOFS: unable to read i-node block"),
    Marker("emergency shell", r"You are in emergency mode|Entering emergency mode"),
    Marker("GRUB rescue prompt", r"grub rescue>|Entering rescue mode"),
    Marker("no bootable device", r"No bootable device|BdsDxe: No bootable option|UEFI Interactive Shell"),
)

TAIL_LINES = 50
_WINDOW = 4096  # characters kept for matching a marker split across reads
# Escape sequences: CSI (colours, cursor moves, "ESC [ = 3 h"), OSC, and two-byte ones (ESC c).
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def expect_markers(patterns: list[str]) -> tuple[Marker, ...]:
    """Markers from --expect REGEX values (they replace the defaults); ValueError names a bad one."""
    markers = []
    for i, pattern in enumerate(patterns, 1):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"--expect {pattern!r} is not a regular expression: {exc}") from None
        markers.append(Marker(f"expect {i}" if len(patterns) > 1 else "expect", pattern))
    return tuple(markers)


class ConsoleWatcher:
    """Feeds on the raw serial bytes; knows which markers were seen, whether a failure marker was, and the
    last lines. Memory stays bounded however long the console runs."""

    def __init__(self, markers: tuple[Marker, ...], failures: tuple[Marker, ...] = FAILURE_MARKERS) -> None:
        self.markers = markers
        self._wanted = [(m, m.compiled()) for m in markers]
        self._failures = [(m, m.compiled()) for m in failures]
        self.seen: dict[str, float] = {}
        self.failure: str | None = None  # "kernel panic: <the line>"
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._carry = ""  # an escape sequence cut by the end of a read
        self._window = ""
        self._lines: deque[str] = deque(maxlen=TAIL_LINES)
        self._line = ""

    @property
    def missing(self) -> list[str]:
        return [m.name for m in self.markers if m.name not in self.seen]

    @property
    def done(self) -> bool:
        return not self.missing

    def feed(self, data: bytes, at: float) -> None:
        text = self._clean(self._decoder.decode(data))
        if not text:
            return
        self._remember_lines(text)
        window = self._window + text
        for marker, regex in self._wanted:
            if marker.name not in self.seen and regex.search(window):
                self.seen[marker.name] = at
        if self.failure is None:
            for marker, regex in self._failures:
                found = regex.search(window)
                if found:
                    self.failure = f"{marker.name}: {_line_of(window, found.start())}"
                    break
        self._window = window[-_WINDOW:]

    def tail(self) -> list[str]:
        lines = list(self._lines) + ([self._line] if self._line.strip() else [])
        return lines[-TAIL_LINES:]

    def _clean(self, text: str) -> str:
        text = self._carry + text
        self._carry = ""
        cut = text.rfind("\x1b")
        if cut >= 0 and len(text) - cut < 64 and not _ESCAPE.match(text, cut):
            text, self._carry = text[:cut], text[cut:]
        return _CONTROL.sub("", _ESCAPE.sub("", text).replace("\r\n", "\n").replace("\r", "\n"))

    def _remember_lines(self, text: str) -> None:
        parts = (self._line + text).split("\n")
        for line in parts[:-1]:
            if line.strip():
                self._lines.append(line.rstrip())
        self._line = parts[-1][-1000:]


def _line_of(text: str, index: int) -> str:
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    return text[start:end if end >= 0 else len(text)].strip()[:200]
