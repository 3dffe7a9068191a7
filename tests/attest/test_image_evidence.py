"""A provider image's evidence end to end: a real Docker daemon, real `docker-registry` instances with
htpasswd auth, an image with a known dpkg database; pushed as `build --attest` pushes it, then checked
with `edgeforge-ext verify`, after a mirror, and after tampering."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from edgeforge_ext.attest.keys import write_key_pair
from edgeforge_ext.build.publish import push_images
from edgeforge_ext.build.report import ImageRecord, Report
from edgeforge_ext.cli import run
from edgeforge_ext.config import pem_lines
from edgeforge_ext.secrets import Secret
from tests.attest.helpers import DPKG_STATUS, INSTALLED, OS_RELEASE
from tests.conftest import Registry, _start_registry, _stop_registry, free_port

pytestmark = pytest.mark.engine
KEY_PASSWORD = "attest-Key-Passw0rd!"
LOCAL = "edgeforge-test/provider-dpkg:k3s-1.32.3-v4.10.0-test"


@pytest.fixture(scope="module")
def dpkg_image(docker_client: Any, busybox_image: str) -> str:
    """A tiny image whose package database lists exactly INSTALLED (busybox + dpkg status + os-release)."""
    context = io.BytesIO()
    files = {"Dockerfile": f"FROM {busybox_image}\nCOPY status /var/lib/dpkg/status\n"
                           "COPY os-release /usr/lib/os-release\nRUN ln -s ../usr/lib/os-release /etc/os-release\n"
                           .encode(), "status": DPKG_STATUS, "os-release": OS_RELEASE}
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    docker_client.images.build(fileobj=context, custom_context=True, tag=LOCAL, rm=True)
    return LOCAL


@dataclass
class Pushed:
    target: str
    digest: str
    report: Report
    pub: Path
    key: Path
    output: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry of this module's own: the session's is shared, and the Docker daemon would mount this
    module's layers into other tests' pushes from it ("Mounted from …" instead of "Pushed")."""
    reg = _start_registry(tmp_path_factory.mktemp("registry"), free_port(), "builder", "s3cret-Pa55:word#1")
    yield reg
    _stop_registry(reg)


@pytest.fixture(scope="module")
def pushed(dpkg_image: str, docker_client: Any, registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    """The image pushed with --attest by the push step, with an encrypted key."""
    from _pytest.capture import MultiCapture, SysCapture  # the module fixture's own capture of what it printed

    from tests.configs import make_config

    base = tmp_path_factory.mktemp("attest")
    key, pub = write_key_pair(base / "edge", Secret(KEY_PASSWORD))
    env = {"EDGEFORGE_REGISTRY_PASSWORD": registry.password, "EDGEFORGE_ATTEST_KEY_PASSWORD": KEY_PASSWORD}
    config = make_config(base, env={**env, "EDGEFORGE_ATTEST_KEY_FILE": str(key)}, registry__domain=registry.host,
                         registry__username=registry.username, attest__enabled=True)
    target = f"{registry.host}/edge/ubuntu:k3s-1.32.3-v4.10.0-test"
    image_id = docker_client.images.get(dpkg_image).id
    report = Report(provider_images=[ImageRecord(dpkg_image, "1.32.3", [target], image_id=image_id)])
    capture = MultiCapture(in_=None, out=SysCapture(1), err=SysCapture(2))
    capture.start_capturing()
    try:
        push_images(config, report)
    finally:
        out, err = capture.readouterr()
        capture.stop_capturing()
    (record,) = report.provider_images[0].pushed
    return Pushed(target, record.digest, report, pub, key, out + err, env)


def _verify(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, registry: Any, pub: Path,
            *targets: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", registry.password)
    code = run(["verify", "--json", "--key", str(pub), "--registry", registry.host,
                "--registry-username", registry.username, *targets])
    return code, json.loads(capsys.readouterr().out)


def _manifest(registry: Any, path: str, reference: str) -> requests.Response:
    return requests.get(f"{registry.url}/v2/{path}/manifests/{reference}", auth=registry.auth, timeout=10,
                        headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                                           "application/vnd.docker.distribution.manifest.v2+json"})


def _layers(registry: Any, path: str, tag: str) -> list[tuple[dict, bytes]]:  # type: ignore[type-arg]
    manifest = _manifest(registry, path, tag).json()
    return [(d, requests.get(f"{registry.url}/v2/{path}/blobs/{d['digest']}", auth=registry.auth, timeout=10).content)
            for d in manifest["layers"]]


def test_the_final_tag_names_the_attested_digest(pushed: Pushed, registry: Any):
    (record,) = pushed.report.provider_images[0].pushed
    assert record.attested and record.ref == pushed.target
    tag = pushed.target.rsplit(":", 1)[1]
    assert _manifest(registry, "edge/ubuntu", tag).headers["Docker-Content-Digest"] == pushed.digest
    sig = "sha256-" + pushed.digest.split(":")[1] + ".sig"
    assert _manifest(registry, "edge/ubuntu", sig).status_code == 200
    assert _manifest(registry, "edge/ubuntu", sig + "x").status_code == 404  # (the check can fail)


def test_verify_accepts_the_pushed_image(pushed: Pushed, registry: Any, capsys, monkeypatch):
    code, out = _verify(capsys, monkeypatch, registry, pushed.pub, pushed.target)
    assert code == 0, out
    (result,) = out["results"]
    assert result["digest"] == pushed.digest
    assert result["verified"] == ["signature", "provenance", "SBOM"]


def test_the_image_sbom_lists_exactly_its_dpkg_packages(pushed: Pushed, registry: Any):
    att = "sha256-" + pushed.digest.split(":")[1] + ".att"
    layers = _layers(registry, "edge/ubuntu", att)
    by_type = {d["annotations"]["predicateType"]: json.loads(base64.b64decode(json.loads(data)["payload"]))
               for d, data in layers}
    sbom = by_type["https://spdx.dev/Document"]["predicate"]
    listed = {p["name"]: p["versionInfo"] for p in sbom["packages"] if p["SPDXID"] != "SPDXRef-Artifact"}
    assert listed == INSTALLED and len(sbom["packages"]) == 4
    provenance = by_type["https://slsa.dev/provenance/v1"]
    assert provenance["subject"] == [{"name": f"{registry.host}/edge/ubuntu",
                                      "digest": {"sha256": pushed.digest.split(":")[1]}}]


def test_secrets_are_in_no_output_and_no_evidence(pushed: Pushed, registry: Any):
    att = "sha256-" + pushed.digest.split(":")[1] + ".att"
    sig = "sha256-" + pushed.digest.split(":")[1] + ".sig"
    evidence = b"".join(data for tag in (att, sig) for _d, data in _layers(registry, "edge/ubuntu", tag))
    report = json.dumps(pushed.report.as_json())
    key_lines = pem_lines(Secret(pushed.key.read_text()))
    assert len(key_lines) >= 3
    for text in (pushed.output, report, evidence.decode()):
        for secret in (KEY_PASSWORD, registry.password, *key_lines):
            assert secret not in text
    assert "signed and attested" in pushed.output  # what was captured is the push's own output


def test_another_key_fails(pushed: Pushed, registry: Any, capsys, monkeypatch, tmp_path: Path):
    _, other = write_key_pair(tmp_path / "other", None)
    code, out = _verify(capsys, monkeypatch, registry, other, pushed.target)
    assert code == 8
    problems = out["results"][0]["problems"]
    assert problems[0].startswith("signature: no signature in sha256-")
    assert len(problems) == 3  # the signature, and each attestation's envelope


def test_mirror_carries_the_evidence_along(pushed: Pushed, registry: Any, registry_factory, capsys, monkeypatch):
    from edgeforge_ext.registry.client import Clients, Credentials
    from edgeforge_ext.registry.images import Rewrite, parse_ref
    from edgeforge_ext.registry.transfer import mirror_images

    mirror = registry_factory(auth=True, password=registry.password)
    target = f"{mirror.host}/mirror/edge/ubuntu:{pushed.target.rsplit(':', 1)[1]}"
    creds = Credentials(registry.username, Secret(registry.password))
    with Clients(lambda host: creds) as clients:
        (result,) = mirror_images([Rewrite(parse_ref(pushed.target), target, "prefix")], clients)
    assert result.status == "copied" and result.detail == "with signature, attestation"
    code, out = _verify(capsys, monkeypatch, mirror, pushed.pub, target)
    assert code == 0, out
    assert out["results"][0]["digest"] == pushed.digest


def test_a_removed_attestation_fails(pushed: Pushed, registry: Any, capsys, monkeypatch):
    """Last in this module: it deletes the .att from the registry."""
    att = "sha256-" + pushed.digest.split(":")[1] + ".att"
    digest = _manifest(registry, "edge/ubuntu", att).headers["Docker-Content-Digest"]
    deleted = requests.delete(f"{registry.url}/v2/edge/ubuntu/manifests/{digest}", auth=registry.auth, timeout=10)
    assert deleted.status_code == 202
    code, out = _verify(capsys, monkeypatch, registry, pushed.pub, pushed.target)
    assert code == 8
    assert out["results"][0]["problems"] == [f"missing attestation: no {att} in {registry.host}/edge/ubuntu"]
    assert out["results"][0]["verified"] == ["signature"]
