"""The log relay: partial lines, scrubbing across chunk boundaries, bounded tail and memory, targets."""

from __future__ import annotations

import io
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from edgeforge_ext.logrelay import MAX_LINE_BYTES, LogRelay, dechunk, demux, relay
from edgeforge_ext.secrets import MASK, Redactor

PASSWORD = "s3cret-Pa55:word#1"


def _run(chunks: list[bytes], **kw: object) -> tuple[LogRelay, list[str], str]:
    seen: list[str] = []
    sink = io.StringIO()
    r = LogRelay(sink=sink, on_line=seen.append, **kw)  # type: ignore[arg-type]
    relay(chunks, r)
    return r, seen, sink.getvalue()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in points:
        out.append(data[prev:p])
        prev = p
    out.append(data[prev:])
    return out


def test_lines_survive_any_chunking_byte_by_byte():
    text = "+iso | héllo wörld ✅\n+iso | second\nno newline at end"
    data = text.encode()
    _, seen, sink = _run([data[i:i + 1] for i in range(len(data))])
    assert seen == ["+iso | héllo wörld ✅", "+iso | second", "no newline at end"]
    assert sink == text + "\n"


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_secret_never_escapes_whatever_the_chunk_boundaries(cuts: list[int]):
    data = (f"+iso | login with {PASSWORD} now\n" * 3 + f"tail {PASSWORD}").encode()
    r, seen, sink = _run(_split(data, cuts), redactor=Redactor([PASSWORD]))
    assert PASSWORD not in sink and all(PASSWORD not in line for line in seen)
    assert all(PASSWORD not in line for line in r.tail)
    assert seen[0] == f"+iso | login with {MASK} now"
    assert len(seen) == 4


def test_tail_is_bounded_and_holds_the_last_lines():
    data = "".join(f"+iso | line {i}\n" for i in range(10_000)).encode()
    r, seen, _ = _run([data[i:i + 4096] for i in range(0, len(data), 4096)], tail_lines=50)
    assert len(seen) == r.lines == 10_000
    assert list(r.tail) == [f"+iso | line {i}" for i in range(9_950, 10_000)]


def test_a_line_without_newline_is_cut_so_memory_stays_bounded():
    r = LogRelay(on_line=None, tail_lines=5)
    for _ in range(20):
        r.feed(b"x" * 65536)  # 1.3 MB and never a newline
        assert len(r._partial) <= MAX_LINE_BYTES
    r.close()
    assert r.lines >= 4


def test_current_target_follows_earthly_prefixes():
    lines = [
        " 1. Init 🚀",
        "           buildkitd | Found buildkit daemon",
        "+base-image | --> FROM kairos",
        "   +build-iso | *cached* --> RUN mkdir",
        "\x1b[33m+iso(linux/amd64)\x1b[0m | --> SAVE ARTIFACT",
        "github.com/org/repo+provider-image *failed* | ERROR",
        "plain output with a | pipe but no target",
    ]
    r = LogRelay()
    targets = []
    for line in lines:
        r.feed((line + "\n").encode())
        targets.append(r.current_target)
    assert targets == [None, None, "+base-image", "+build-iso", "+iso", "+provider-image", "+provider-image"]


def test_crlf_and_carriage_returns_become_lines():
    _, seen, _ = _run([b"a\r\nb\rc\n"])
    assert seen == ["a", "b", "c"]


def _frames(payloads: list[bytes]) -> bytes:
    return b"".join(struct.pack(">BxxxL", 1 + (i % 2), len(p)) + p for i, p in enumerate(payloads))


def _chunked(body_pieces: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in body_pieces) + b"0\r\n\r\n"


@settings(max_examples=200, deadline=None)
@given(payloads=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=40),
       cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=15))
def test_dechunk_and_demux_recover_the_log_bytes(payloads: list[bytes], cuts: list[int]):
    frames = [struct.pack(">BxxxL", 1, len(p)) + p for p in payloads]  # one HTTP chunk per frame, as Docker
    raw = _chunked(frames) + b"trailing garbage after the last chunk is ignored"
    got = b"".join(demux(dechunk(_split(raw, cuts))))
    assert got == b"".join(payloads)


def test_demux_handles_frames_split_anywhere():
    payloads = [b"+iso | one\n", b"+iso | two\n", b"err\n"]
    raw = _frames(payloads)
    assert b"".join(demux([raw[i:i + 3] for i in range(0, len(raw), 3)])) == b"".join(payloads)
