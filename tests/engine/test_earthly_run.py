"""Running Earthly (the double, tests/double) through the engine: log relay, scrubbing, tail, cleanup, errors.

Earthly pads the target prefix of every line to 20 columns ("                +iso | ..."), so lines are
compared without the leading padding (`unpadded`)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from edgeforge_ext.build.earthly import EarthlyResult, earthly_command, earthly_spec, run_earthly
from edgeforge_ext.engine import WORKDIR_LABEL, ContainerSpec
from edgeforge_ext.errors import EngineError
from edgeforge_ext.iso.verify import verify_iso
from edgeforge_ext.secrets import MASK, Redactor, Secret
from tests.double_image import DOUBLE_BUILDKIT_HOST

pytestmark = pytest.mark.engine

PASSWORD = "s3cret-Pa55:word#1"
USER_DATA = f"""#cloud-config
stylus:
  site:
    paletteEndpoint: api.spectrocloud.com
  registryCredentials:
    domain: 127.0.0.1:5000
    username: builder
    password: {PASSWORD}
""".encode()


@pytest.fixture
def workspace(canvos_checkout: tuple[Path, Any]) -> tuple[Path, Path]:
    """(workdir, checkout) with a user-data and an .arg as the render step leaves them."""
    workdir, _repo = canvos_checkout
    checkout = workdir / "CanvOS"
    (checkout / "user-data").write_bytes(USER_DATA)
    (checkout / ".arg").write_text(
        'IMAGE_REGISTRY=127.0.0.1:5999/efx-test\nOS_DISTRIBUTION="ubuntu"\nIMAGE_REPO=ubuntu\n'
        "K8S_DISTRIBUTION=k3s\nISO_NAME='palette-edge-installer'\nCUSTOM_TAG=demo\nARCH=amd64\nOS_VERSION=22.04\n")
    return workdir, checkout


def unpadded(lines: list[str]) -> list[str]:
    return [line.lstrip() for line in lines]


def _containers(docker_client: Any, workdir: Path) -> list[Any]:
    label = f"{WORKDIR_LABEL}={workdir.resolve()}"
    return list(docker_client.containers.list(all=True, filters={"label": [label]}, ignore_removed=True))


def _spec(image: str, workdir: Path, checkout: Path, target: str, args: dict[str, str], *,
          privileged: bool = False, remote: bool = True) -> ContainerSpec:
    return earthly_spec(
        image=image, checkout=checkout,
        command=earthly_command(target, {"PE_VERSION": "v4.9.21", **args}),
        privileged=privileged, buildkit_host=DOUBLE_BUILDKIT_HOST if remote else None, proxies={},
        workdir=workdir, run_id=uuid.uuid4().hex[:8])


def _run(docker_client: Any, spec: ContainerSpec, log: Path, **kw: Any) -> tuple[EarthlyResult, list[str]]:
    seen: list[str] = []
    result = run_earthly(docker_client, spec, log_path=log, redactor=Redactor([Secret(PASSWORD)]),
                         on_line=seen.append, **kw)
    return result, seen


def test_iso_build_relays_the_log_and_leaves_a_verifiable_iso(docker_client, standin_earthly_image, workspace,
                                                              tmp_path):
    workdir, checkout = workspace
    log = tmp_path / "out" / "edgeforge-build.log"
    spec = _spec(standin_earthly_image, workdir, checkout, "iso", {"STANDIN_ECHO_FILE": "user-data"})
    result, seen = _run(docker_client, spec, log)
    assert result.exit_code == 0, result.tail
    assert result.current_target == "+iso"
    text = log.read_text()
    assert "+iso | --> standin earthly building +iso (PE_VERSION=v4.9.21)" in unpadded(seen)
    assert text.splitlines() == seen
    # The user-data (with the password) went through the log: masked in the file, the callback, the tail.
    assert f"+iso |     password: {MASK}" in unpadded(seen)
    assert PASSWORD not in text and all(PASSWORD not in line for line in seen + result.tail)
    check = verify_iso(checkout / "build" / "palette-edge-installer.iso", USER_DATA)
    assert check.user_data_path == "/files-iso/config.yaml"  # where CanvOS +build-iso puts it
    assert _containers(docker_client, workdir) == []


def test_no_secret_in_the_containers_env_or_argv(docker_client, standin_earthly_image, workspace, tmp_path):
    workdir, checkout = workspace
    spec = _spec(standin_earthly_image, workdir, checkout, "iso", {"STANDIN_SHOW_ENV": "1"})
    inspected: list[dict[str, Any]] = []

    def look(line: str) -> None:  # while the container runs: what `docker inspect` shows
        if not inspected:
            inspected.extend(c.attrs for c in _containers(docker_client, workdir))

    result = run_earthly(docker_client, spec, log_path=tmp_path / "build.log",
                         redactor=Redactor([Secret(PASSWORD)]), on_line=look)
    assert result.exit_code == 0, result.tail
    (attrs,) = inspected
    env = attrs["Config"]["Env"]
    # tcp:// BuildKit without certificates: the client must be told TLS is off (config/config.go ~158).
    assert "GLOBAL_CONFIG={disable_analytics: true, tls_enabled: false}" in env
    assert "NO_BUILDKIT=1" in env
    shown = " ".join([*env, *attrs["Args"], *(attrs["Config"]["Entrypoint"] or [])])
    assert PASSWORD not in shown and MASK not in shown
    # A RUN sees the build args as its environment (Earthly's RUN env), never a secret.
    log = (tmp_path / "build.log").read_text()
    env_lines = [line for line in unpadded(log.splitlines()) if line.startswith("+iso | STANDIN_ENV ")]
    assert "STANDIN_ENV PE_VERSION=v4.9.21" in log
    assert PASSWORD not in log and MASK not in log and all(PASSWORD not in line for line in env_lines)


def test_a_spec_carrying_a_secret_is_refused_before_any_container(docker_client, standin_earthly_image,
                                                                  workspace, tmp_path):
    workdir, checkout = workspace
    spec = _spec(standin_earthly_image, workdir, checkout, "iso", {"REGISTRY_PASSWORD": PASSWORD})
    with pytest.raises(EngineError, match="secret"):
        _run(docker_client, spec, tmp_path / "build.log")
    assert _containers(docker_client, workdir) == []


def test_failure_keeps_a_bounded_tail(docker_client, standin_earthly_image, workspace, tmp_path):
    workdir, checkout = workspace
    spec = _spec(standin_earthly_image, workdir, checkout, "iso",
                 {"STANDIN_LOG_LINES": "5000", "STANDIN_FAIL": "1"})
    result, seen = _run(docker_client, spec, tmp_path / "build.log", tail_lines=50)
    assert result.exit_code == 1  # Earthly's code for a failed RUN (app/run.go:233-251)
    assert len(result.tail) == 50
    # Earthly repeats the failure at the end, then suggests -i (run.go:235-242).
    tail = [line for line in unpadded(result.tail) if line.strip()]
    assert tail[-1].startswith("Help: To debug your build, you can use the --interactive (-i) flag")
    assert "+iso *failed* |       did not complete successfully. Exit code 2" in tail
    assert "+iso *failed* | ERROR: the stand-in was told to fail (STANDIN_FAIL=1)" in tail  # the failed RUN's output
    assert "+iso | standin log line 5000" in unpadded(seen)
    assert result.current_target == "+iso"
    assert len(seen) > 5000
    assert _containers(docker_client, workdir) == []


def test_ctrl_c_in_the_callback_removes_the_container(docker_client, standin_earthly_image, workspace,
                                                      tmp_path):
    workdir, checkout = workspace
    spec = _spec(standin_earthly_image, workdir, checkout, "iso",
                 {"STANDIN_LOG_LINES": "200", "STANDIN_SLEEP": "300"})

    def interrupt(line: str) -> None:
        if "sleeping" in line:
            assert len(_containers(docker_client, workdir)) == 1  # it really is running
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_earthly(docker_client, spec, log_path=tmp_path / "build.log", redactor=Redactor(),
                    on_line=interrupt)
    assert _containers(docker_client, workdir) == []


def test_privileged_earthly_is_refused_on_this_host(docker_client, standin_earthly_image, workspace, tmp_path):
    workdir, checkout = workspace
    spec = _spec(standin_earthly_image, workdir, checkout, "iso", {}, privileged=True, remote=False)
    assert spec.privileged
    with pytest.raises(EngineError) as info:
        _run(docker_client, spec, tmp_path / "build.log")
    assert info.value.exit_code == 6
    assert "privileged container" in info.value.message
    assert "--buildkit-host tcp://HOST:8372" in (info.value.hint or "")
    assert "host that allows privileged containers" in (info.value.hint or "")
    assert "privileged = false" not in (info.value.hint or "")  # refused alone (exit 6): never offered
    assert _containers(docker_client, workdir) == []


def test_unprivileged_without_a_buildkit_host_stops_in_the_image_entrypoint(docker_client, standin_earthly_image,
                                                                           workspace, tmp_path):
    """earthly.privileged = false without --buildkit-host: Earthly's entrypoint needs CAP_SYS_ADMIN for its
    own BuildKit and refuses (earthly-entrypoint.sh:28-34), so that setting alone cannot build."""
    workdir, checkout = workspace
    spec = _spec(standin_earthly_image, workdir, checkout, "iso", {}, privileged=False, remote=False)
    result, seen = _run(docker_client, spec, tmp_path / "build.log")
    assert result.exit_code == 1
    assert seen[-1] == "To run this image without buildkit, set the environment variable NO_BUILDKIT=1"
    assert _containers(docker_client, workdir) == []


def test_a_missing_image_that_cannot_be_pulled_names_it(docker_client, workspace, tmp_path):
    workdir, checkout = workspace
    image = f"127.0.0.1:9/edgeforge-test/no-such-earthly:{uuid.uuid4().hex[:6]}"
    spec = _spec(image, workdir, checkout, "iso", {})
    with pytest.raises(EngineError) as info:
        _run(docker_client, spec, tmp_path / "build.log")
    assert image in info.value.message
    assert "--earthly-image" in (info.value.hint or "")
    assert _containers(docker_client, workdir) == []


def test_standin_refuses_an_unknown_target(docker_client, standin_earthly_image, workspace, tmp_path):
    workdir, checkout = workspace
    spec = _spec(standin_earthly_image, workdir, checkout, "no-such-target", {})
    result, _ = _run(docker_client, spec, tmp_path / "build.log")
    assert result.exit_code == 1
    assert any("target no-such-target not found" in line for line in result.tail)


def test_standin_refuses_build_args_before_the_target(docker_client, standin_earthly_image, workspace, tmp_path):
    workdir, checkout = workspace
    spec = _spec(standin_earthly_image, workdir, checkout, "iso", {})
    spec.command = ["--PE_VERSION=v4.9.21", "+iso"]  # the order CanvOS commit 75ac96c fixed
    result, seen = _run(docker_client, spec, tmp_path / "build.log")
    assert result.exit_code == 1
    # Go's flag package names the flag without its `=value` (urfave/cli prints "Incorrect Usage: ...").
    assert "Incorrect Usage: flag provided but not defined: -PE_VERSION" in seen


def test_provider_images_land_in_the_daemon_under_earthlys_names(docker_client, standin_earthly_image,
                                                                 workspace, tmp_path):
    workdir, checkout = workspace
    registry = f"127.0.0.1:5999/efx-{uuid.uuid4().hex[:8]}"
    spec = _spec(standin_earthly_image, workdir, checkout, "build-provider-images",
                 {"K8S_VERSION": "1.30.10", "IMAGE_REGISTRY": registry})
    try:
        result, _ = _run(docker_client, spec, tmp_path / "build.log")
        assert result.exit_code == 0, result.tail
        tags = [t for img in docker_client.images.list(filters={"reference": f"{registry}/*"}) for t in img.tags]
        assert tags == [f"{registry}/ubuntu:k3s-1.30.10-v4.9.21-demo"]
    finally:
        for img in docker_client.images.list(filters={"reference": f"{registry}/*"}):
            for tag in img.tags:
                docker_client.images.remove(tag, force=True)


def test_every_line_reaches_the_relay_even_when_the_container_exits_under_load(docker_client, busybox_image,
                                                                               tmp_path):
    # Docker 20.10's `logs?follow=1` lost the end of the output (the error lines with it) in 4 of 25 runs
    # of a container that printed 5,000 lines and exited while the CPUs were busy. run_earthly attaches
    # before start, as `docker run` does, and must relay every line every time.
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        for i in range(12):
            spec = ContainerSpec(
                image=busybox_image, role="test", workdir=str(tmp_path), name=f"efx-load-{uuid.uuid4().hex[:8]}",
                command=["sh", "-c", 'seq 1 5000 | sed "s/^/+iso | line /"; echo "Error: last"; exit 2'])
            result, seen = _run(docker_client, spec, tmp_path / f"load-{i}.log")
            assert result.exit_code == 2
            assert len(seen) == 5001 and seen[-1] == "Error: last", (i, len(seen))
    finally:
        for hog in hogs:
            hog.kill()
