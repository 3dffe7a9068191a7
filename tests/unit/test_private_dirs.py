"""Secret files live in 0700 directories that carry their process's pid: what a run killed with -9 left
is removed by the next one, and never a live run's."""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from pathlib import Path

from edgeforge_ext.fsutil import private_dir, remove_orphaned_private_dirs


def test_private_dir_is_0700_and_gone_afterwards():
    with private_dir("test") as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700 and f"-{os.getpid()}-" in path.name
    assert not path.exists()


def test_leftovers_of_dead_processes_are_removed_live_ones_kept():
    gone_pid = _dead_pid()
    tmp = Path(tempfile.gettempdir())
    orphan = Path(tempfile.mkdtemp(prefix=f"edgeforge-private-git-{gone_pid}-", dir=tmp))
    (orphan / "password").write_text("token")
    live = Path(tempfile.mkdtemp(prefix=f"edgeforge-private-git-{os.getpid()}-", dir=tmp))
    try:
        removed = remove_orphaned_private_dirs()
        assert orphan in removed and not orphan.exists()
        assert live.exists() and live not in removed
    finally:
        live.rmdir()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
