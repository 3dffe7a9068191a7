"""The pipeline every image copy into a registry runs, wherever the image comes from (another registry for
`images mirror`, a bundle for `images load`):
1. judge each image against its target: already there with the same digest (skipped; its signatures and
   referrers are added when missing), a different image under the target tag (left alone unless `force`),
   or to copy;
2. hand its blobs to the sender (blobsend.py) at once: one job per destination blob, streamed once,
   mounted into every other repository that wants it; the next images are judged meanwhile;
3. write its manifests once its blobs are in: platform manifests, then the index or image under the target
   tag, then what is stored beside it (cosign tags, OCI referrers).
Manifests of one digest in one repository are written by one worker at a time (docker-registry rewrites
the repository's link files in place; a concurrent reader sees one empty: "blob unknown to registry").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from edgeforge_ext.errors import RegistryError
from edgeforge_ext.registry.blobsend import BlobSender, BlobSource, TransferStats, wait_all
from edgeforge_ext.registry.client import Clients, RegistryClient
from edgeforge_ext.registry.graph import Accessory, ImageGraph, fetch_manifest
from edgeforge_ext.registry.images import ImageRef
from edgeforge_ext.registry.manifests import Manifest, referrers_index


@dataclass(frozen=True)
class CopyResult:
    source: str
    target: str
    status: str  # "copied", "skipped", "failed"
    digest: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Skipped(CopyResult):
    """Already at its target: its manifest names blobs the target repository holds (to mount from)."""

    manifest: Manifest | None = None
    at: ImageRef | None = None


@dataclass
class Copy:
    """One image to write, as judged in step 1."""

    source: str
    target: ImageRef
    graph: ImageGraph  # what to write: the image and its accessories, or only the accessories
    write_image: bool
    blobs_from: BlobSource
    detail: str = ""
    futures: list[Future[None]] = field(default_factory=list)


class ManifestWriter:
    """Writes manifests into destination repositories, one writer per (registry, repository, digest)."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, host: str, path: str, digest: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((host, path, digest), threading.Lock())

    def put(self, dst: RegistryClient, path: str, manifest: Manifest, reference: str | None = None) -> bool:
        """PUT `manifest` under `reference` (a tag), or by digest when that is not there yet.
        Returns whether the registry indexed its subject (OCI-Subject)."""
        with self.lock(dst.host, path, manifest.digest):
            if reference is None:
                if dst.head_manifest(path, manifest.digest) == manifest.digest:
                    return False
                reference = manifest.digest
            return dst.put_manifest(path, reference, manifest.body, manifest.media_type)

    def put_image(self, dst: RegistryClient, path: str, graph: ImageGraph, reference: str) -> None:
        """Platform manifests by digest, then the root under `reference`."""
        for digest, manifest in graph.manifests.items():
            if digest != graph.root.digest:
                self.put(dst, path, manifest)
        self.put(dst, path, graph.root, reference)

    def put_accessory(self, dst: RegistryClient, path: str, accessory: Accessory) -> None:
        graph = accessory.graph
        if accessory.kind != "referrers":
            self.put_image(dst, path, graph, accessory.tag)
            return
        # The referrers themselves by digest; the registry indexes them by their subject (spec 1.1) or,
        # without a referrers API, the `sha256-HEX` tag lists them (merged with what it lists already).
        indexed = [self.put(dst, path, m) for d, m in graph.manifests.items() if d != graph.root.digest]
        if indexed and all(indexed):
            return
        with self.lock(dst.host, path, accessory.tag):
            existing = fetch_manifest(dst, path, accessory.tag)
            listed = {c.digest: c for c in existing.children} if existing is not None else {}
            merged = dict(listed)
            merged.update({c.digest: c for c in graph.root.children})
            if existing is not None and set(merged) == set(listed):
                return
            body = referrers_index(list(merged.values()))
            dst.put_manifest(path, accessory.tag, body, graph.root.media_type)


def accessory_present(dst: RegistryClient, path: str, accessory: Accessory) -> bool:
    if accessory.kind != "referrers":
        return dst.head_manifest(path, accessory.tag) == accessory.graph.digest
    return all(dst.head_manifest(path, c.digest) == c.digest for c in accessory.graph.root.children)


def judge(source: str, target: ImageRef, dst: RegistryClient, root: Manifest, accessories: list[Accessory],
          expand: Callable[[Manifest], ImageGraph], blobs_from: BlobSource, force: bool) -> CopyResult | Copy:
    """Step 1 for one image whose manifest is `root`: a result when nothing is to be written (a Skipped one
    carries the manifest), else what to write."""
    digest = root.digest
    existing = dst.manifest_digest(target)  # by digest when pinned, else by tag
    if existing == digest or (target.digest and existing):
        missing = [a for a in accessories if not accessory_present(dst, target.path, a)]
        if not missing:
            return Skipped(source, str(target), "skipped", digest, "already present", manifest=root, at=target)
        graph = ImageGraph(root, {digest: root}, missing)
        return Copy(source, target, graph, False, blobs_from, detail=f"already present; added {_kinds(missing)}")
    detail = ""
    if existing is not None:
        if not force:
            return CopyResult(source, str(target), "failed", digest,
                              f"{target.name}:{target.tag} holds a different image ({existing}); "
                              "not overwritten (use --force)")
        detail = f"overwrote {existing}"
    graph = expand(root)
    graph.accessories.extend(accessories)
    if accessories:
        detail = "; ".join(x for x in (detail, f"with {_kinds(accessories)}") if x)
    return Copy(source, target, graph, True, blobs_from, detail=detail)


def _kinds(accessories: list[Accessory]) -> str:
    names = {"sig": "signature", "att": "attestation", "sbom": "SBOM", "referrers": "referrers"}
    return ", ".join(dict.fromkeys(names.get(a.kind, a.kind) for a in accessories))


def run_copies(count: int, decide: Callable[[int], CopyResult | Copy], clients: Clients, *, workers: int = 8,
               on_done: Callable[[CopyResult], None] | None = None, stats: TransferStats | None = None,
               on_bytes: Callable[[int], None] | None = None, decide_first: bool = False) -> list[CopyResult]:
    """Run steps 1-3 for images 0..count-1 (`decide(i)` is step 1 for image i); results in input order.
    `workers` bounds the blob streams at once (`-j`); `stats` receives the bytes and blobs moved.

    `decide_first` judges every image before any blob moves: a bundle's blob may only be found at the
    destination (in the repository of an image already there), so those holders must be known first."""
    results: dict[int, CopyResult] = {}
    lock = threading.Lock()

    def finish(i: int, result: CopyResult) -> None:
        with lock:  # on_done (a progress bar) is called from one thread at a time
            results[i] = result
            if on_done:
                on_done(result)

    writer = ManifestWriter()
    with BlobSender(clients, streams=workers, stats=stats, on_bytes=on_bytes) as sender, \
            ThreadPoolExecutor(max_workers=max(1, min(16, count or 1))) as writers:

        def write(copy: Copy) -> CopyResult:
            problems = wait_all(copy.futures)
            if problems:
                return CopyResult(copy.source, str(copy.target), "failed", copy.graph.digest, "; ".join(problems))
            dst = clients.get(copy.target.domain)
            try:
                if copy.write_image:
                    writer.put_image(dst, copy.target.path, copy.graph, copy.target.tag or copy.graph.digest)
                for accessory in copy.graph.accessories:
                    writer.put_accessory(dst, copy.target.path, accessory)
            except RegistryError as exc:
                return CopyResult(copy.source, str(copy.target), "failed", copy.graph.digest, exc.message)
            return CopyResult(copy.source, str(copy.target), "copied", copy.graph.digest, copy.detail)

        def launch(outcome: CopyResult | Copy) -> CopyResult | Future[CopyResult]:
            """Step 2 for one judged image: its blobs go to the sender at once, its writer waits for them."""
            if isinstance(outcome, Skipped):
                # An image already at its target holds its blobs there: others may mount them from it.
                if outcome.at is not None and outcome.manifest is not None:
                    for blob in outcome.manifest.blobs:
                        sender.holder(outcome.at.domain, outcome.at.path, blob.digest)
                return CopyResult(outcome.source, outcome.target, outcome.status, outcome.digest, outcome.detail)
            if isinstance(outcome, CopyResult):
                return outcome
            graphs = outcome.graph.every_graph() if outcome.write_image else \
                (a.graph for a in outcome.graph.accessories)
            blobs = {d: b for g in graphs for d, b in g.blobs().items()}
            outcome.futures = [sender.need(outcome.target.domain, outcome.target.path, b, outcome.blobs_from)
                               for b in blobs.values()]
            return writers.submit(write, outcome)

        pending: dict[Future[CopyResult], int] = {}

        def settle(i: int, launched: CopyResult | Future[CopyResult]) -> None:
            if isinstance(launched, CopyResult):
                finish(i, launched)
            else:
                pending[launched] = i

        with ThreadPoolExecutor(max_workers=max(1, min(16, count or 1))) as deciders:
            if decide_first:
                judged = list(deciders.map(decide, range(count)))
                order = sorted(range(count), key=lambda i: not isinstance(judged[i], Skipped))
                for i in order:  # every holder is known before the first blob job starts
                    settle(i, launch(judged[i]))
            else:
                started = {deciders.submit(lambda i: launch(decide(i)), i): i for i in range(count)}
                for future in as_completed(started):
                    settle(started[future], future.result())  # what is not a RegistryError (a bug) is raised
        for done in as_completed(pending):
            finish(pending[done], done.result())
    return [results[i] for i in range(count)]

