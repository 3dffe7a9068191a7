"""`images save` / `images load` through the CLI, between two real registries, as an air-gapped site would:
every digest preserved (index, platform manifests, blobs), signatures along, a differential bundle smaller
and loading on top of the earlier one; and `images verify --deep` naming each fault an Edge host's pull
would hit."""

from __future__ import annotations

import hashlib
import json
import tarfile

import pytest
import requests

from edgeforge_ext.cli import run
from tests.engine.registry_proxy import registry_proxy
from tests.engine.registry_push import (
    manifest_bytes,
    push_cosign_signature,
    push_layers_image,
    push_referrer,
    push_tiny_index,
    random_layer,
)

pytestmark = pytest.mark.engine

KIB = 1024
PASSWORD = "s3cret-Pa55:word#1"


def _out(capsys):
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.fixture
def site(registry_factory, tmp_path, monkeypatch):
    """An upstream registry (anonymous) holding a multi-platform image, a signed image and a third sharing
    its base; the air-gapped site's registry (htpasswd) the Edge host pulls from."""
    src = registry_factory(auth=False)
    ext = registry_factory(auth=True)
    index = push_tiny_index(src.url, "team/multi", "2.0")
    base = random_layer(300 * KIB, 1)
    signed, _ = push_layers_image(src.url, "team/app", "1.0", [base, random_layer(40 * KIB, 2)])
    push_cosign_signature(src.url, "team/app", signed)
    push_referrer(src.url, "team/app", signed, len(manifest_bytes(src.url, "team/app", "1.0")))
    other, _ = push_layers_image(src.url, "team/tool", "3", [base, random_layer(40 * KIB, 3)])
    images = tmp_path / "images.txt"
    images.write_text(f"{src.host}/team/multi:2.0\n{src.host}/team/app:1.0\n{src.host}/team/tool:3\n")
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", PASSWORD)
    # The source's host has a port: mapping rules (a prefix would put "host:port" inside the path).
    registry = ["--registry", f"{ext.host}/site", "--registry-username", "builder", "--registry-mapping",
                f"{src.host}={ext.host}/site"]
    return src, ext, images, registry, {"team/multi:2.0": index, "team/app:1.0": signed, "team/tool:3": other}


@pytest.mark.parametrize("name", ["kit", "kit.tar", "kit.tar.zst"])
def test_save_then_load_preserves_every_digest_and_carries_the_signature(site, tmp_path, capsys, name):
    src, ext, images, registry, digests = site
    bundle = tmp_path / name
    assert run(["images", "save", "--images", str(images), "--to", str(bundle), "--json"]) == 0
    out, err = _out(capsys)
    saved = json.loads(out)
    assert saved["saved"] == 3 and saved["failed"] == 0, err
    if name.endswith(".tar"):
        with tarfile.open(bundle) as tar:
            names = tar.getnames()
        blob_names = [n for n in names if n.startswith("blobs/")]
        assert len(blob_names) == len(set(blob_names))  # the shared base is in it once
        assert {"oci-layout", "index.json"} <= set(names)

    assert run(["images", "load", "--from", str(bundle), *registry, "--json"]) == 0
    out, err = _out(capsys)
    loaded = json.loads(out)
    assert (loaded["copied"], loaded["failed"]) == (3, 0), err
    for ref, digest in digests.items():
        repo, tag = ref.split(":")
        target = f"site/{repo}"
        got = manifest_bytes(ext.url, target, tag, ext.auth)
        assert got == manifest_bytes(src.url, repo, tag)
        assert got is not None and hashlib.sha256(got).hexdigest() == digest.split(":")[1]
    index = json.loads(manifest_bytes(ext.url, "site/team/multi", "2.0", ext.auth))
    for child in index["manifests"]:  # every platform, by digest
        assert manifest_bytes(ext.url, "site/team/multi", child["digest"], ext.auth) is not None
    sig_tag = "sha256-" + digests["team/app:1.0"].split(":")[1] + ".sig"
    assert manifest_bytes(ext.url, "site/team/app", sig_tag, ext.auth) == \
        manifest_bytes(src.url, "team/app", sig_tag)
    referrers = json.loads(manifest_bytes(ext.url, "site/team/app", sig_tag[:-4], ext.auth))  # the tag schema
    [sbom] = referrers["manifests"]
    assert manifest_bytes(ext.url, "site/team/app", sbom["digest"], ext.auth) == \
        manifest_bytes(src.url, "team/app", sbom["digest"])

    # the same rules as mirror: loading again changes nothing
    assert run(["images", "load", "--from", str(bundle), *registry, "--json"]) == 0
    out, _ = _out(capsys)
    again = json.loads(out)
    assert (again["copied"], again["skipped"], again["bytes_uploaded"]) == (0, 3, 0)


def test_a_stopped_directory_save_fetches_only_what_is_missing(site, tmp_path, capsys):
    _src, _ext, images, _registry, _digests = site
    bundle = tmp_path / "kit"
    assert run(["images", "save", "--images", str(images), "--to", str(bundle)]) == 0
    blobs = sorted((bundle / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    (bundle / "index.json").unlink()  # as a save stopped before its end leaves it
    blobs[-1].unlink()
    _out(capsys)
    assert run(["images", "save", "--images", str(images), "--to", str(bundle), "--json"]) == 0
    out, _ = _out(capsys)
    assert json.loads(out)["blobs_saved"] == 1 and (bundle / "index.json").is_file() and blobs[-1].is_file()


def test_a_damaged_bundle_is_refused_blob_by_blob(site, tmp_path, capsys):
    _src, ext, images, registry, _digests = site
    bundle = tmp_path / "kit"
    assert run(["images", "save", "--images", str(images), "--to", str(bundle)]) == 0
    biggest = max((bundle / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[100] ^= 0xFF
    biggest.write_bytes(bytes(data))
    _out(capsys)
    assert run(["images", "load", "--from", str(bundle), *registry]) == 9
    _, err = _out(capsys)
    assert f"blob sha256:{biggest.name} from {bundle}" in err and "do not match the digest" in err
    assert requests.head(f"{ext.url}/v2/site/team/app/blobs/sha256:{biggest.name}", auth=ext.auth,
                         timeout=5).status_code == 404


def test_a_bundle_keeps_each_original_reference_in_its_annotations(site, tmp_path, capsys):
    src, _ext, images, _registry, digests = site
    bundle = tmp_path / "kit"
    assert run(["images", "save", "--images", str(images), "--to", str(bundle)]) == 0
    index = json.loads((bundle / "index.json").read_text())
    by_name = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in index["manifests"]}
    for ref, digest in digests.items():
        assert by_name[f"{src.host}/{ref}"] == digest
    assert json.loads((bundle / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_a_differential_bundle_is_smaller_and_loads_on_top_of_the_earlier_one(site, tmp_path, capsys):
    src, ext, images, registry, _digests = site
    first = tmp_path / "first.tar"
    assert run(["images", "save", "--images", str(images), "--to", str(first)]) == 0
    assert run(["images", "load", "--from", str(first), *registry]) == 0
    # upstream moves on: a new tag of app on the same base, and a new image on it too
    base = random_layer(300 * KIB, 1)
    push_layers_image(src.url, "team/app", "1.1", [base, random_layer(40 * KIB, 4)])
    push_layers_image(src.url, "team/new", "1", [base, random_layer(40 * KIB, 5)])
    images.write_text(images.read_text() + f"{src.host}/team/app:1.1\n{src.host}/team/new:1\n")
    second = tmp_path / "second.tar"
    full = tmp_path / "full.tar"
    assert run(["images", "save", "--images", str(images), "--to", str(second), "--since", str(first)]) == 0
    assert run(["images", "save", "--images", str(images), "--to", str(full)]) == 0
    _out(capsys)
    assert second.stat().st_size < full.stat().st_size - 300 * KIB  # no base layer, no earlier layers
    with tarfile.open(second) as tar:
        assert "blobs/sha256/" + hashlib.sha256(base).hexdigest() not in tar.getnames()

    assert run(["images", "load", "--from", str(second), *registry, "--json"]) == 0
    out, err = _out(capsys)
    loaded = json.loads(out)
    assert (loaded["copied"], loaded["skipped"], loaded["failed"]) == (2, 3, 0), err
    for repo, tag in (("team/app", "1.1"), ("team/new", "1")):
        assert manifest_bytes(ext.url, f"site/{repo}", tag, ext.auth) == manifest_bytes(src.url, repo, tag)


def test_a_differential_bundle_alone_says_what_is_missing(site, tmp_path, capsys, registry_factory):
    src, _ext, images, _registry, _digests = site
    first = tmp_path / "first"
    assert run(["images", "save", "--images", str(images), "--to", str(first)]) == 0
    push_layers_image(src.url, "team/app", "1.1", [random_layer(300 * KIB, 1), random_layer(40 * KIB, 6)])
    images.write_text(f"{src.host}/team/app:1.1\n")
    second = tmp_path / "second"
    assert run(["images", "save", "--images", str(images), "--to", str(second), "--since", str(first)]) == 0
    empty = registry_factory(auth=True)
    assert run(["images", "load", "--from", str(second), "--registry", f"{empty.host}/site", "--registry-username",
                "builder", "--registry-mapping", f"{src.host}={empty.host}/site"]) == 9
    _, err = _out(capsys)
    assert f"is not in {second}" in err and "load the earlier bundle first" in err


def test_since_edgeforge_lock(site, tmp_path, capsys, monkeypatch):
    src, _ext, images, _registry, _digests = site
    monkeypatch.chdir(tmp_path)
    assert run(["images", "save", "--images", str(images), "--to", str(tmp_path / "a"), "--update-lock"]) == 0
    lock = json.loads((tmp_path / "edgeforge.lock").read_text())
    assert set(lock["images"]) == {f"{src.host}/team/multi:2.0", f"{src.host}/team/app:1.0",
                                   f"{src.host}/team/tool:3"}
    assert run(["images", "save", "--images", str(images), "--to", str(tmp_path / "b"), "--since",
                str(tmp_path / "edgeforge.lock"), "--json"]) == 0
    out, _ = _out(capsys)
    assert json.loads(out)["blobs_saved"] == 0  # nothing new since the lock


# --- verify --deep -------------------------------------------------------------------------------


def test_verify_deep_names_each_fault_an_edge_host_would_hit(site, tmp_path, capsys):
    """Four images at the site, each broken one way by a proxy in front of the site's registry (which is
    what the Edge host pulls from): a missing blob, a truncated blob, a zero-byte blob, a missing platform
    manifest. A fifth stays whole."""
    src, ext, _images, registry, digests = site
    layers = {}
    for name in ("gone", "short", "empty", "whole"):
        _d, blobs = push_layers_image(src.url, f"deep/{name}", "1", [random_layer(64 * KIB, len(layers) + 10)])
        layers[name] = max(blobs, key=blobs.get)
    images = tmp_path / "deep.txt"
    images.write_text("".join(f"{src.host}/deep/{n}:1\n" for n in layers) + f"{src.host}/team/multi:2.0\n")
    assert run(["images", "mirror", "--images", str(images), *registry]) == 0
    child = json.loads(manifest_bytes(src.url, "team/multi", "2.0"))["manifests"][1]["digest"]
    _out(capsys)

    def fault(method, path):
        if method != "GET":
            return None
        if path.endswith(f"/deep/gone/blobs/{layers['gone']}"):
            return 404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}'
        if path.endswith(f"/deep/short/blobs/{layers['short']}"):
            return 200, {"Docker-Content-Digest": layers["short"]}, b"\x1f\x8b" + b"\0" * 1000
        if path.endswith(f"/deep/empty/blobs/{layers['empty']}"):
            return 200, {"Docker-Content-Digest": layers["empty"]}, b""
        if path.endswith(f"/team/multi/manifests/{child}"):
            return 404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'
        return None

    with registry_proxy(ext.url, answer=fault) as (proxy, _state):
        opts = ["--images", str(images), "--registry", f"{proxy}/site", "--registry-username", "builder",
                "--registry-mapping", f"{src.host}={proxy}/site"]
        assert run(["images", "verify", *opts]) == 0  # the manifests are all there: a shallow check passes
        _out(capsys)
        assert run(["images", "verify", "--deep", *opts, "--json"]) == 9
        out, err = _out(capsys)
    report = {i["target"].split("/site/", 1)[1]: i for i in json.loads(out)["images"]}
    assert report["deep/whole:1"]["ok"] is True
    assert report["deep/gone:1"]["problems"] == [f"blob {layers['gone']} is missing (layer 1)"]
    assert report["deep/short:1"]["problems"] == [f"blob {layers['short']} is truncated: 1002 of "
                                                  f"{_size(src, 'deep/short', layers['short'])} bytes (layer 1)"]
    assert report["deep/empty:1"]["problems"][0].startswith(f"blob {layers['empty']} is empty: a zero-byte blob")
    assert report["team/multi:2.0"]["problems"] == [f"platform manifest {child} for linux/arm64 is missing"]
    assert "4 of 5 images cannot be pulled whole" in err
    del digests


def _size(reg, repo, digest):
    return int(requests.head(f"{reg.url}/v2/{repo}/blobs/{digest}", timeout=5).headers["Content-Length"])


def test_verify_deep_of_a_whole_index(site, capsys):
    src, ext, images, registry, _digests = site
    assert run(["images", "mirror", "--images", str(images), *registry]) == 0
    assert run(["images", "verify", "--deep", "--images", str(images), *registry, "--json"]) == 0
    out, _ = _out(capsys)
    report = json.loads(out)
    assert report["broken"] == 0
    multi = next(i for i in report["images"] if i["target"].endswith("team/multi:2.0"))
    assert multi["platforms"] == 2 and multi["blobs"] == 4
    del src, ext
