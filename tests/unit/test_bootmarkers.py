"""The console watcher: markers found through terminal escapes and across reads, failures, a bounded tail."""

from __future__ import annotations

from edgeforge_ext.iso.markers import DEFAULT_MARKERS, TAIL_LINES, ConsoleWatcher, expect_markers


def test_markers_through_escape_sequences_split_across_reads() -> None:
    w = ConsoleWatcher(DEFAULT_MARKERS)
    # SeaBIOS's serial console moves the cursor in the middle of GRUB's words; reads cut anywhere.
    raw = (b"\x1b[2J\x1b[01;01HLoadi\x1b[03;05H\x1b[03;06Hng kernel...\r\n[    0.000000] Linux ver"
           b"sion 6.1.0-57-amd64\r\nfixture login: ")
    for i in range(0, len(raw), 7):
        w.feed(raw[i:i + 7], at=i / 100)
    assert w.done and w.failure is None
    assert w.seen["bootloader"] <= w.seen["kernel"] <= w.seen["installer"]


def test_an_escape_cut_at_the_end_of_a_read_is_not_printed() -> None:
    w = ConsoleWatcher(expect_markers(["Welcome to GRUB!"]))
    w.feed(b"\x1b[0;30;4", 0.1)
    w.feed(b"7mWelcome to GRUB!\r\n", 0.2)
    assert w.done and w.tail() == ["Welcome to GRUB!"]


def test_a_failure_marker_names_the_line() -> None:
    w = ConsoleWatcher(DEFAULT_MARKERS)
    w.feed(b"[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n", 2.1)
    assert w.failure == "kernel panic: [    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs"
    assert w.missing == ["bootloader", "kernel", "installer"]


def test_the_tail_is_bounded() -> None:
    w = ConsoleWatcher(DEFAULT_MARKERS)
    for i in range(10_000):
        w.feed(f"line {i}\n".encode(), i)
    assert w.tail() == [f"line {i}" for i in range(10_000 - TAIL_LINES, 10_000)]


def test_bad_expect_is_refused() -> None:
    try:
        expect_markers(["("])
    except ValueError as exc:
        assert "--expect '('" in str(exc)
    else:
        raise AssertionError("no error")
