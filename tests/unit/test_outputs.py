"""Dated output directories, the `latest` link and --keep-last."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from edgeforge_ext import outputs


def make_run(root, name: str, *, building_pid: int | None = None):
    path = root / name
    path.mkdir(parents=True)
    (path / "palette-edge-installer.iso").write_bytes(b"iso " + name.encode())
    if building_pid is not None:
        (path / outputs.BUILDING_MARKER).write_text(f"{building_pid}\n")
    return path


def test_run_dir_name_is_dated_with_the_short_sha():
    when = time.mktime((2026, 11, 27, 1, 2, 3, 0, 0, -1))
    assert outputs.run_dir_name("0123456789abcdef" * 2 + "01234567", when) == "20261127-010203-01234567"
    assert outputs.run_dir_name(None, when) == "20261127-010203-unknown"


def test_new_run_dirs_never_collide_and_are_marked_while_building(tmp_path):
    root = outputs.variant_root(tmp_path / "out", None)
    assert root == tmp_path / "out" / "default"
    when = time.time()
    first = outputs.new_run_dir(root, "abcdef1234", when)
    second = outputs.new_run_dir(root, "abcdef1234", when)
    assert first != second and second.name == first.name + "-2"
    assert (first / outputs.BUILDING_MARKER).read_text().strip() == str(os.getpid())
    outputs.finished(first)
    assert not (first / outputs.BUILDING_MARKER).exists()
    assert outputs.is_run_dir(first) and outputs.is_run_dir(second)


def test_latest_moves_only_when_promoted_and_is_relative(tmp_path):
    root = tmp_path / "out" / "nightly"
    old = make_run(root, "20261120-000000-aaaaaaaa")
    assert outputs.latest(root) is None
    outputs.promote(root, old)
    assert outputs.latest(root) == old.resolve()
    # A new build that has not succeeded (or crashed half-way) leaves latest where it was.
    new = outputs.new_run_dir(root, "bbbbbbbb")
    (new / "palette-edge-installer.iso").write_bytes(b"half")
    assert outputs.latest(root) == old.resolve()
    outputs.promote(root, new)
    assert outputs.latest(root) == new.resolve()
    link = root / outputs.LATEST
    assert link.is_symlink() and os.readlink(link) == new.name  # relative: the tree can move
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # no temp link left


def test_promote_replaces_a_leftover_temp_link_from_a_crash(tmp_path):
    root = tmp_path / "out"
    run = make_run(root, "20261120-000000-aaaaaaaa")
    (root / f".latest.{os.getpid()}.tmp").symlink_to("nowhere")
    outputs.promote(root, run)
    assert outputs.latest(root) == run.resolve()


def test_latest_pointing_at_a_removed_directory_is_none(tmp_path):
    root = tmp_path / "out"
    run = make_run(root, "20261120-000000-aaaaaaaa")
    outputs.promote(root, run)
    for f in run.iterdir():
        f.unlink()
    run.rmdir()
    assert outputs.latest(root) is None


def test_prune_keeps_the_newest_latest_and_the_one_in_use(tmp_path):
    root = tmp_path / "out"
    names = [f"2026112{d}-000000-aaaaaaaa" for d in range(1, 7)]
    runs = [make_run(root, n) for n in names]
    outputs.promote(root, runs[1])  # latest is an old one (the newer builds failed)
    (root / "notes.txt").write_text("mine")
    (root / "my-dir").mkdir()
    removed = outputs.prune(root, 2, in_use=(runs[2],))
    assert sorted(p.name for p in removed) == [names[0], names[3]]
    left = sorted(p.name for p in root.iterdir())
    assert left == sorted([names[1], names[2], names[4], names[5], "latest", "notes.txt", "my-dir"])
    assert outputs.latest(root) == runs[1].resolve()


def test_prune_spares_a_directory_another_live_process_builds_in(tmp_path):
    root = tmp_path / "out"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        busy = make_run(root, "20261101-000000-aaaaaaaa", building_pid=sleeper.pid)
        make_run(root, "20261102-000000-aaaaaaaa", building_pid=2**22 + 12345)  # no such pid: a crashed build
        make_run(root, "20261103-000000-aaaaaaaa")
        removed = outputs.prune(root, 1)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [p.name for p in removed] == ["20261102-000000-aaaaaaaa"]
    assert busy.exists()


def test_prune_needs_a_positive_count(tmp_path):
    with pytest.raises(ValueError):
        outputs.prune(tmp_path, 0)


def test_last_report_dir_finds_the_newest_dated_run_even_when_latest_lags(tmp_path):
    from edgeforge_ext.outputs import last_report_dir, promote

    root = tmp_path / "default"
    old = root / "20261101-010101-aaaaaaaa"
    new = root / "20261102-010101-bbbbbbbb"
    for d in (old, new):
        d.mkdir(parents=True)
        (d / "edgeforge-report.json").write_text("{}")
    promote(root, old)  # the newer build failed its push, so latest still points at the old one
    assert last_report_dir(tmp_path, None) == new
    (tmp_path / "edgeforge-report.json").write_text("{}")  # a plain build's report wins
    assert last_report_dir(tmp_path, None) == tmp_path
    assert last_report_dir(tmp_path / "nothing", "v1") == tmp_path / "nothing"
