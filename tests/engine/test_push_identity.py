"""A build pushes exactly the image its own Earthly run produced, even when another build (another work
directory, the same image names, one shared daemon) re-tagged Earthly's name meanwhile; the names the
tool adds only to push are removed afterwards."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import requests

from edgeforge_ext.build.publish import push_images
from edgeforge_ext.build.report import ImageRecord, Report
from edgeforge_ext.config import load_config


def _image(docker_client: Any, content: bytes, tag: str) -> str:
    """A one-file image imported into the daemon; returns its id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("provider.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    repo, _, version = tag.rpartition(":")
    docker_client.api.import_image_from_data(raw.getvalue(), repository=repo, tag=version)
    return str(docker_client.images.get(tag).id)


def _config_digest(registry: Any, repo: str, tag: str) -> str:
    r = requests.get(f"{registry.url}/v2/{repo}/manifests/{tag}", auth=registry.auth, timeout=10,
                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    r.raise_for_status()
    return str(r.json()["config"]["digest"])


def test_push_sends_this_builds_image_not_the_one_now_under_its_name(docker_client, registry_factory, tmp_path):
    reg = registry_factory(auth=False)
    ref = f"{reg.host}/edge/ubuntu:k3s-1.32.3-v4.9.21-idtest"
    ours = _image(docker_client, b"this build\n", ref)
    impostor = _image(docker_client, b"another build, same names\n", ref)  # re-tags the shared name
    assert ours != impostor and docker_client.images.get(ref).id == impostor
    external = f"{reg.host}/mirror/ubuntu:k3s-1.32.3-v4.9.21-idtest"
    report = Report(provider_images=[ImageRecord(ref, "1.32.3", [ref, external], image_id=ours)])
    config = load_config(None, env={}, flags={"workdir": str(tmp_path / "w")}, cwd=tmp_path)
    try:
        push_images(config, report)
        # The image id is the digest of its config: the registry holds ours under both names.
        assert _config_digest(reg, "edge/ubuntu", "k3s-1.32.3-v4.9.21-idtest") == ours
        assert _config_digest(reg, "mirror/ubuntu", "k3s-1.32.3-v4.9.21-idtest") == ours
        assert [p.ref for p in report.provider_images[0].pushed] == [ref, external]
        tags = {t for image in docker_client.images.list() for t in image.tags}
        assert external not in tags  # the push alias is gone; Earthly's name stays (now ours again)
        assert docker_client.images.get(ref).id == ours
    finally:
        for image_id in (ours, impostor):
            docker_client.images.remove(image_id, force=True)


def test_a_name_moved_during_the_push_is_pushed_again_as_this_builds_image(
    docker_client, registry_factory, tmp_path, monkeypatch
):
    """The daemon pushes a name, not an image: when another build moves the name between our tag and the
    push (made certain here by moving it just before the first push), the digest the daemon records on
    our image says so, and the push is repeated with our image."""
    from edgeforge_ext import engine

    reg = registry_factory(auth=False)
    local = "edgeforge.invalid/0123456789/ubuntu:k3s-1.32.3-v4.9.21-race"
    target = f"{reg.host}/edge/ubuntu:k3s-1.32.3-v4.9.21-race"
    ours = _image(docker_client, b"this build\n", local)
    impostor = _image(docker_client, b"another build\n", f"{reg.host}/other:race")
    real_push = engine.push_image
    pushes: list[str] = []

    def racing_push(c, ref, **kwargs):
        if not pushes:
            docker_client.images.get(impostor).tag(*ref.rsplit(":", 1))  # the other build wins the name once
        digest = real_push(c, ref, **kwargs)
        pushes.append(digest)
        return digest

    monkeypatch.setattr(engine, "push_image", racing_push)
    report = Report(provider_images=[ImageRecord(local, "1.32.3", [target], image_id=ours)])
    config = load_config(None, env={}, flags={"workdir": str(tmp_path / "w")}, cwd=tmp_path)
    try:
        push_images(config, report)
        assert len(pushes) == 2 and pushes[0] != pushes[1]  # the first push sent the other build's image
        (pushed,) = report.provider_images[0].pushed
        assert pushed.digest == pushes[1]
        assert _config_digest(reg, "edge/ubuntu", "k3s-1.32.3-v4.9.21-race") == ours
        assert target not in {t for image in docker_client.images.list() for t in image.tags}  # alias removed
    finally:
        for image_id in (ours, impostor):
            docker_client.images.remove(image_id, force=True)
