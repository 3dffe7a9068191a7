"""engine.py against the real daemon and registry: containers always removed, push with auth, clean."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from edgeforge_ext import engine
from edgeforge_ext.engine import LABEL, WORKDIR_LABEL, ContainerSpec, Mount
from edgeforge_ext.errors import EngineError, RegistryError
from edgeforge_ext.secrets import Secret

pytestmark = pytest.mark.engine


def _mine(docker_client: Any, workdir: str) -> list[Any]:
    return list(docker_client.containers.list(all=True, filters={"label": [f"{WORKDIR_LABEL}={workdir}"]},
                                              ignore_removed=True))


@pytest.fixture
def workdir(tmp_path: Path) -> str:
    return str(tmp_path / f"wd-{uuid.uuid4().hex[:8]}")


def test_container_is_removed_after_use_and_on_error(docker_client, busybox_image, workdir):
    spec = ContainerSpec(busybox_image, ["sh", "-c", "echo hi; sleep 30"], workdir=workdir, stop_timeout=1,
                         name=f"efx-test-{uuid.uuid4().hex[:8]}")
    with engine.managed_container(docker_client, spec) as ctr:
        ctr.reload()
        assert ctr.status == "running"
        assert ctr.labels[LABEL] == "container" and ctr.labels[WORKDIR_LABEL] == workdir
    assert _mine(docker_client, workdir) == []
    with pytest.raises(RuntimeError), engine.managed_container(docker_client, spec):
        raise RuntimeError("boom")
    assert _mine(docker_client, workdir) == []


def test_keyboard_interrupt_mid_stream_removes_the_container(docker_client, busybox_image, workdir):
    spec = ContainerSpec(busybox_image, ["sh", "-c", "while true; do echo line; done"], workdir=workdir,
                         stop_timeout=1)
    with pytest.raises(KeyboardInterrupt), engine.managed_container(docker_client, spec) as ctr:
        for n, _chunk in enumerate(engine.log_chunks(docker_client, ctr)):
            if n > 10:
                raise KeyboardInterrupt
    assert _mine(docker_client, workdir) == []


def test_a_failed_start_removes_what_was_created(docker_client, busybox_image, workdir):
    spec = ContainerSpec(busybox_image, [], entrypoint=["/no/such/binary"], workdir=workdir)
    with pytest.raises(EngineError, match="cannot start"), engine.managed_container(docker_client, spec):
        pytest.fail("must not be reached")
    assert _mine(docker_client, workdir) == []


def test_privileged_refusal_is_an_engine_error_naming_privileged(docker_client, busybox_image, workdir):
    probe = engine.probe_privileged(docker_client, busybox_image)
    if probe.allowed:  # a permissive daemon: then the privileged start must simply work
        spec = ContainerSpec(busybox_image, ["true"], privileged=True, workdir=workdir)
        with engine.managed_container(docker_client, spec) as ctr:
            assert engine.wait_exit(ctr) == 0
        return
    spec = ContainerSpec(busybox_image, ["true"], privileged=True, workdir=workdir)
    with pytest.raises(EngineError) as info, engine.managed_container(docker_client, spec):
        pytest.fail("must not be reached")
    assert "privileged container" in info.value.message
    assert "--buildkit-host" in (info.value.hint or "")
    assert _mine(docker_client, workdir) == []


def test_volumes_are_created_with_our_label_and_cleaned(docker_client, busybox_image, workdir):
    volume = f"edgeforge-buildkit-cache-test-{uuid.uuid4().hex[:8]}"
    spec = ContainerSpec(busybox_image, ["sh", "-c", "echo warm > /cache/state"], workdir=workdir,
                         mounts=[Mount(volume, "/cache", kind="volume")])
    try:
        with engine.managed_container(docker_client, spec) as ctr:
            assert engine.wait_exit(ctr) == 0
        assert docker_client.volumes.get(volume).attrs["Labels"][LABEL] == "buildkit-cache"
        # A leftover container of this workdir (as after a crash) and the volume go with `clean`.
        docker_client.containers.create(busybox_image, ["true"], labels={LABEL: "earthly", WORKDIR_LABEL: workdir})
        summary = engine.remove_managed(docker_client, workdir, volume_prefix=volume)
        assert len(summary.containers) == 1 and summary.volumes == [volume]
        assert _mine(docker_client, workdir) == []
        assert volume not in [v.name for v in docker_client.volumes.list()]
    finally:
        for v in docker_client.volumes.list(filters={"name": volume}):
            v.remove(force=True)


@pytest.fixture
def pushable(docker_client, busybox_image, registry) -> Any:
    ref = f"{registry.host}/efx-test/provider:k3s-1.30.10-v4.9.21-{uuid.uuid4().hex[:6]}"
    engine.tag_image(docker_client, busybox_image, ref)
    yield ref
    docker_client.images.remove(ref)


def test_push_with_credentials_returns_the_registrys_digest(docker_client, registry, pushable):
    progress: list[str] = []
    digest = engine.push_image(docker_client, pushable, username=registry.username,
                               password=Secret(registry.password), on_progress=progress.append)
    repo, tag = pushable.split("/", 1)[1].rsplit(":", 1)
    head = requests.head(f"{registry.url}/v2/{repo}/manifests/{tag}", auth=registry.auth, timeout=10,
                         headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert head.status_code == 200
    assert digest == head.headers["Docker-Content-Digest"]
    assert any(line.endswith(": Pushed") or "already exists" in line for line in progress)
    assert pushable in docker_client.images.get(pushable).tags


def test_wrong_password_is_a_registry_error_without_the_password(docker_client, registry, pushable):
    with pytest.raises(RegistryError) as info:
        engine.push_image(docker_client, pushable, username=registry.username,
                          password=Secret("wrong-password-xyz"), retries=3, backoff=5.0)
    assert info.value.exit_code == 9
    assert "wrong-password-xyz" not in info.value.message
    assert "unauthorized" in info.value.message.lower() or "authentication" in info.value.message.lower()


def test_pushing_a_missing_image_is_a_registry_error(docker_client, registry):
    with pytest.raises(RegistryError, match="not in the Docker daemon"):
        engine.push_image(docker_client, f"{registry.host}/nope/missing:1", username=None, password=None)
    with pytest.raises(RegistryError, match="cannot be tagged"):
        engine.tag_image(docker_client, "edgeforge-test/no-such-image:1", f"{registry.host}/x:1")
