"""The work-directory lock, held by a real second process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edgeforge_ext.errors import UsageError
from edgeforge_ext.workdir_lock import LOCK_NAME, workdir_lock

HOLD = """
import sys
from pathlib import Path
from edgeforge_ext.workdir_lock import workdir_lock
with workdir_lock(Path(sys.argv[1]), what="build"):
    print("locked", flush=True)
    sys.stdin.read()  # hold until the test closes our stdin
"""


@contextmanager
def held_by_other_process(workdir: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(workdir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=10)


def test_no_wait_fails_naming_the_holder(tmp_path: Path) -> None:
    with held_by_other_process(tmp_path / "w") as holder, pytest.raises(UsageError) as err:
        with workdir_lock(tmp_path / "w", wait=False):
            pass
    assert err.value.exit_code == 2
    assert f"pid {holder.pid}" in err.value.message and str(tmp_path / "w") in err.value.message


def test_wait_says_so_once_and_gets_the_lock_when_released(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    workdir = tmp_path / "w"
    with held_by_other_process(workdir) as holder:
        assert holder.stdin is not None
        threading.Timer(0.5, holder.stdin.close).start()
        start = time.monotonic()
        with workdir_lock(workdir):
            waited = time.monotonic() - start
            assert (workdir / LOCK_NAME).read_text().split()[0] == str(os.getpid())
    assert waited >= 0.4
    err = capsys.readouterr().err
    assert err.count("waiting for another edgeforge-ext run on") == 1
    assert f"(pid {holder.pid}) ..." in err


def test_released_on_exception_and_nested_use_does_not_deadlock(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), workdir_lock(tmp_path):
        with workdir_lock(tmp_path, what="build"):  # build calling checkout in one process
            raise KeyboardInterrupt
    with workdir_lock(tmp_path, wait=False):  # free again
        pass
    assert (tmp_path / LOCK_NAME).exists()
