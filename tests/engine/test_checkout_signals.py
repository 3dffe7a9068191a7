"""A signal during a clone stops git with the CLI: no git process outlives it writing into a removed staging
directory, and what a `kill -9` leaves is removed by the next run and by `clean`.

A `git` wrapper first on PATH records each git process's pid and makes `fetch` hang (as a slow network
would); the CLI runs as a real subprocess and gets real signals.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.canvos_fixture import CanvosRepo

WRAPPER = """#!/bin/sh
echo $$ >> "{pids}"
for a in "$@"; do
    if [ "$a" = fetch ]; then exec sleep 60; fi
done
exec {git} "$@"
"""


def _wrapped_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pids = tmp_path / "git-pids"
    git = bin_dir / "git"
    git.write_text(WRAPPER.format(pids=pids, git=shutil.which("git")))
    git.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GIT_PYTHON_GIT_EXECUTABLE": str(git)}
    return env, pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose (it writes nothing); our processes are not its parent.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _start(tmp_path: Path, env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "edgeforge_ext", "--workdir", str(tmp_path / "w"), "checkout",
                             "--canvos-url", url, "--ref", "v4.10.0"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def _wait_for_fetch(pids: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if pids.exists() and len(pids.read_text().split()) >= 2:  # `git init`, `git remote`, then fetch
            time.sleep(0.5)
            return
        time.sleep(0.05)
    raise AssertionError("git fetch never started")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_clone_stops_git_and_removes_the_staging_directory(tmp_path, canvos_repo: CanvosRepo,
                                                                              sig):
    env, pids = _wrapped_env(tmp_path)
    proc = _start(tmp_path, env, canvos_repo.url)
    _wait_for_fetch(pids)
    proc.send_signal(sig)  # only the CLI: a CI cancel or `kill`, not a terminal's whole process group
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()[-2000:]
    still = [pid for pid in map(int, pids.read_text().split()) if _alive(pid)]
    assert still == [], f"git processes outlived the CLI: {still}"
    assert list((tmp_path / "w").glob(".CanvOS.staging-*")) == []
    assert not (tmp_path / "w" / "CanvOS").exists()


def test_what_kill_9_leaves_is_removed_by_the_next_run_and_by_clean(tmp_path, canvos_repo: CanvosRepo):
    env, pids = _wrapped_env(tmp_path)
    proc = _start(tmp_path, env, canvos_repo.url)
    _wait_for_fetch(pids)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its git: nothing can clean up
    proc.communicate(timeout=30)
    left = list((tmp_path / "w").glob(".CanvOS.staging-*"))
    assert len(left) == 1
    done = subprocess.run([sys.executable, "-m", "edgeforge_ext", "--workdir", str(tmp_path / "w"), "clean",
                           "--keep-images", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert str(left[0]) in done.stdout and not left[0].exists()
    # And a checkout after another kill -9 removes the leftover itself.
    proc = _start(tmp_path, env, canvos_repo.url)
    _wait_for_fetch(pids)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert len(list((tmp_path / "w").glob(".CanvOS.staging-*"))) == 1
    done = subprocess.run([sys.executable, "-m", "edgeforge_ext", "--workdir", str(tmp_path / "w"), "checkout",
                           "--canvos-url", canvos_repo.url, "--ref", "v4.10.0"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list((tmp_path / "w").glob(".CanvOS.staging-*")) == []
