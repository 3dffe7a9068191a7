"""Two builds on one Docker daemon, different work directories, the same image names, at the same time:
both succeed and each pushes its own image (issue 16). Real daemon, real registry, the stand-in Earthly
held for a few seconds so the two Earthly runs overlap."""

from __future__ import annotations

import json
import time

import pytest
import requests

from edgeforge_ext.engine import LABEL, WORKDIR_LABEL
from tests.engine.shard_helpers import cli_process, remove_built_images, tag_with_knobs, write_config


@pytest.fixture(autouse=True)
def _no_images_left(docker_client, tmp_path):
    yield
    remove_built_images(docker_client, tmp_path)


def _manifest(registry, repo: str, reference: str) -> dict:
    r = requests.get(f"{registry.url}/v2/{repo}/manifests/{reference}", timeout=10,
                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    r.raise_for_status()
    return dict(r.json())


def test_two_builds_with_the_same_image_names_each_push_their_own(
    docker_client, standin_earthly_image, registry_factory, canvos_repo, tmp_path
):
    tag_with_knobs(canvos_repo)
    reg = registry_factory(auth=False)
    config = write_config(tmp_path / "conf" / "edgeforge.toml", canvos_repo.url, standin_earthly_image,
                          build=f'image_registry = "{reg.host}"\nimage_repo = "edge-ubuntu"\n'
                          'extra_args = { STANDIN_SLEEP = "4" }', push="enabled = true\nto = [\"origin\"]")
    workdirs = [tmp_path / "w1", tmp_path / "w2"]
    ours = {str(w.resolve()) for w in workdirs}
    procs = [cli_process(["--config", str(config), "--workdir", str(w), "build", "--json"]) for w in workdirs]
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(seen) < 2:  # both Earthly runs at once, or the test proves nothing
            assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs]
            running = docker_client.containers.list(filters={"label": f"{LABEL}=earthly"}, ignore_removed=True)
            now = {c.labels.get(WORKDIR_LABEL) for c in running} & ours
            if len(now) == 2:
                seen = now
            time.sleep(0.2)
        results = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert seen == ours, "the two Earthly runs never overlapped"
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]

    ref = f"{reg.host}/edge-ubuntu:k3s-1.32.3-v4.9.21-nightly"
    image_ids, digests = [], []
    for workdir in workdirs:
        report = json.loads((workdir / "output" / "edgeforge-report.json").read_text())
        (image,) = report["provider_images"]
        assert image["ref"] == ref  # the user's name: what os-pack.yaml names and what was pushed
        (pushed,) = image["pushed"]
        assert pushed["ref"] == ref
        # What the registry holds under the digest this build reports is this build's image: the image
        # id is the digest of its config.
        assert _manifest(reg, "edge-ubuntu", pushed["digest"])["config"]["digest"] == image["image_id"]
        image_ids.append(image["image_id"])
        digests.append(pushed["digest"])
    assert image_ids[0] != image_ids[1] and digests[0] != digests[1]
    # Both pushed the same tag: it holds one of the two, whichever came last.
    assert _manifest(reg, "edge-ubuntu", "k3s-1.32.3-v4.9.21-nightly")["config"]["digest"] in image_ids
    # Each Earthly run saved under its work directory's own name, not the user's.
    for image_id in image_ids:
        names = docker_client.images.get(image_id).tags
        assert any(n.startswith("edgeforge.invalid/") for n in names), names
