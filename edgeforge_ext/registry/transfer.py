"""Moving images between registries and checking they are there: the many-image operations of
`images verify` and `images mirror`, on top of the registry client (registry.py). No Docker daemon."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial

from edgeforge_ext.errors import RegistryError
from edgeforge_ext.registry.client import FOREIGN, INDEX_TYPES, Clients, RegistryClient
from edgeforge_ext.registry.images import ImageRef, Rewrite

# --- copy ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyResult:
    source: str
    target: str
    status: str  # "copied", "skipped", "failed"
    digest: str | None = None
    detail: str = ""


def copy_image(source: ImageRef, target: ImageRef, clients: Clients, *, force: bool = False) -> CopyResult:
    """Copy one image (an index with all its platforms, or one image manifest) registry to registry.

    Skipped when the target already holds the same digest; a different image under the target tag is left
    alone unless `force`, and said so either way.
    """
    src = clients.get(source.domain)
    dst = clients.get(target.domain)
    got = src.get_manifest(source.path, source.reference)
    if got is None:
        return CopyResult(str(source), str(target), "failed", None, f"not found at the source {source}")
    body, media, digest = got
    if source.digest and source.digest != digest:
        return CopyResult(str(source), str(target), "failed", digest,
                          f"the source served {digest}, not the pinned {source.digest}")
    existing = dst.manifest_digest(target)  # by digest when pinned, else by tag
    if existing == digest or (target.digest and existing):
        carried = copy_evidence(src, dst, source.path, target.path, digest)
        if carried:
            return CopyResult(str(source), str(target), "copied", digest, f"already present; {carried}")
        return CopyResult(str(source), str(target), "skipped", digest, "already present")
    detail = ""
    if existing is not None:
        if not force:
            return CopyResult(str(source), str(target), "failed", digest,
                              f"{target.name}:{target.tag} holds a different image ({existing}); "
                              "not overwritten (use --force)")
        detail = f"overwrote {existing}"
    _copy_manifest(src, dst, source.path, target.path, body, media)
    # The evidence first, the tag last: a mirrored tag never names an image whose signature is still missing.
    carried = copy_evidence(src, dst, source.path, target.path, digest)
    dst.put_manifest(target.path, target.tag or digest, body, media)
    return CopyResult(str(source), str(target), "copied", digest, "; ".join(filter(None, (detail, carried))))


def copy_evidence(src: RegistryClient, dst: RegistryClient, src_path: str, dst_path: str, digest: str) -> str:
    """The image's signature and attestations, when the source has them (cosign's `sha256-<hex>.sig` and
    `.att` tags): copied along so the mirror verifies as the source does. What was carried, or ""."""
    from edgeforge_ext.attest.cosign import tag_for

    carried = []
    for suffix in ("sig", "att"):
        tag = tag_for(digest, suffix)
        got = src.get_manifest(src_path, tag)
        if got is None or dst.manifest_digest(ImageRef(dst.host, dst_path, tag)) == got[2]:
            continue
        _copy_manifest(src, dst, src_path, dst_path, got[0], got[1])
        dst.put_manifest(dst_path, tag, got[0], got[1])
        carried.append(f".{suffix}")
    return f"with its {' and '.join(carried)}" if carried else ""


def _copy_manifest(src: RegistryClient, dst: RegistryClient, src_path: str, dst_path: str, body: bytes,
                   media: str) -> None:
    """Everything the manifest refers to, so the registry accepts it: child manifests or blobs."""
    data = json.loads(body)
    if media in INDEX_TYPES or "manifests" in data:
        for child in data.get("manifests", []):
            child_digest = child["digest"]
            got = src.get_manifest(src_path, child_digest)
            if got is None:
                raise RegistryError(f"{src.host}/{src_path}: platform manifest {child_digest} is missing")
            if dst.manifest_digest(ImageRef(dst.host, dst_path, None, child_digest)) == child_digest:
                continue
            _copy_manifest(src, dst, src_path, dst_path, got[0], got[1])
            dst.put_manifest(dst_path, child_digest, got[0], got[1])
        return
    if data.get("schemaVersion") == 1:
        raise RegistryError(f"{src.host}/{src_path}: schema 1 manifests are not supported")
    blobs = [data["config"], *data.get("layers", [])] if "config" in data else list(data.get("layers", []))
    for blob in blobs:
        if FOREIGN in str(blob.get("mediaType", "")):
            continue
        digest = blob["digest"]
        if dst.has_blob(dst_path, digest):
            continue
        if src.host == dst.host and dst.mount_blob(dst_path, digest, src_path):
            continue
        with src.open_blob(src_path, digest) as data_file:
            dst.upload_blob(dst_path, digest, data_file)


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


def mirror_images(rewrites: Sequence[Rewrite], clients: Clients, *, force: bool = False, workers: int = 8,
                  on_done: Callable[[CopyResult], None] | None = None) -> list[CopyResult]:
    """Copy each source to its rewritten target (registry to registry); results in input order.

    Every target registry is logged in to first, so wrong credentials stop the run with one clear error.
    Images the Edge host pulls from their source (no rule matched) are skipped: there is nothing to copy.
    Repositories are copied concurrently, the images of one repository one after another: two uploads of
    the same blob or manifest into one repository at once race inside the registry (docker-registry
    rewrites the repository's link files in place, and the other request reads one empty: "blob unknown
    to registry").
    """
    for host in dict.fromkeys(r.target_ref.domain for r in rewrites if r.target != str(r.source)):
        clients.get(host).ping()
    results: dict[int, CopyResult] = {}
    lock = threading.Lock()

    def one(rewrite: Rewrite) -> CopyResult:
        if rewrite.target == str(rewrite.source):
            return CopyResult(rewrite.target, rewrite.target, "skipped", None, "pulled from its source")
        try:
            return copy_image(rewrite.source, rewrite.target_ref, clients, force=force)
        except RegistryError as exc:
            return CopyResult(str(rewrite.source), rewrite.target, "failed", None, exc.message)

    def copy_repository(indices: list[int]) -> None:
        for i in indices:
            result = one(rewrites[i])
            with lock:  # on_done (a progress bar) is called from one thread at a time
                results[i] = result
                if on_done:
                    on_done(result)

    groups = _by_target_repository(rewrites)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(groups) or 1))) as pool:
        for future in as_completed([pool.submit(copy_repository, group) for group in groups]):
            future.result()  # what is not a RegistryError (a bug) is raised here
    return [results[i] for i in range(len(rewrites))]


def _by_target_repository(rewrites: Sequence[Rewrite]) -> list[list[int]]:
    """Indices of `rewrites` grouped by the repository they are copied into, in input order."""
    groups: dict[str, list[int]] = {}
    for i, rewrite in enumerate(rewrites):
        groups.setdefault(rewrite.target_ref.name, []).append(i)
    return list(groups.values())
