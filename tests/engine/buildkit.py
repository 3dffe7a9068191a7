"""Helpers for build tests: the command line a user with a remote BuildKit would type."""

from __future__ import annotations

from pathlib import Path

from tests.double_image import DOUBLE_BUILDKIT_HOST

PASSWORD = "s3cret-Pa55:word#1"  # the registry fixtures' password (an obvious test fake)
TOKEN = "TestToken-9f8e7d6c5b4a"  # a fake registration token
# A remote BuildKit the Earthly double treats as reachable. Not 127.0.0.1: Earthly takes that for a LOCAL
# BuildKit it must start itself (util/containerutil/shell_shared.go:431-444).
REMOTE_BUILDKIT = DOUBLE_BUILDKIT_HOST


def build_args(workdir: Path, canvos_url: str, earthly_image: str, *extra: str) -> list[str]:
    return [
        "--workdir", str(workdir), "build",
        "--canvos-url", canvos_url, "--ref", "v4.10.0",
        "--earthly-image", earthly_image, "--buildkit-host", REMOTE_BUILDKIT,
        "--palette-endpoint", "api.spectrocloud.com", "--project-name", "Default",
        "--k8s-distribution", "k3s", "--k8s-version", "1.32.3", "--custom-tag", "nightly",
        *extra,
    ]


def lowered_thresholds(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """This machine has 2 CPUs; the remaining checks (docker, git, disk, memory) still run for real."""
    monkeypatch.setenv("EDGEFORGE_PREFLIGHT_MIN_CPUS", "1")
    monkeypatch.setenv("EDGEFORGE_PREFLIGHT_MIN_DISK_GB", "1")
    monkeypatch.setenv("EDGEFORGE_PREFLIGHT_MIN_MEMORY_GB", "1")
