"""Preflight against the real daemon of this machine: 2 CPUs and no privileged containers."""

from __future__ import annotations

import json
import os

from edgeforge_ext.cli import run


def test_preflight_reports_cpu_and_privileged_failures(docker_client, busybox_image, capsys, tmp_path):
    if (os.cpu_count() or 0) >= 4:  # pragma: no cover - only meaningful on a small host
        import pytest

        pytest.fail("this test expects the 2-CPU build machine of this project")
    code = run(["--workdir", str(tmp_path), "preflight", "--json"])
    out = json.loads(capsys.readouterr().out)
    checks = {c["name"]: c for c in out["checks"]}
    # Privileged containers refused is a container-engine problem: exit 6 (ARCHITECTURE.md), even with
    # a host check (cpu) failing too.
    assert code == 6 and out["ok"] is False
    assert set(checks) == {"arch", "cpu", "memory", "disk", "docker", "docker_version", "privileged", "git",
                           "boot_test"}
    assert checks["cpu"]["ok"] is False and "minimum 4" in checks["cpu"]["detail"]
    assert checks["privileged"]["ok"] is False and checks["privileged"]["required"] is True
    assert "privileged" in checks["privileged"]["detail"]
    assert checks["docker"]["ok"] and checks["docker_version"]["ok"]
    assert "API" in checks["docker_version"]["detail"]
    assert checks["git"]["ok"]
    # QEMU is installed here (scripts/test): a boot test can run, and it says how; never required.
    assert checks["boot_test"]["ok"] and checks["boot_test"]["required"] is False
    assert "TCG" in checks["boot_test"]["detail"] or "KVM" in checks["boot_test"]["detail"]


def test_preflight_table_on_stderr_lists_everything(docker_client, busybox_image, capsys, tmp_path):
    code = run(["--workdir", str(tmp_path), "preflight"])
    err = capsys.readouterr().err
    assert code == 6
    for name in ("arch", "cpu", "memory", "disk", "docker_version", "privileged", "git"):
        assert name in err
    assert "preflight failed: cpu, privileged" in err


def test_preflight_passes_with_lowered_thresholds_and_remote_buildkit(docker_client, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("EDGEFORGE_PREFLIGHT_MIN_CPUS", "1")
    monkeypatch.setenv("EDGEFORGE_PREFLIGHT_MIN_DISK_GB", "1")
    monkeypatch.setenv("EDGEFORGE_PREFLIGHT_MIN_MEMORY_GB", "1")
    code = run(["--workdir", str(tmp_path), "preflight", "--buildkit-host", "tcp://127.0.0.1:8372"])
    assert code == 0, capsys.readouterr().err


def test_unreachable_daemon_is_reported(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    code = run(["--workdir", str(tmp_path), "preflight", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert code == 6  # no daemon: exit 6 for every command
    assert checks["docker"]["ok"] is False and "cannot reach the Docker daemon" in checks["docker"]["detail"]


def test_a_small_host_alone_is_exit_3(docker_client, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("EDGEFORGE_PREFLIGHT_MIN_DISK_GB", "1")
    monkeypatch.setenv("EDGEFORGE_PREFLIGHT_MIN_MEMORY_GB", "1")
    code = run(["--workdir", str(tmp_path), "preflight", "--buildkit-host", "tcp://127.0.0.1:8372"])
    assert code == 3 and "preflight failed: cpu" in capsys.readouterr().err


def test_no_daemon_is_exit_6_for_build_too(monkeypatch, capsys, tmp_path, canvos_repo):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    code = run(["--workdir", str(tmp_path / "w"), "build", "--canvos-url", canvos_repo.url, "--ref", "v4.10.0",
                "--k8s-version", "1.32.3", "--no-push"])
    assert code == 6 and "cannot reach the Docker daemon" in capsys.readouterr().err
