"""An image as a graph of objects in a registry: its manifests (an index and every platform), its blobs, and
what is stored beside it — cosign signatures, attestations and SBOMs (`sha256-HEX.sig|.att|.sbom` tags) and
OCI referrers (the referrers API, or the `sha256-HEX` tag schema of registries without it).

Fetched once from a source registry (or read from a bundle), then mirrored, saved, loaded or checked object
by object. Each fetch by digest is checked against the digest: a registry (or a proxy) serving other bytes
is an error here, not a silently different copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from edgeforge_ext.errors import RegistryError
from edgeforge_ext.registry.client import RegistryClient
from edgeforge_ext.registry.manifests import (
    OCI_INDEX,
    Descriptor,
    Manifest,
    cosign_tags,
    parse_manifest,
    referrers_index,
    referrers_tag,
)


@dataclass(frozen=True)
class Accessory:
    """Something stored beside an image manifest (`subject`), kept under `tag` in the same repository.

    kind "sig", "att", "sbom": cosign's tags, copied as they are. kind "referrers": the OCI referrers of
    `subject`; the graph's root is an index listing them (the tag schema's `sha256-HEX`), its children are
    the referrers themselves."""

    kind: str
    tag: str
    subject: str
    graph: ImageGraph


@dataclass
class ImageGraph:
    root: Manifest
    manifests: dict[str, Manifest] = field(default_factory=dict)  # children first, the root last
    accessories: list[Accessory] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return self.root.digest

    def blobs(self) -> dict[str, Descriptor]:
        """Every blob of the image's manifests (not of its accessories), by digest."""
        return {b.digest: b for m in self.manifests.values() for b in m.blobs}

    def every_graph(self) -> Iterator[ImageGraph]:
        """The image and each accessory's graph."""
        yield self
        for accessory in self.accessories:
            yield accessory.graph

    def all_blobs(self) -> dict[str, Descriptor]:
        out: dict[str, Descriptor] = {}
        for graph in self.every_graph():
            out.update(graph.blobs())
        return out

    def all_manifests(self) -> dict[str, Manifest]:
        out: dict[str, Manifest] = {}
        for graph in self.every_graph():
            out.update(graph.manifests)
        return out


def fetch_manifest(client: RegistryClient, path: str, reference: str) -> Manifest | None:
    """A manifest by tag or digest (None: not there); by digest, the bytes must have that digest."""
    got = client.get_manifest(path, reference)
    if got is None:
        return None
    body, media, digest = got
    where = f"{client.host}/{path}@{digest}" if reference.startswith("sha256:") else f"{client.host}/{path}:{reference}"
    if reference.startswith("sha256:") and reference != digest:
        raise RegistryError(f"{client.host}/{path}@{reference}: the registry served a manifest whose digest is "
                            f"{digest}")
    return parse_manifest(body, media, digest, where)


def fetch_graph(client: RegistryClient, path: str, reference: str, *, tags: set[str] | None = None,
                accessories: bool = True) -> ImageGraph | None:
    """The image `reference` names in `path` with every platform (None when the reference is not there).

    `tags` is the repository's tag list when the caller has it (one listing serves every image of a
    repository); without it, each cosign tag is asked for by HEAD."""
    root = fetch_manifest(client, path, reference)
    if root is None:
        return None
    graph = expand(client, path, root)
    if accessories:
        for digest in [root.digest, *(c.digest for c in root.children)]:
            graph.accessories.extend(find_accessories(client, path, digest, tags))
    return graph


def expand(client: RegistryClient, path: str, root: Manifest) -> ImageGraph:
    """`root` with every platform manifest it lists, fetched from `path`."""
    graph = ImageGraph(root)
    for child in root.children:
        manifest = fetch_manifest(client, path, child.digest)
        if manifest is None:
            raise RegistryError(f"{client.host}/{path}: platform manifest {child.digest} "
                                f"({child.platform or 'no platform'}) of {root.digest} is missing")
        if manifest.children:
            raise RegistryError(f"{client.host}/{path}@{root.digest}: an index inside an index is not supported")
        graph.manifests[manifest.digest] = manifest
    graph.manifests[root.digest] = root
    return graph


def _has_tag(client: RegistryClient, path: str, tag: str, tags: set[str] | None) -> bool:
    if tags is not None:
        return tag in tags
    return client.head_manifest(path, tag) is not None


def find_accessories(client: RegistryClient, path: str, digest: str, tags: set[str] | None) -> list[Accessory]:
    """cosign's tags and the OCI referrers of manifest `digest` in `path`."""
    found: list[Accessory] = []
    for tag in cosign_tags(digest):
        if not _has_tag(client, path, tag, tags):
            continue
        manifest = fetch_manifest(client, path, tag)
        if manifest is not None:
            found.append(Accessory(tag.rsplit(".", 1)[1], tag, digest, expand(client, path, manifest)))
    referrers = _referrers(client, path, digest, tags)
    if referrers is not None:
        found.append(referrers)
    return found


def _referrers(client: RegistryClient, path: str, digest: str, tags: set[str] | None) -> Accessory | None:
    tag = referrers_tag(digest)
    listed = None if client.referrers_api is False else client.referrers(path, digest)
    if listed is None:
        client.referrers_api = False  # asked once per registry: docker-registry 2.8 has no such API
        if not _has_tag(client, path, tag, tags):
            return None
        index = fetch_manifest(client, path, tag)
        if index is None or not index.children:
            return None
    else:
        client.referrers_api = True
        if not listed:
            return None
        descriptors = [Descriptor.from_json(d, f"{client.host}/{path} referrers of {digest}") for d in listed]
        body = referrers_index(descriptors)
        index = parse_manifest(body, OCI_INDEX, _sha256(body), f"{client.host}/{path} referrers of {digest}")
    return Accessory("referrers", tag, digest, expand(client, path, index))


def _sha256(body: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(body).hexdigest()
