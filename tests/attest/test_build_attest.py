"""`build --attest` end to end with the stand-in Earthly image (tests/standin.py): the ISO's evidence beside
it, each provider image pushed, signed and attested, and `verify` accepting both as a user runs it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgeforge_ext.attest.keys import write_key_pair
from edgeforge_ext.canvos.build_inputs import EARTHLY_CONTAINER
from edgeforge_ext.cli import run
from edgeforge_ext.secrets import Secret
from tests.engine.buildkit import PASSWORD, TOKEN, build_args, lowered_thresholds

pytestmark = pytest.mark.engine

KEY_PASSWORD = "build-Attest-Key-9!"


def test_build_attest_signs_the_iso_and_the_pushed_image(docker_client: Any, standin_earthly_image: str,
                                                        registry_factory: Any, canvos_repo: Any, tmp_path: Any,
                                                        monkeypatch: Any, capsys: Any) -> None:
    reg = registry_factory(auth=True, password=PASSWORD)
    key, pub = write_key_pair(tmp_path / "edge", Secret(KEY_PASSWORD))
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", PASSWORD)
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", TOKEN)
    monkeypatch.setenv("EDGEFORGE_ATTEST_KEY_PASSWORD", KEY_PASSWORD)
    lowered_thresholds(monkeypatch)
    workdir = tmp_path / "w"
    code = run(build_args(workdir, canvos_repo.url, standin_earthly_image,
                          "--image-registry", "127.0.0.1", "--image-repo", "edge-ubuntu",
                          "--registry", f"{reg.host}/spectro-images", "--registry-username", reg.username,
                          "--push-to", "external", "--attest", "--attest-key", str(key), "--json"))
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    report = json.loads(captured.out)
    assert [s["name"] for s in report["steps"]][-3:] == ["attest", "push", "report"]
    iso = report["iso"]["path"]
    assert report["attestation"]["iso"]["envelopes"] == [f"{iso}.provenance.dsse.json", f"{iso}.spdx.dsse.json"]
    deps = {d["name"]: d for d in report["attestation"]["facts"]["dependencies"]}
    # Every image the build pulled for itself, as `images list --build-inputs` names them for these options:
    # by reference, since BuildKit resolved them inside Earthly (no build.inputs_registry here).
    assert run(["--workdir", str(workdir), "images", "list", "--build-inputs", "--json", "--canvos-url",
                canvos_repo.url, "--ref", "v4.10.0", "--k8s-distribution", "k3s", "--k8s-version", "1.32.3",
                "--earthly-image", standin_earthly_image]) == 0
    listed = {i["ref"] for i in json.loads(capsys.readouterr().out)["images"]
              if i["uses"] != [EARTHLY_CONTAINER]}  # the Earthly image is the `earthly` dependency
    assert listed, "the fixture's Earthfile pulls images"
    assert set(deps) == {"CanvOS", "earthly", ".arg", "user-data"} | listed
    for ref in listed:
        assert deps[ref]["digest"] == {} and "resolved by BuildKit" in deps[ref]["annotations"]["digest"]
    (pushed,) = report["provider_images"][0]["pushed"]
    assert pushed["attested"] is True
    for secret in (KEY_PASSWORD, PASSWORD, TOKEN):
        assert secret not in captured.out + captured.err
        for suffix in (".provenance.json", ".spdx.json", ".provenance.dsse.json", ".spdx.dsse.json"):
            assert secret not in open(iso + suffix).read()

    code = run(["verify", "--json", "--key", str(pub), "--registry", f"{reg.host}/spectro-images",
                "--registry-username", reg.username, iso, pushed["ref"]])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert [r["verified"] for r in out["results"]] == [["provenance", "SBOM"], ["signature", "provenance", "SBOM"]]
