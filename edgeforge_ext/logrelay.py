"""The build-log relay: bytes in, scrubbed lines out (callback, log file, bounded tail).

Pure: it takes an iterator of byte chunks with arbitrary boundaries, so it is unit-testable and
benchmarkable without Docker. Work is done per block of complete lines (decode, scrub and write once per
chunk, not per line) because a CanvOS build prints millions of lines.
"""

from __future__ import annotations

import re
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

from edgeforge_ext.secrets import Redactor

MAX_LINE_BYTES = 256 * 1024  # a line longer than this is cut: memory stays bounded without newlines
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Earthly prefixes a target's output with its name: "+iso | ...", "   +build-iso | ...",
# "+base(linux/amd64) | ...", "+iso *failed* | ...", "github.com/org/repo+target | ...".
_TARGET = re.compile(r"^\s*(?:\S*?)(\+[A-Za-z0-9._-]+)(?:\([^)]*\))?(?:\s+\*[a-z]+\*)?\s*\|")
_HEADER = struct.Struct(">BxxxL")


class LogRelay:
    """Feed it byte chunks; it scrubs, relays and remembers the tail and the current Earthly target."""

    def __init__(
        self,
        *,
        redactor: Redactor | None = None,
        sink: TextIO | None = None,
        on_line: Callable[[str], None] | None = None,
        tail_lines: int = 50,
    ) -> None:
        self._redact = redactor if redactor is not None and redactor.active else None
        self._sink = sink
        self._on_line = on_line
        self._partial = b""
        self.tail: deque[str] = deque(maxlen=max(tail_lines, 1))
        self.current_target: str | None = None
        self.lines = 0

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        data = self._partial + chunk if self._partial else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            if len(data) > MAX_LINE_BYTES:
                self._partial = b""
                self._emit(data + b"\n")
            return
        self._partial = data[cut + 1:]
        if len(self._partial) > MAX_LINE_BYTES:
            rest, self._partial = self._partial, b""
            self._emit(data[: cut + 1] + rest + b"\n")
            return
        self._emit(data[: cut + 1])

    def close(self) -> None:
        """Flush a last line without a newline."""
        if self._partial:
            rest, self._partial = self._partial, b""
            self._emit(rest + b"\n")
        if self._sink is not None:
            self._sink.flush()

    def _emit(self, block: bytes) -> None:
        # Only whole lines reach here, so a multi-byte character or a secret is never split.
        text = block.decode("utf-8", errors="replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if self._redact is not None:
            text = self._redact(text)
        if self._sink is not None:
            self._sink.write(text)
        lines = text.split("\n")
        lines.pop()  # the block ends with "\n"
        self.lines += len(lines)
        self.tail.extend(lines[-self.tail.maxlen:] if self.tail.maxlen else lines)
        if "|" in text:
            self._track_target(lines)
        if self._on_line is not None:
            for line in lines:
                self._on_line(line)

    @staticmethod
    def target_of(line: str) -> str | None:
        """The Earthly target a log line belongs to (`+iso | ...`), if it says."""
        if "|" not in line:
            return None
        m = _TARGET.match(_ANSI.sub("", line) if "\x1b" in line else line)
        return m.group(1) if m is not None else None

    def _track_target(self, lines: list[str]) -> None:
        # The last prefixed line of the block tells which target is running now; search backwards.
        for line in reversed(lines):
            if "|" not in line:
                continue
            m = _TARGET.match(_ANSI.sub("", line) if "\x1b" in line else line)
            if m is not None:
                self.current_target = m.group(1)
                return


def relay(chunks: Iterable[bytes], relay_to: LogRelay) -> LogRelay:
    """Feed every chunk, then flush; returns the relay for its tail/target/line count."""
    for chunk in chunks:
        relay_to.feed(chunk)
    relay_to.close()
    return relay_to


def demux(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Payloads of Docker's multiplexed stdout/stderr stream (8-byte frame headers), from raw chunks.

    Used on the raw HTTP body of `/containers/{id}/logs` so we read big chunks instead of one
    small read per frame.
    """
    buf = b""
    for chunk in chunks:
        buf = buf + chunk if buf else chunk
        pos = 0
        out: list[bytes] = []
        end = len(buf)
        while end - pos >= 8:
            _, length = _HEADER.unpack_from(buf, pos)
            if end - pos - 8 < length:
                break
            out.append(buf[pos + 8: pos + 8 + length])
            pos += 8 + length
        buf = buf[pos:]
        if out:
            yield b"".join(out)
    if buf:
        # A truncated last frame (connection dropped): pass its payload on rather than lose it.
        yield buf[8:] if len(buf) > 8 else b""


def dechunk(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The body of an HTTP/1.1 `Transfer-Encoding: chunked` response, from raw socket reads.

    Docker flushes every log frame as its own HTTP chunk; decoding them ourselves from large
    socket reads costs far less than one library read per chunk.
    """
    buf = b""
    for chunk in chunks:
        buf = buf + chunk if buf else chunk
        pos = 0
        end = len(buf)
        out: list[bytes] = []
        find = buf.find
        while True:
            eol = find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(buf[pos:eol].split(b";", 1)[0], 16)
            if size == 0:
                if out:
                    yield b"".join(out)
                return
            stop = eol + 2 + size
            if stop + 2 > end:
                break  # the rest of this chunk has not arrived yet
            out.append(buf[eol + 2:stop])
            pos = stop + 2
        buf = buf[pos:]
        if out:
            yield b"".join(out)
