"""Put a tiny image into a registry through the v2 API (no daemon): one gzip layer, a config, a manifest.

Written with plain `requests` so the tests do not check our client with itself.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from urllib.parse import urljoin

import requests

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tiny_layer(content: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def _upload(base: str, repo: str, data: bytes, auth: tuple[str, str] | None) -> str:
    digest = _digest(data)
    if requests.head(f"{base}/v2/{repo}/blobs/{digest}", auth=auth, timeout=10).status_code == 200:
        return digest
    r = requests.post(f"{base}/v2/{repo}/blobs/uploads/", auth=auth, timeout=10)
    assert r.status_code == 202, r.text
    r = requests.put(urljoin(base + "/", r.headers["Location"]), params={"digest": digest}, data=data,
                     headers={"Content-Type": "application/octet-stream"}, auth=auth, timeout=10)
    assert r.status_code == 201, r.text
    return digest


def push_tiny_image(base: str, repo: str, tags: list[str] | str, *, content: bytes = b"hello\n",
                    auth: tuple[str, str] | None = None) -> str:
    """Push one small image under each tag; returns the manifest digest."""
    layer = tiny_layer(content)
    diff_id = _digest(gzip.decompress(layer))
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                   "digest": _upload(base, repo, config, auth)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer),
                    "digest": _upload(base, repo, layer, auth)}],
    }, indent=3).encode()
    for tag in [tags] if isinstance(tags, str) else tags:
        r = requests.put(f"{base}/v2/{repo}/manifests/{tag}", data=manifest, headers={"Content-Type": MANIFEST},
                         auth=auth, timeout=10)
        assert r.status_code == 201, r.text
    return _digest(manifest)


def push_tiny_index(base: str, repo: str, tag: str, auth: tuple[str, str] | None = None) -> str:
    """An OCI-style multi-platform index of two tiny images (amd64, arm64)."""
    children = []
    for arch, content in (("amd64", b"amd64\n"), ("arm64", b"arm64\n")):
        digest = push_tiny_image(base, repo, f"tmp-{arch}", content=content, auth=auth)
        size = len(requests.get(f"{base}/v2/{repo}/manifests/{digest}", headers={"Accept": MANIFEST}, auth=auth,
                                timeout=10).content)
        children.append({"mediaType": MANIFEST, "digest": digest, "size": size,
                         "platform": {"architecture": arch, "os": "linux"}})
    media = "application/vnd.docker.distribution.manifest.list.v2+json"
    index = json.dumps({"schemaVersion": 2, "mediaType": media, "manifests": children}).encode()
    r = requests.put(f"{base}/v2/{repo}/manifests/{tag}", data=index, headers={"Content-Type": media}, auth=auth,
                     timeout=10)
    assert r.status_code == 201, r.text
    return _digest(index)
