"""What a manifest refers to: child manifests (an index's platforms) and blobs (config, layers), and the
things stored beside an image (cosign `.sig`/`.att`/`.sbom` tags, OCI referrers). Pure: bytes in, names out.

Mirror, save, load and `verify --deep` all walk images the same way through here, so an image is the
same set of objects for each of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edgeforge_ext.errors import RegistryError

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
IMAGE_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
SCHEMA1_TYPES = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
OCI_INDEX, OCI_MANIFEST = INDEX_TYPES[0], IMAGE_TYPES[0]
FOREIGN = "foreign"  # Windows base layers (…foreign.diff.tar.gzip): not distributable, never copied
# cosign keeps a signature, an attestation and an SBOM of image sha256:HEX under these tags of its repository.
COSIGN_SUFFIXES = (".sig", ".att", ".sbom")


class Schema1Refused(RegistryError):
    """A Docker schema 1 manifest: deprecated, signed over its own JSON, and never copied by this tool."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: str = ""  # "linux/arm64" for an index's children
    annotations: tuple[tuple[str, str], ...] = ()
    artifact_type: str = ""

    @classmethod
    def from_json(cls, data: Any, where: str) -> Descriptor:
        if not isinstance(data, dict) or not isinstance(data.get("digest"), str):
            raise RegistryError(f"{where}: a descriptor without a digest")
        size = data.get("size")
        if not isinstance(size, int) or size < 0:
            raise RegistryError(f"{where}: descriptor {data['digest']} has no valid size")
        platform = data.get("platform") or {}
        name = "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))
        annotations = data.get("annotations") or {}
        return cls(str(data.get("mediaType", "")), data["digest"], size, name,
                   tuple(sorted((str(k), str(v)) for k, v in annotations.items())),
                   str(data.get("artifactType") or ""))

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class Manifest:
    """One manifest as the registry serves it: its exact bytes (never re-serialised: the digest is of these
    bytes) and what it refers to."""

    body: bytes
    media_type: str
    digest: str
    children: tuple[Descriptor, ...]  # manifests (an index's platforms)
    blobs: tuple[Descriptor, ...]  # config and layers, foreign layers left out
    subject: str | None  # the manifest this one refers to (an OCI referrer: signature, SBOM, ...)
    artifact_type: str = ""

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def size(self) -> int:
        return len(self.body)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.body), artifact_type=self.artifact_type)


def parse_manifest(body: bytes, media_type: str, digest: str, where: str) -> Manifest:
    """Read a manifest's references; schema 1 and unknown shapes are refused with `where` named."""
    try:
        data = json.loads(body)
    except ValueError:
        raise RegistryError(f"{where}: the manifest is not JSON") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{where}: the manifest is not a JSON object")
    media = str(data.get("mediaType") or media_type)
    if data.get("schemaVersion") == 1 or media in SCHEMA1_TYPES:
        raise Schema1Refused(f"{where}: a Docker schema 1 manifest, which edgeforge-ext does not copy",
                             hint="rebuild or re-push the image with a current client (schema 2 or OCI)")
    subject = data.get("subject")
    subject_digest = subject.get("digest") if isinstance(subject, dict) else None
    config = data.get("config")
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    artifact = str(data.get("artifactType") or config_type or "") if subject_digest else ""
    if "manifests" in data or media in INDEX_TYPES:
        children = tuple(Descriptor.from_json(m, where) for m in data.get("manifests") or [])
        return Manifest(body, media if media in INDEX_TYPES else OCI_INDEX, digest, children, (), subject_digest,
                        artifact)
    blobs: list[Descriptor] = []
    if "config" in data:
        blobs.append(Descriptor.from_json(data["config"], where))
    for layer in data.get("layers") or []:
        descriptor = Descriptor.from_json(layer, where)
        if FOREIGN not in descriptor.media_type:
            blobs.append(descriptor)
    if not blobs:
        raise RegistryError(f"{where}: a manifest ({media or 'no media type'}) that names no config and no layers")
    return Manifest(body, media, digest, (), tuple(blobs), subject_digest, artifact)


def cosign_tags(digest: str) -> tuple[str, ...]:
    """The tags cosign stores beside image `digest`: sha256-HEX.sig, .att, .sbom."""
    algorithm, _, hexpart = digest.partition(":")
    return tuple(f"{algorithm}-{hexpart}{suffix}" for suffix in COSIGN_SUFFIXES)


def referrers_tag(digest: str) -> str:
    """The tag of the referrers index for registries without the referrers API (OCI distribution spec 1.1,
    "referrers tag schema"): sha256-HEX."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}"


def referrers_index(descriptors: list[Descriptor]) -> bytes:
    """An OCI index listing referrers, as the tag schema keeps them."""
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                       "manifests": [d.as_json() for d in descriptors]}, separators=(",", ":")).encode()
