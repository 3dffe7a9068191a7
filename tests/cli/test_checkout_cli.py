"""`edgeforge-ext checkout` through the CLI, against the fixture repository over file://."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeforge_ext.cli import run
from tests.canvos_fixture import CanvosRepo, git
from tests.conftest import free_port
from tests.unit.test_workdir_lock import held_by_other_process

KEYS = {"url", "ref", "sha", "pe_version", "describe", "path", "modified"}


def cli(workdir: Path, *args: str) -> list[str]:
    return ["--workdir", str(workdir), "checkout", *args]


def test_json_output(tmp_path: Path, canvos_repo: CanvosRepo, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(cli(tmp_path / "w", "--canvos-url", canvos_repo.url, "--ref", "v4.10.0", "--json"))
    out, err = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert KEYS <= set(data)
    assert data["sha"] == canvos_repo.tags["v4.10.0"]
    assert (data["ref"], data["tag"], data["pe_version"], data["describe"]) == (
        "v4.10.0", "v4.10.0", "v4.9.21", "v4.10.0")
    assert data["path"] == str((tmp_path / "w" / "CanvOS").resolve())
    assert data["modified"] == [] and data["url"] == canvos_repo.url
    assert "PE_VERSION is v4.9.21" in err  # the warning goes to stderr, the JSON stays clean


def test_human_output_and_config_layers(tmp_path: Path, canvos_repo: CanvosRepo,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EDGEFORGE_CANVOS_URL", canvos_repo.url)
    monkeypatch.setenv("EDGEFORGE_CANVOS_REF", "v4.9.38")
    monkeypatch.setenv("EDGEFORGE_WORKDIR", str(tmp_path / "w"))
    assert run(["checkout"]) == 0
    out, err = capsys.readouterr()
    assert out == ""  # humans read stderr
    lines = dict(line.split(None, 1) for line in err.splitlines())
    assert lines["sha"] == canvos_repo.tags["v4.9.38"]
    assert (lines["ref"], lines["tag"], lines["pe_version"]) == ("v4.9.38", "v4.9.38", "v4.9.38")
    assert lines["url"] == canvos_repo.url and lines["modified"] == "(none)"

    (tmp_path / "w/CanvOS/Dockerfile").write_text("FROM mine\n")
    assert run(["checkout", "--ref", "latest"]) == 4  # the flag beats the environment
    err = capsys.readouterr().err
    assert "local edits" in err and "  Dockerfile" in err and "--discard-changes" in err

    assert run(["checkout"]) == 0
    assert "modified    Dockerfile" in capsys.readouterr().err

    assert run(["checkout", "--ref", "latest", "--discard-changes"]) == 0
    err = capsys.readouterr().err
    assert "tag         v4.10.0" in err and "discarded local edits" in err


def test_missing_ref_exit_4(tmp_path: Path, canvos_repo: CanvosRepo, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cli(tmp_path, "--canvos-url", canvos_repo.url, "--ref", "4.10.0")) == 4
    err = capsys.readouterr().err
    assert "error: ref '4.10.0' not found" in err and "v4.10.0" in err


def test_credentials_scrubbed_from_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://builder:hunter2@127.0.0.1:{free_port()}/acme/CanvOS.git"
    assert run(["--debug", *cli(tmp_path, "--canvos-url", url)]) == 4  # --debug prints tracebacks too
    out, err = capsys.readouterr()
    assert "hunter2" not in out + err
    assert "could not clone http://127.0.0.1:" in err


def _cli_process(workdir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edgeforge_ext", *cli(workdir, *args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})


def test_second_run_waits_or_fails_with_no_wait(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    workdir = tmp_path / "w"
    with held_by_other_process(workdir) as holder:
        refused = _cli_process(workdir, "--canvos-url", canvos_repo.url, "--no-wait")
        _, err = refused.communicate(timeout=60)
        assert refused.returncode == 2
        assert f"(pid {holder.pid})" in err and not (workdir / "CanvOS").exists()

        waiting = _cli_process(workdir, "--canvos-url", canvos_repo.url, "--json")
        time.sleep(1.0)
        assert waiting.poll() is None  # still waiting on the lock
        assert not (workdir / "CanvOS").exists()
        assert holder.stdin is not None
        holder.stdin.close()
        out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert f"waiting for another edgeforge-ext run on {workdir} (pid {holder.pid}) ..." in err
    assert json.loads(out)["sha"] == canvos_repo.tags["v4.10.0"]


def test_two_concurrent_runs_leave_one_good_checkout(tmp_path: Path, canvos_repo: CanvosRepo) -> None:
    workdir = tmp_path / "w"
    runs = [_cli_process(workdir, "--canvos-url", canvos_repo.url, "--ref", ref, "--json")
            for ref in ("v4.10.0", "v4.9.38")]
    results = [(p.communicate(timeout=60), p.returncode) for p in runs]
    assert [code for _, code in results] == [0, 0], results
    shas = {json.loads(out)["sha"] for (out, _), _ in results}
    assert shas == {canvos_repo.tags["v4.10.0"], canvos_repo.tags["v4.9.38"]}
    assert git(workdir / "CanvOS", "status", "--porcelain") == ""
    assert sorted(p.name for p in workdir.iterdir()) == [".edgeforge.lock", "CanvOS"]


def test_help_recommends_the_environment_for_a_url_with_a_token(capsys):
    assert run(["checkout", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "belongs in EDGEFORGE_CANVOS_URL: a flag's value shows in ps" in help_text
