"""After a hard stop or a full disk: the next run finds a clean state, and nothing half-written looks done.

Real kill -9 of the tool (nothing can clean up), a real tmpfs that fills up, the Earthly double.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker.errors
import pytest

from edgeforge_ext.cli import run
from edgeforge_ext.engine import WORKDIR_LABEL
from edgeforge_ext.fsutil import PRIVATE_PREFIX
from tests.engine.buildkit import TOKEN, build_args, lowered_thresholds

pytestmark = pytest.mark.engine
PRO_TOKEN = "C0ffeePro-Token-recovery"


def containers_of(client, workdir: Path) -> list:
    return client.containers.list(all=True, filters={"label": f"{WORKDIR_LABEL}={workdir.resolve()}"},
                                  ignore_removed=True)


def private_dirs_of(pid: int) -> list[Path]:
    return [p for p in Path(tempfile.gettempdir()).glob(f"{PRIVATE_PREFIX}*-{pid}-*")]


def test_after_kill_9_the_next_build_removes_what_the_killed_one_left(
    docker_client, standin_earthly_image, canvos_repo, tmp_path, monkeypatch, capsys
):
    key_file = tmp_path / "pro.token"
    key_file.write_text(PRO_TOKEN)  # a secret file for Earthly: the private directory is really made
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFORGE_")}
    env.update({"EDGEFORGE_EDGE_HOST_TOKEN": TOKEN, "EDGEFORGE_PREFLIGHT_MIN_CPUS": "1",
                "EDGEFORGE_PREFLIGHT_MIN_DISK_GB": "1", "EDGEFORGE_PREFLIGHT_MIN_MEMORY_GB": "1"})
    workdir = tmp_path / "w"
    common = ["--no-push", "--ubuntu-pro-key-file", str(key_file)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeforge_ext",
         *build_args(workdir, canvos_repo.url, standin_earthly_image, *common, "--build-arg", "STANDIN_SLEEP=60")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not containers_of(docker_client, workdir):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            time.sleep(0.2)
        (left,) = containers_of(docker_client, workdir)
        assert private_dirs_of(proc.pid), "the killed run had no private directory"
        os.killpg(proc.pid, signal.SIGKILL)  # nothing of ours runs any more: no cleanup at all
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    left.reload()
    assert left.status == "running"  # Earthly goes on building without us
    assert private_dirs_of(proc.pid)  # the Ubuntu Pro token is still on disk ...

    lowered_thresholds(monkeypatch)
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", TOKEN)
    code = run(build_args(workdir, canvos_repo.url, standin_earthly_image, *common))
    err = capsys.readouterr().err
    assert code == 0, err[-3000:]
    assert not private_dirs_of(proc.pid)  # ... until the next run removes it
    assert "left running" in err and left.name in err
    assert containers_of(docker_client, workdir) == []
    with pytest.raises(docker.errors.NotFound):
        left.reload()  # gone from the daemon, not only stopped
    report = json.loads((workdir / "output" / "edgeforge-report.json").read_text())
    assert report["status"] == "success"


@pytest.mark.root  # mounts a tmpfs
def test_a_full_disk_while_collecting_exits_8_and_leaves_no_iso_that_looks_complete(
    docker_client, standin_earthly_image, canvos_repo, tmp_path, monkeypatch, capsys
):
    lowered_thresholds(monkeypatch)
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", TOKEN)
    workdir = tmp_path / "w"
    out = tmp_path / "small"
    out.mkdir()
    # Room for the report and the log, not for the ISO (a few MB): the disk fills during the copy.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(out)], check=True)
    try:
        code = run([*build_args(workdir, canvos_repo.url, standin_earthly_image, "--no-push"),
                    "--output", str(out)])
        err = capsys.readouterr().err
        assert code == 8, err[-3000:]
        assert "No space left on device" in err or "no space" in err.lower()
        assert not (out / "palette-edge-installer.iso").exists()
        assert not (out / "palette-edge-installer.iso.sha256").exists()
        # What is left is what was written before the disk filled, each complete; no partial copy.
        assert sorted(p.name for p in out.iterdir()) == ["edgeforge-build.log", "edgeforge-report.json",
                                                        "os-pack.yaml"]
        report = json.loads((out / "edgeforge-report.json").read_text())
        assert report["status"] == "failed"
        assert {s["name"]: s["status"] for s in report["steps"]}["collect"] == "failed"
    finally:
        subprocess.run(["umount", str(out)], check=False)
