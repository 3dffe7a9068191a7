"""Preflight judging against simulated hosts: thresholds, hints, measured values."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeforge_ext.errors import PreflightError
from edgeforge_ext.preflight import GB, HostFacts, evaluate, raise_if_failed
from tests.configs import make_config


def good_host(**over) -> HostFacts:
    facts = HostFacts(machine="x86_64", cpus=8, memory_bytes=16 * GB, build_dir=Path("/build"),
                      build_dir_free=200 * GB, server_version="24.0.7", api_version="1.43",
                      docker_root_dir="/var/lib/docker", docker_root_free=200 * GB,
                      privileged_probe_ran=True, privileged_allowed=True, privileged_detail="ran",
                      git_version="2.39.5", boot_test="QEMU 7.2, SeaBIOS and OVMF; boots run under TCG")
    for k, v in over.items():
        setattr(facts, k, v)
    return facts


def by_name(checks):
    return {c.name: c for c in checks}


def cfg(tmp_path, env=None, flags=None):
    return make_config(tmp_path, env, **(flags or {}))


def test_good_host_passes_every_check(tmp_path):
    checks = evaluate(good_host(), cfg(tmp_path))
    assert [c.name for c in checks] == ["arch", "cpu", "memory", "disk", "docker", "docker_version",
                                        "privileged", "git", "boot_test"]
    assert all(c.ok for c in checks)
    raise_if_failed(checks)


def test_small_host_fails_with_measured_values_and_hints(tmp_path):
    host = good_host(cpus=2, memory_bytes=4 * GB, build_dir_free=10 * GB, docker_root_free=30 * GB)
    checks = by_name(evaluate(host, cfg(tmp_path)))
    assert not checks["cpu"].ok and "2 CPUs (minimum 4)" in checks["cpu"].detail
    assert "preflight.min_cpus" in checks["cpu"].hint
    assert not checks["memory"].ok and "4.0 GB" in checks["memory"].detail
    assert not checks["disk"].ok and "10.0 GB free" in checks["disk"].detail and "30.0 GB free" in checks["disk"].detail
    with pytest.raises(PreflightError) as e:
        raise_if_failed(list(checks.values()))
    assert e.value.exit_code == 3
    assert "cpu" in e.value.message and "memory" in e.value.message and "disk" in e.value.message


def test_thresholds_are_configurable_from_env(tmp_path):
    host = good_host(cpus=2, memory_bytes=4 * GB, build_dir_free=10 * GB, docker_root_free=10 * GB)
    env = {"EDGEFORGE_PREFLIGHT_MIN_CPUS": "2", "EDGEFORGE_PREFLIGHT_MIN_MEMORY_GB": "4",
           "EDGEFORGE_PREFLIGHT_MIN_DISK_GB": "8"}
    assert all(c.ok for c in evaluate(host, cfg(tmp_path, env)))


def test_disk_needs_more_for_several_provider_images(tmp_path):
    host = good_host(build_dir_free=60 * GB, docker_root_free=60 * GB)
    assert by_name(evaluate(host, cfg(tmp_path), provider_images=1))["disk"].ok
    disk = by_name(evaluate(host, cfg(tmp_path), provider_images=4))["disk"]
    assert not disk.ok and "minimum 65 GB for 4 provider images" in disk.detail


def test_docker_root_is_checked_separately(tmp_path):
    disk = by_name(evaluate(good_host(docker_root_free=5 * GB), cfg(tmp_path)))["disk"]
    assert not disk.ok and "Docker data root" in disk.hint


def test_arm64_host_for_amd64_build_says_what_to_do(tmp_path):
    arch = by_name(evaluate(good_host(machine="aarch64"), cfg(tmp_path)))["arch"]
    assert not arch.ok and "aarch64" in arch.detail and "AMD64" in arch.hint
    assert by_name(evaluate(good_host(machine="aarch64"), cfg(tmp_path, flags={"build.arch": "arm64"})))["arch"].ok


def test_old_docker_fails(tmp_path):
    v = by_name(evaluate(good_host(server_version="17.12.1-ce", api_version="1.35"), cfg(tmp_path)))
    assert not v["docker_version"].ok and "17.12.1-ce" in v["docker_version"].detail


def test_unreachable_docker(tmp_path):
    c = by_name(evaluate(good_host(docker_error="cannot reach the Docker daemon: refused"), cfg(tmp_path)))
    assert not c["docker"].ok and "refused" in c["docker"].detail
    assert not c["docker_version"].ok


def test_privileged_required_unless_buildkit_runs_elsewhere(tmp_path):
    host = good_host(privileged_allowed=False, privileged_detail="the daemon refused a privileged container")
    assert not by_name(evaluate(host, cfg(tmp_path)))["privileged"].ok
    remote = by_name(evaluate(host, cfg(tmp_path, flags={"earthly.buildkit_host": "tcp://bk:8372"})))["privileged"]
    assert remote.required is False
    # earthly.privileged = false without a BuildKit host is refused before preflight runs
    # (plan.check_earthly_mode, exit 6): Earthly's own BuildKit always needs the privilege.
    unpriv = by_name(evaluate(host, cfg(tmp_path, env={"EDGEFORGE_EARTHLY_PRIVILEGED": "false"})))["privileged"]
    assert unpriv.required is True
    raise_if_failed(evaluate(host, cfg(tmp_path, flags={"earthly.buildkit_host": "tcp://bk:8372"})))


def test_privileged_probe_that_could_not_run_says_why(tmp_path):
    host = good_host(privileged_probe_ran=False, privileged_allowed=False,
                     privileged_detail="could not probe: no local image to run")
    p = by_name(evaluate(host, cfg(tmp_path)))["privileged"]
    assert "could not probe" in p.detail and not p.required


def test_missing_git(tmp_path):
    g = by_name(evaluate(good_host(git_version=None), cfg(tmp_path)))["git"]
    assert not g.ok and "not installed" in g.detail


def test_no_qemu_is_a_warning_that_names_the_packages_not_a_failure(tmp_path):
    host = good_host(boot_test=None, boot_test_why="qemu-system-x86_64 not found")
    check = by_name(evaluate(host, cfg(tmp_path)))["boot_test"]
    assert not check.ok and not check.required
    assert "qemu-system-x86_64 not found" in check.detail and "qemu-system-x86 ovmf" in check.hint
    raise_if_failed(evaluate(host, cfg(tmp_path)))  # the build is not stopped for it
