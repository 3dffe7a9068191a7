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


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def random_layer(size: int, seed: int) -> bytes:
    """A gzip stream (stored blocks) of `size` pseudo-random bytes: a layer that does not compress, quickly."""
    import random
    import zlib

    packer = zlib.compressobj(0, zlib.DEFLATED, 31)
    data = random.Random(seed).randbytes(size)
    return packer.compress(data) + packer.flush()


def push_layers_image(base: str, repo: str, tag: str, layers: list[bytes], *, auth: tuple[str, str] | None = None,
                      note: str = "") -> tuple[str, dict[str, int]]:
    """An OCI image of the given layers under `tag`: (manifest digest, {blob digest: size} incl. the config)."""
    descriptors = [{"mediaType": OCI_LAYER, "size": len(layer), "digest": _upload(base, repo, layer, auth)}
                   for layer in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "history": [{"comment": note or repo}],
                         "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                                      "digest": _upload(base, repo, config, auth)},
                           "layers": descriptors}).encode()
    put_manifest(base, repo, tag, manifest, OCI_MANIFEST, auth)
    blobs = {d["digest"]: d["size"] for d in descriptors}
    blobs[_digest(config)] = len(config)
    return _digest(manifest), blobs


def put_manifest(base: str, repo: str, reference: str, body: bytes, media: str,
                 auth: tuple[str, str] | None = None) -> str:
    r = requests.put(f"{base}/v2/{repo}/manifests/{reference}", data=body, headers={"Content-Type": media},
                     auth=auth, timeout=10)
    assert r.status_code == 201, r.text
    return _digest(body)


def push_cosign_signature(base: str, repo: str, subject: str, *, auth: tuple[str, str] | None = None,
                          suffix: str = "sig") -> str:
    """What `cosign sign` leaves: an image under the tag sha256-HEX.sig whose layer is the signed payload."""
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": subject}, "type": "cosign container "
                                       "image signature"}, "optional": None}).encode()
    config = b"{}"
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                   "digest": _upload(base, repo, config, auth)},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "size": len(payload),
                    "digest": _upload(base, repo, payload, auth),
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQDfake"}}],
    }).encode()
    return put_manifest(base, repo, f"sha256-{subject.split(':', 1)[1]}.{suffix}", manifest, OCI_MANIFEST, auth)


def push_referrer(base: str, repo: str, subject: str, subject_size: int, *, auth: tuple[str, str] | None = None,
                  artifact: str = "application/spdx+json") -> str:
    """An OCI artifact (an SBOM) whose `subject` is the image, and the referrers tag schema's index listing it
    (what a client does on a registry without the referrers API, like docker-registry 2.8)."""
    sbom = b'{"spdxVersion": "SPDX-2.3"}'
    empty = b"{}"
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                   "digest": _upload(base, repo, empty, auth)},
        "layers": [{"mediaType": artifact, "size": len(sbom), "digest": _upload(base, repo, sbom, auth)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
    }).encode()
    digest = put_manifest(base, repo, _digest(manifest), manifest, OCI_MANIFEST, auth)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest), "artifactType": artifact}]}).encode()
    put_manifest(base, repo, f"sha256-{subject.split(':', 1)[1]}", index, OCI_INDEX, auth)
    return digest


def manifest_bytes(base: str, repo: str, reference: str, auth: tuple[str, str] | None = None) -> bytes | None:
    r = requests.get(f"{base}/v2/{repo}/manifests/{reference}", auth=auth, timeout=10,
                     headers={"Accept": ", ".join((OCI_MANIFEST, OCI_INDEX, MANIFEST,
                                                   "application/vnd.docker.distribution.manifest.list.v2+json"))})
    return r.content if r.status_code == 200 else None
