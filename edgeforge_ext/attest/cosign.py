"""cosign's layout in a registry, for keyed signatures (github.com/sigstore/cosign, specs/SIGNATURE_SPEC.md):

- the signature of image `repo@sha256:<hex>` is an OCI image manifest tagged `sha256-<hex>.sig` in the
  same repository; each layer is a "simple signing" payload naming the image's manifest digest
  (`application/vnd.dev.cosign.simplesigning.v1+json`), its signature in the layer's annotation
  `dev.cosignproject.cosign/signature` (base64 ASN.1 ECDSA over the payload bytes);
- attestations are tagged `sha256-<hex>.att`; each layer is a DSSE envelope of an in-toto statement
  (`application/vnd.dsse.envelope.v1+json`, annotation `predicateType`).

This is the tag scheme every cosign release reads by default, so it is used on every registry (the OCI
referrers API is not used: Debian's docker-registry 2.8 has none, and cosign reads tags either way).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edgeforge_ext.errors import RegistryError
from edgeforge_ext.registry.client import RegistryClient

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_ANNOTATION = "predicateType"
SIGNATURE_TYPE = "cosign container image signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_EPOCH = "0001-01-01T00:00:00Z"  # go-containerregistry's empty image, which cosign starts from


def tag_for(digest: str, suffix: str) -> str:
    """`sha256:<hex>` -> `sha256-<hex>.<suffix>` (a tag cannot hold a colon)."""
    return digest.replace(":", "-") + "." + suffix


def simple_signing(repository: str, digest: str) -> bytes:
    """The payload cosign signs: the repository (no tag) and the manifest digest."""
    payload = {"critical": {"identity": {"docker-reference": repository},
                            "image": {"docker-manifest-digest": digest}, "type": SIGNATURE_TYPE},
               "optional": None}
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Layer:
    media_type: str
    data: bytes
    annotations: dict[str, str]

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "size": len(self.data), "digest": self.digest,
                "annotations": dict(self.annotations)}


def signature_layer(payload: bytes, signature: bytes) -> Layer:
    return Layer(SIMPLE_SIGNING, payload, {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()})


def attestation_layer(envelope: bytes, predicate_type: str) -> Layer:
    from edgeforge_ext.attest.dsse import MEDIA_TYPE

    # An empty signature annotation: the signature is inside the envelope (what cosign attest writes).
    return Layer(MEDIA_TYPE, envelope, {SIGNATURE_ANNOTATION: "", PREDICATE_ANNOTATION: predicate_type})


def _config(layers: Sequence[dict[str, Any]]) -> bytes:
    config = {"architecture": "", "created": _EPOCH, "history": [{"created": _EPOCH} for _ in layers],
              "os": "", "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layers]}, "config": {}}
    return json.dumps(config, separators=(",", ":")).encode()


def _put_blob(client: RegistryClient, path: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if not client.has_blob(path, digest):
        client.upload_blob(path, digest, data, len(data))
    return digest


def attach(client: RegistryClient, path: str, tag: str, layers: Sequence[Layer]) -> None:
    """Add `layers` to the manifest at `tag` (created when missing). Layers already there stay: others'
    signatures of the same image are kept, and re-attaching the same evidence adds nothing."""
    existing: list[dict[str, Any]] = []
    got = client.get_manifest(path, tag)
    if got is not None:
        try:
            existing = [d for d in json.loads(got[0]).get("layers", []) if isinstance(d, dict) and "digest" in d]
        except ValueError:
            existing = []
    descriptors = list(existing)
    known = {d["digest"] for d in existing}
    for layer in layers:
        _put_blob(client, path, layer.data)
        if layer.digest not in known:
            descriptors.append(layer.descriptor())
            known.add(layer.digest)
    config = _config(descriptors)
    config_digest = _put_blob(client, path, config)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": config_digest},
                "layers": descriptors}
    client.put_manifest(path, tag, json.dumps(manifest, separators=(",", ":")).encode(), OCI_MANIFEST)


def read_layers(client: RegistryClient, path: str, tag: str, *, limit: int = 4 << 20) -> list[Layer] | None:
    """The layers at `tag` with their bytes (each checked against its digest), or None without the tag."""
    got = client.get_manifest(path, tag)
    if got is None:
        return None
    try:
        descriptors = json.loads(got[0]).get("layers") or []
    except ValueError:
        return []
    layers = []
    for d in descriptors:
        if not isinstance(d, dict) or int(d.get("size") or 0) > limit:
            continue  # not evidence of ours: a layer this size is no signature or statement
        digest = str(d["digest"])
        with client.get_blob(path, digest) as blob:
            data = blob.content
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError(f"{client.host}/{path}: blob {digest} does not match its digest")
        layers.append(Layer(str(d.get("mediaType", "")), data, dict(d.get("annotations") or {})))
    return layers
