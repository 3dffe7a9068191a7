"""`images mirror` as a user sees it on real registries: each blob crosses the wire once, a killed mirror
resumes, -j bounds the streams, bad bytes from a source never land, schema 1 is refused, signatures and
referrers come along, and no blob is held in memory on its way."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from edgeforge_ext.registry.blobsend import TransferStats
from edgeforge_ext.registry.client import Clients, Credentials
from edgeforge_ext.registry.images import RewriteRules, parse_ref
from edgeforge_ext.registry.transfer import mirror_images
from edgeforge_ext.secrets import Secret
from tests.engine.registry_proxy import registry_proxy
from tests.engine.registry_push import (
    manifest_bytes,
    push_cosign_signature,
    push_layers_image,
    push_referrer,
    random_layer,
)

pytestmark = pytest.mark.engine

KIB = 1024


def _clients(dst):
    """The destination's credentials for every host (the anonymous sources never ask for them)."""
    creds = Credentials(dst.username, Secret(dst.password))
    return Clients(lambda host: creds)


def _rewrites(src_host, dst_host, refs):
    rules = RewriteRules.make(mapping={src_host: f"{dst_host}/m"})
    return [rules.rewrite(parse_ref(f"{src_host}/{ref}")) for ref in refs]


def _family(src, count=4, base_layers=2):
    """`count` images on shared base layers, each with a layer of its own: their refs, digests, unique blobs."""
    base = [random_layer(200 * KIB, seed) for seed in range(base_layers)]
    refs, digests, blobs = [], {}, {}
    for i in range(count):
        digest, image_blobs = push_layers_image(src.url, f"fam/app{i}", "1", [*base, random_layer(50 * KIB, 100 + i)])
        refs.append(f"fam/app{i}:1")
        digests[f"fam/app{i}"] = digest
        blobs.update(image_blobs)
    return refs, digests, blobs


def test_each_blob_crosses_the_wire_once_and_the_rest_is_mounted(registry_factory):
    src = registry_factory(auth=False)
    dst = registry_factory(auth=True)
    refs, digests, blobs = _family(src)
    stats = TransferStats()
    with registry_proxy(dst.url) as (proxy, state), _clients(dst) as clients:
        results = mirror_images(_rewrites(src.host, proxy, refs), clients, stats=stats)
    assert [r.status for r in results] == ["copied"] * 4, results
    assert stats.bytes_uploaded == sum(blobs.values())
    assert stats.blobs_uploaded == len(blobs)  # 2 base layers, 4 own layers, 4 configs
    assert stats.blobs_mounted == 2 * 3  # the base layers into the three other repositories
    uploads = [p for m, p in state.seen if m == "PUT" and "/blobs/uploads/" in p]
    assert len(uploads) == len(blobs)
    # The first GET /v2/ (which scheme answers) learns that the registry wants Basic credentials, so the login
    # check sends them at once: no second, refused round trip (each costs the registry a bcrypt check).
    assert state.seen.count(("GET", "/v2/")) == 2
    for repo, digest in digests.items():  # byte for byte: the same manifest digest at the destination
        copied = manifest_bytes(dst.url, f"m/{repo}", "1", dst.auth)
        assert copied is not None and "sha256:" + hashlib.sha256(copied).hexdigest() == digest


def test_j_bounds_the_streams_of_all_images_together(registry_factory):
    src = registry_factory(auth=False)
    dst = registry_factory(auth=True)
    refs, _digests, blobs = _family(src, count=3, base_layers=1)
    with registry_proxy(dst.url, write_delay=0.05) as (proxy, state), _clients(dst) as clients:
        results = mirror_images(_rewrites(src.host, proxy, refs), clients, workers=2)
    assert [r.status for r in results] == ["copied"] * 3
    assert state.max_blob_puts_at_once == 2
    assert len(blobs) > 2


def test_a_killed_mirror_resends_only_what_was_in_flight(registry_factory, tmp_path):
    """kill -9 while one layer's upload is held at the destination; the rerun sends that layer and nothing
    else (the others are found where the killed run put them)."""
    src = registry_factory(auth=False)
    dst = registry_factory(auth=True)
    refs, _digests, blobs = _family(src, count=3, base_layers=1)
    held = max(blobs, key=lambda d: (blobs[d], d))  # the shared base layer: mounted into every repository
    release = threading.Event()

    def hold(method, path):
        if method == "PUT" and held.split(":")[1] in path and not release.is_set():
            release.wait(30)
            return 503, {}, b"held"
        return None

    images = tmp_path / "images.txt"
    images.write_text("".join(f"{src.host}/{r}\n" for r in refs))
    with registry_proxy(dst.url, answer=hold) as (proxy, state):
        env = {**os.environ, "EDGEFORGE_REGISTRY_PASSWORD": dst.password, "HOME": str(tmp_path)}
        cli = [sys.executable, "-m", "edgeforge_ext", "images", "mirror", "--images", str(images), "--registry",
               f"{proxy}/m", "--registry-username", dst.username, "--registry-mapping", f"{src.host}={proxy}/m"]
        proc = subprocess.Popen(cli, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        others = len(blobs) - 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with state.lock:
                committed = sum(1 for m, p in state.seen if m == "PUT" and "/blobs/uploads/" in p
                                and held.split(":")[1] not in p)
                holding = any(m == "PUT" and held.split(":")[1] in p for m, p in state.seen)
            if committed == others and holding:
                break
            time.sleep(0.05)
        assert committed == others and holding, "the mirror did not reach the held upload"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        release.set()

        stats = TransferStats()
        with _clients(dst) as clients:
            results = mirror_images(_rewrites(src.host, proxy, refs), clients, stats=stats)
    assert [r.status for r in results] == ["copied"] * 3
    assert stats.blobs_uploaded == 1 and stats.bytes_uploaded == blobs[held]


def test_bad_bytes_from_the_source_never_land(registry_factory):
    """A source (a proxy in front of a real registry) that serves one blob with other bytes, and another
    cut short: both images fail with what happened; neither blob is committed at the destination."""
    src = registry_factory(auth=False)
    dst = registry_factory(auth=True)
    bad_digest, bad_blobs = push_layers_image(src.url, "bad/flipped", "1", [random_layer(64 * KIB, 1)])
    short_digest, short_blobs = push_layers_image(src.url, "bad/short", "1", [random_layer(64 * KIB, 2)])
    flipped = max(bad_blobs, key=bad_blobs.get)
    cut = max(short_blobs, key=short_blobs.get)

    def corrupt(method, path):
        if method == "GET" and path.endswith(flipped):
            return 200, {"Content-Type": "application/octet-stream"}, b"\0" * bad_blobs[flipped]
        if method == "GET" and path.endswith(cut):
            return 200, {"Content-Length": str(short_blobs[cut])}, b"\0" * 1000
        return None

    with registry_proxy(src.url, answer=corrupt) as (source, _state), _clients(dst) as clients:
        results = mirror_images(_rewrites(source, dst.host, ["bad/flipped:1", "bad/short:1"]), clients)
    assert [r.status for r in results] == ["failed", "failed"]
    assert f"blob {flipped}" in results[0].detail and "do not match the digest" in results[0].detail
    assert f"blob {cut}" in results[1].detail and "truncated" in results[1].detail
    for repo, digest in (("m/bad/flipped", flipped), ("m/bad/short", cut)):
        assert requests.head(f"{dst.url}/v2/{repo}/blobs/{digest}", auth=dst.auth, timeout=5).status_code == 404
    del bad_digest, short_digest


def test_a_schema1_image_is_refused(registry_factory):
    src = registry_factory(auth=False)
    dst = registry_factory(auth=True)
    schema1 = json.dumps({"schemaVersion": 1, "name": "old/app", "tag": "1", "architecture": "amd64",
                          "fsLayers": [], "history": []}).encode()

    def old(method, path):
        if path.startswith("/v2/old/app/manifests/"):
            return 200, {"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"}, schema1
        return None

    with registry_proxy(src.url, answer=old) as (source, _state), _clients(dst) as clients:
        [result] = mirror_images(_rewrites(source, dst.host, ["old/app:1"]), clients)
    assert result.status == "failed" and "schema 1" in result.detail


def test_signatures_and_referrers_come_along(registry_factory):
    src = registry_factory(auth=False)
    dst = registry_factory(auth=True)
    digest, _blobs = push_layers_image(src.url, "signed/app", "1", [random_layer(10 * KIB, 7)])
    size = len(manifest_bytes(src.url, "signed/app", "1"))
    sig = push_cosign_signature(src.url, "signed/app", digest)
    sbom = push_referrer(src.url, "signed/app", digest, size)
    hexpart = digest.split(":")[1]
    with _clients(dst) as clients:
        [first] = mirror_images(_rewrites(src.host, dst.host, ["signed/app:1"]), clients)
        assert first.status == "copied" and "signature" in first.detail and "referrers" in first.detail
        got = manifest_bytes(dst.url, "m/signed/app", f"sha256-{hexpart}.sig", dst.auth)
        assert got == manifest_bytes(src.url, "signed/app", f"sha256-{hexpart}.sig")
        assert manifest_bytes(dst.url, "m/signed/app", sbom, dst.auth) is not None
        index = json.loads(manifest_bytes(dst.url, "m/signed/app", f"sha256-{hexpart}", dst.auth))
        assert [m["digest"] for m in index["manifests"]] == [sbom]
        assert sig

        [again] = mirror_images(_rewrites(src.host, dst.host, ["signed/app:1"]), clients)
        assert again.status == "skipped"
        push_cosign_signature(src.url, "signed/app", digest, suffix="att")
        [third] = mirror_images(_rewrites(src.host, dst.host, ["signed/app:1"]), clients)
        assert third.status == "copied" and "attestation" in third.detail
        assert manifest_bytes(dst.url, "m/signed/app", f"sha256-{hexpart}.att", dst.auth) is not None


def test_a_blob_streams_through_without_being_held_in_memory(registry_factory):
    """A 24 MiB layer goes through with at most a few MiB allocated at once (tracemalloc's peak): the
    copy streams, it does not download first."""
    import tracemalloc

    src = registry_factory(auth=False)
    dst = registry_factory(auth=True)
    push_layers_image(src.url, "big/app", "1", [random_layer(24 * 1024 * KIB, 3)])
    with _clients(dst) as clients:
        tracemalloc.start()
        try:
            [result] = mirror_images(_rewrites(src.host, dst.host, ["big/app:1"]), clients)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.status == "copied"
    assert peak < 6 * 1024 * KIB, f"peak {peak / (1024 * KIB):.1f} MiB"
