"""Two builds on one Docker daemon, different work directories, the same image names, at the same time:
both succeed and each pushes its own image (issue 16); where the checkout's Earthfile keeps the names from
being made unique, both refuse instead of pushing an image that may be the other's. Real daemon, real
registry, the stand-in Earthly held for a few seconds so the two Earthly runs overlap."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import requests

from edgeforge_ext.engine import LABEL, WORKDIR_LABEL
from tests.canvos_fixture import earthfile
from tests.engine.shard_helpers import cli_process, remove_built_images, tag_with_knobs, write_config

TAG = "k3s-1.32.3-v4.9.21-nightly"  # K8S_DISTRIBUTION-K8S_VERSION-PE_VERSION-CUSTOM_TAG of write_config's builds
# Where CanvOS's Dockerfile (v4.5+) puts the CAs of certs/, where the tool writes build.ca_certs as
# certs/edgeforge-<stem>.crt: the CA a build trusts is inside its provider image.
CA_IN_IMAGE = "usr/local/share/ca-certificates/edgeforge-proxy-ca.crt"


@pytest.fixture(autouse=True)
def _no_images_left(docker_client, tmp_path):
    yield
    remove_built_images(docker_client, tmp_path)


def _manifest(registry, repo: str, reference: str) -> dict:
    r = requests.get(f"{registry.url}/v2/{repo}/manifests/{reference}", timeout=10,
                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    r.raise_for_status()
    return dict(r.json())


def _file_in_pushed_image(registry, repo: str, digest: str, path: str) -> bytes | None:
    """The content of `path` in the image the registry holds under `digest`, read from its layer blobs
    (the topmost layer holding it wins), not from the daemon that built it."""
    for layer in reversed(_manifest(registry, repo, digest)["layers"]):
        r = requests.get(f"{registry.url}/v2/{repo}/blobs/{layer['digest']}", timeout=60)
        r.raise_for_status()
        with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:*") as tar:
            for member in tar:
                if member.isfile() and member.name.removeprefix("./") == path:
                    f = tar.extractfile(member)
                    assert f is not None
                    return f.read()
    return None


def _run_at_once(docker_client: Any, config: Path, workdirs: list[Path],
                 extra: list[list[str]]) -> list[tuple[subprocess.Popen[str], str, str]]:
    """`build` in each work directory, all at once; returns (process, stdout, stderr) of each once all
    ended. Fails unless all their Earthly runs were seen running at the same moment."""
    ours = {str(w.resolve()) for w in workdirs}
    procs = [cli_process(["--config", str(config), "--workdir", str(w), "build", *more])
             for w, more in zip(workdirs, extra, strict=True)]
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and seen != ours:  # both Earthly runs at once, or the test proves nothing
            assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs]
            running = docker_client.containers.list(filters={"label": f"{LABEL}=earthly"}, ignore_removed=True)
            now = {c.labels.get(WORKDIR_LABEL) for c in running} & ours
            if now == ours:
                seen = now
            time.sleep(0.2)
        results = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert seen == ours, "the Earthly runs never overlapped"
    return [(p, out, err) for p, (out, err) in zip(procs, results, strict=True)]


def test_two_builds_with_the_same_image_names_each_push_their_own(
    docker_client, standin_earthly_image, registry_factory, canvos_repo, tmp_path
):
    tag_with_knobs(canvos_repo)
    reg = registry_factory(auth=False)
    config = write_config(tmp_path / "conf" / "edgeforge.toml", canvos_repo.url, standin_earthly_image,
                          build=f'image_registry = "{reg.host}"\nimage_repo = "edge-ubuntu"\n'
                          'extra_args = { STANDIN_SLEEP = "4" }', push="enabled = true\nto = [\"origin\"]")
    workdirs = [tmp_path / "w1", tmp_path / "w2"]
    # Each build trusts its own proxy CA, under the same file name: the only difference between the two
    # builds, and it ends up inside the provider image, so an image tells which build made it.
    cas = []
    for n, workdir in enumerate(workdirs, 1):
        ca = tmp_path / f"ca{n}" / "proxy-ca.pem"
        ca.parent.mkdir()
        ca.write_text(f"-----BEGIN CERTIFICATE-----\nproxy CA of build {n} ({workdir.name})\n"
                      "-----END CERTIFICATE-----\n")
        cas.append(ca)
    runs = _run_at_once(docker_client, config, workdirs, [["--ca-cert", str(ca), "--json"] for ca in cas])
    for p, _out, err in runs:
        assert p.returncode == 0, err[-3000:]

    ref = f"{reg.host}/edge-ubuntu:{TAG}"
    image_ids, digests = [], []
    for workdir, ca in zip(workdirs, cas, strict=True):
        report = json.loads((workdir / "output" / "edgeforge-report.json").read_text())
        (image,) = report["provider_images"]
        assert image["ref"] == ref  # the user's name: what os-pack.yaml names and what was pushed
        (pushed,) = image["pushed"]
        assert pushed["ref"] == ref
        # What the registry holds under the digest this build reports is this build's image: the image
        # id is the digest of its config...
        assert _manifest(reg, "edge-ubuntu", pushed["digest"])["config"]["digest"] == image["image_id"]
        # ...and it trusts this build's CA, not the other's: an image made by the other build (a swap
        # of the two) fails here.
        assert _file_in_pushed_image(reg, "edge-ubuntu", pushed["digest"], CA_IN_IMAGE) == ca.read_bytes(), \
            f"the image {workdir.name} pushed is not the one its build made"
        image_ids.append(image["image_id"])
        digests.append(pushed["digest"])
    assert image_ids[0] != image_ids[1] and digests[0] != digests[1]
    # Both pushed the same tag: it holds one of the two, whichever came last.
    assert _manifest(reg, "edge-ubuntu", TAG)["config"]["digest"] in image_ids
    # Each Earthly run saved under its work directory's own name, not the user's.
    for image_id in image_ids:
        names = docker_client.images.get(image_id).tags
        assert any(n.startswith("edgeforge.invalid/") for n in names), names


REFUSED = ("another build saved provider images with the same names while this one ran, so which image in "
           "the Docker daemon is this build's cannot be told")


def test_two_builds_refuse_to_push_when_the_earthfile_keeps_the_names_from_being_made_unique(
    docker_client, standin_earthly_image, registry_factory, canvos_repo, tmp_path
):
    """A fork whose provider image records IMAGE_REGISTRY (an ENV line): the tool cannot give each build a
    name of its own (the image would change), so both save under the user's names and neither can tell
    which image in the daemon is its own: each fails naming the other, and nothing is pushed."""
    recipe = earthfile("v4.9.21", canvos_repo.shape)
    saves = "    SAVE IMAGE --push $IMAGE_PATH\n"
    assert recipe.count(saves) == 2  # +provider-image and +uki-provider-image
    recipe = recipe.replace(saves, "    ENV EDGE_IMAGE_REGISTRY=$IMAGE_REGISTRY\n" + saves)
    canvos_repo.add_tag("v4.10.6", pe_version="v4.9.21", files={"Earthfile": recipe})
    reg = registry_factory(auth=False)
    config = write_config(tmp_path / "conf" / "edgeforge.toml", canvos_repo.url, standin_earthly_image,
                          build=f'image_registry = "{reg.host}"\nimage_repo = "edge-ubuntu"\n'
                          'extra_args = { STANDIN_SLEEP = "4" }', push="enabled = true\nto = [\"origin\"]",
                          ref="v4.10.6")
    workdirs = [tmp_path / "w1", tmp_path / "w2"]
    ref = f"{reg.host}/edge-ubuntu:{TAG}"
    try:
        runs = _run_at_once(docker_client, config, workdirs, [[], []])
        for (p, _out, err), other in zip(runs, reversed(workdirs), strict=True):
            assert p.returncode == 8, err[-3000:]  # exit 8: an artifact problem
            assert REFUSED in err, err[-3000:]
            assert f"other build: {other.resolve()}" in err, err[-3000:]
            assert "--custom-tag" in err and "--image-repo" in err, err[-3000:]  # the way out
        # Both Earthly runs saved under the user's name (no name of their own to keep them apart)...
        assert not any(t.startswith("edgeforge.invalid/") for t in docker_client.images.get(ref).tags)
        # ...and neither pushed anything.
        r = requests.get(f"{reg.url}/v2/edge-ubuntu/tags/list", timeout=10)
        assert r.status_code == 404 or not r.json().get("tags"), r.text
        for workdir in workdirs:
            report = json.loads((workdir / "output" / "edgeforge-report.json").read_text())
            assert report["status"] == "failed"
            # The report says so: no image id recorded as this build's, nothing pushed.
            assert [(i["image_id"], i["pushed"]) for i in report["provider_images"]] == [(None, [])], report
    finally:
        # Their images carry the user's name (one of them) or none: found by the registry they record.
        for image in docker_client.images.list(all=True):
            env = (image.attrs.get("Config") or {}).get("Env") or []
            if f"EDGE_IMAGE_REGISTRY={reg.host}" in env:
                with suppress(Exception):
                    docker_client.images.remove(image.id, force=True)
