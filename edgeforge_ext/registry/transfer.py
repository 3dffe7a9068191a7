"""Moving images between registries and checking they are there: the many-image operations of
`images verify` and `images mirror`, on top of the registry client. No Docker daemon.

A mirror runs in three steps:
1. every image's manifest at the source and at its target, concurrently: an image already there with the
   same digest is skipped (its signatures are added when missing), a different image under the target tag
   is left alone unless `force`;
2. every blob the copied images need becomes one job per destination registry (blobsend.py): streamed
   once from its source, verified on the way, mounted into every other repository that wants it; an
   image's blobs go to the sender as soon as it is decided, while later images are still being read;
3. each image's manifests are written once its blobs are in: platform manifests, then the index or image
   under the target tag, then what is stored beside it (cosign tags, OCI referrers).
Manifests of one digest in one repository are written by one worker at a time (docker-registry rewrites
the repository's link files in place; a concurrent reader sees one empty: "blob unknown to registry").
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial

from edgeforge_ext.errors import RegistryError
from edgeforge_ext.registry.blobsend import BlobSender, RegistrySource, TransferStats, wait_all
from edgeforge_ext.registry.client import Clients, RegistryClient
from edgeforge_ext.registry.graph import Accessory, ImageGraph, expand, fetch_manifest, find_accessories
from edgeforge_ext.registry.images import ImageRef, Rewrite
from edgeforge_ext.registry.manifests import Manifest, referrers_index

# --- copy ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyResult:
    source: str
    target: str
    status: str  # "copied", "skipped", "failed"
    digest: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class _Skipped(CopyResult):
    manifest: Manifest | None = None


@dataclass
class _Copy:
    """One image's copy, as decided in step 1."""

    source: ImageRef
    target: ImageRef
    graph: ImageGraph  # what to write: the image and its accessories, or only the accessories
    write_image: bool
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


def copy_image(source: ImageRef, target: ImageRef, clients: Clients, *, force: bool = False) -> CopyResult:
    """Copy one image (an index with all its platforms, or one image manifest) registry to registry, with
    its signatures and referrers. Skipped when the target already holds the same digest; a different
    image under the target tag is left alone unless `force`, and said so either way."""
    rewrite = Rewrite(source, str(target), "copy")
    return mirror_images([rewrite], clients, force=force)[0]


class TagLists:
    """Each source repository's tags, listed once per run (one request instead of a HEAD for every tag cosign
    or the referrers schema could use); None for a repository that will not list or lists more than one
    page (then each candidate tag is asked for)."""

    def __init__(self) -> None:
        self._lists: dict[tuple[str, str], set[str] | None] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, client: RegistryClient, path: str) -> set[str] | None:
        key = (client.host, path)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._lists:
                self._lists[key] = client.list_tags(path, max_pages=1)
            return self._lists[key]


def _decide(source: ImageRef, target: ImageRef, clients: Clients, force: bool,
            tag_lists: TagLists | None = None) -> CopyResult | _Copy:
    """Step 1 for one image: a result when nothing is to be written, else what to write. A skipped
    image's result carries its manifest (`_Skipped`): its blobs are at the target, to mount from."""
    src = clients.get(source.domain)
    dst = clients.get(target.domain)
    root = fetch_manifest(src, source.path, source.reference)
    if root is None:
        return CopyResult(str(source), str(target), "failed", None, f"not found at the source {source}")
    digest = root.digest
    if source.digest and source.digest != digest:
        return CopyResult(str(source), str(target), "failed", digest,
                          f"the source served {digest}, not the pinned {source.digest}")
    existing = dst.manifest_digest(target)  # by digest when pinned, else by tag
    tags = (tag_lists or TagLists()).get(src, source.path)
    accessories = find_accessories(src, source.path, digest, tags)
    if existing == digest or (target.digest and existing):
        missing = [a for a in accessories if not accessory_present(dst, target.path, a)]
        if not missing:
            return _Skipped(str(source), str(target), "skipped", digest, "already present", manifest=root)
        graph = ImageGraph(root, {digest: root}, missing)
        return _Copy(source, target, graph, write_image=False,
                     detail=f"already present; added {_kinds(missing)}")
    detail = ""
    if existing is not None:
        if not force:
            return CopyResult(str(source), str(target), "failed", digest,
                              f"{target.name}:{target.tag} holds a different image ({existing}); "
                              "not overwritten (use --force)")
        detail = f"overwrote {existing}"
    graph = expand(src, source.path, root)
    graph.accessories.extend(accessories)
    if accessories:
        detail = "; ".join(x for x in (detail, f"with {_kinds(accessories)}") if x)
    return _Copy(source, target, graph, write_image=True, detail=detail)


def _kinds(accessories: list[Accessory]) -> str:
    names = {"sig": "signature", "att": "attestation", "sbom": "SBOM", "referrers": "referrers"}
    return ", ".join(dict.fromkeys(names.get(a.kind, a.kind) for a in accessories))


def mirror_images(rewrites: Sequence[Rewrite], clients: Clients, *, force: bool = False, workers: int = 8,
                  on_done: Callable[[CopyResult], None] | None = None, stats: TransferStats | None = None,
                  on_bytes: Callable[[int], None] | None = None) -> list[CopyResult]:
    """Copy each source to its rewritten target (registry to registry); results in input order.

    Every target registry is logged in to first, so wrong credentials stop the run with one clear error.
    Images the Edge host pulls from their source (no rule matched) are skipped: there is nothing to copy.
    `workers` bounds the blob streams at once (`-j`); `stats` receives the bytes and blobs moved.
    """
    for host in dict.fromkeys(r.target_ref.domain for r in rewrites if r.target != str(r.source)):
        clients.get(host).ping()
    results: dict[int, CopyResult] = {}
    lock = threading.Lock()
    tag_lists = TagLists()

    def finish(i: int, result: CopyResult) -> None:
        with lock:  # on_done (a progress bar) is called from one thread at a time
            results[i] = result
            if on_done:
                on_done(result)

    def decide(i: int) -> CopyResult | _Copy:
        rewrite = rewrites[i]
        if rewrite.target == str(rewrite.source):
            return CopyResult(rewrite.target, rewrite.target, "skipped", None, "pulled from its source")
        try:
            return _decide(rewrite.source, rewrite.target_ref, clients, force, tag_lists)
        except RegistryError as exc:
            return CopyResult(str(rewrite.source), rewrite.target, "failed", None, exc.message)

    writer = ManifestWriter()
    with BlobSender(clients, streams=workers, stats=stats, on_bytes=on_bytes) as sender, \
            ThreadPoolExecutor(max_workers=max(1, min(16, len(rewrites) or 1))) as writers:

        def write(copy: _Copy) -> CopyResult:
            problems = wait_all(copy.futures)
            if problems:
                return CopyResult(str(copy.source), str(copy.target), "failed", copy.graph.digest,
                                  "; ".join(problems))
            dst = clients.get(copy.target.domain)
            try:
                if copy.write_image:
                    writer.put_image(dst, copy.target.path, copy.graph, copy.target.tag or copy.graph.digest)
                for accessory in copy.graph.accessories:
                    writer.put_accessory(dst, copy.target.path, accessory)
            except RegistryError as exc:
                return CopyResult(str(copy.source), str(copy.target), "failed", copy.graph.digest, exc.message)
            return CopyResult(str(copy.source), str(copy.target), "copied", copy.graph.digest, copy.detail)

        def start(i: int) -> CopyResult | Future[CopyResult]:
            """Step 1 for one image, then its blobs go to the sender at once and its writer waits for them."""
            outcome = decide(i)
            if isinstance(outcome, _Skipped):
                # An image already at its target holds its blobs there: others may mount them from it.
                target = rewrites[i].target_ref
                for blob in outcome.manifest.blobs if outcome.manifest is not None else ():
                    sender.holder(target.domain, target.path, blob.digest)
                return CopyResult(outcome.source, outcome.target, outcome.status, outcome.digest, outcome.detail)
            if isinstance(outcome, CopyResult):
                return outcome
            source = RegistrySource(clients.get(outcome.source.domain), outcome.source.path)
            graphs = outcome.graph.every_graph() if outcome.write_image else \
                (a.graph for a in outcome.graph.accessories)
            blobs = {d: b for g in graphs for d, b in g.blobs().items()}
            outcome.futures = [sender.need(outcome.target.domain, outcome.target.path, b, source)
                               for b in blobs.values()]
            return writers.submit(write, outcome)

        with ThreadPoolExecutor(max_workers=max(1, min(16, len(rewrites) or 1))) as deciders:
            started = {deciders.submit(start, i): i for i in range(len(rewrites))}
            pending: dict[Future[CopyResult], int] = {}
            for future in as_completed(started):
                outcome = future.result()  # what is not a RegistryError (a bug) is raised here
                if isinstance(outcome, CopyResult):
                    finish(started[future], outcome)
                else:
                    pending[outcome] = started[future]
        for done in as_completed(pending):
            finish(pending[done], done.result())
    return [results[i] for i in range(len(rewrites))]


# --- presence ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Presence:
    rewrite: Rewrite
    present: bool
    digest: str | None


def verify_images(rewrites: Sequence[Rewrite], clients: Clients, *, workers: int = 16,
                  on_done: Callable[[Presence], None] | None = None, tag_list_from: int = 3) -> list[Presence]:
    """Is every target there? Results in input order. Registry errors (auth, unreachable) are raised, never
    reported as "missing".

    A repository with `tag_list_from` or more tag references (provider images: one tag per Kubernetes
    version) is answered by one tags/list call; digests and the rest by a manifest HEAD each, concurrently.
    """
    targets = [r.target_ref for r in rewrites]
    by_repo: dict[str, list[int]] = {}
    for i, t in enumerate(targets):
        if not t.digest:
            by_repo.setdefault(t.name, []).append(i)
    listed = {name for name, idx in by_repo.items() if tag_list_from and len(idx) >= tag_list_from}
    results: dict[int, Presence] = {}

    def by_head(i: int) -> list[tuple[int, Presence]]:
        digest = clients.get(targets[i].domain).manifest_digest(targets[i])
        return [(i, Presence(rewrites[i], digest is not None, digest))]

    def by_list(name: str) -> list[tuple[int, Presence]]:
        first = targets[by_repo[name][0]]
        tags = clients.get(first.domain).list_tags(first.path)
        if tags is None:  # not listable here: one HEAD each
            return [p for i in by_repo[name] for p in by_head(i)]
        return [(i, Presence(rewrites[i], targets[i].tag in tags, None)) for i in by_repo[name]]

    jobs: list[Callable[[], list[tuple[int, Presence]]]] = [partial(by_list, name) for name in listed]
    jobs += [partial(by_head, i) for i, t in enumerate(targets) if t.digest or t.name not in listed]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs) or 1))) as pool:
        futures = [pool.submit(job) for job in jobs]
        try:
            for future in as_completed(futures):
                for i, presence in future.result():
                    results[i] = presence
                    if on_done:
                        on_done(presence)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return [results[i] for i in range(len(rewrites))]
