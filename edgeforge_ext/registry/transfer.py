"""Moving images between registries and checking they are there: `images mirror` and `images verify`, on
top of the registry client (client.py) and the copy pipeline (copying.py). No Docker daemon.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial

from edgeforge_ext.errors import RegistryError
from edgeforge_ext.registry.blobsend import RegistrySource, TransferStats
from edgeforge_ext.registry.client import Clients, RegistryClient
from edgeforge_ext.registry.copying import Copy, CopyResult, judge, run_copies
from edgeforge_ext.registry.graph import expand, fetch_manifest, find_accessories
from edgeforge_ext.registry.images import ImageRef, Rewrite

__all__ = ["CopyResult", "Presence", "TagLists", "copy_image", "mirror_images", "verify_images"]


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


def copy_image(source: ImageRef, target: ImageRef, clients: Clients, *, force: bool = False) -> CopyResult:
    """Copy one image (an index with all its platforms, or one image manifest) registry to registry, with
    its signatures and referrers. Skipped when the target already holds the same digest; a different
    image under the target tag is left alone unless `force`, and said so either way."""
    return mirror_images([Rewrite(source, str(target), "copy")], clients, force=force)[0]


def _decide(source: ImageRef, target: ImageRef, clients: Clients, force: bool, tag_lists: TagLists,
            logged_in: Callable[[], None] = lambda: None) -> CopyResult | Copy:
    """Read the source, then (once `logged_in` returns: the target registry took the credentials) judge."""
    src = clients.get(source.domain)
    root = fetch_manifest(src, source.path, source.reference)
    if root is None:
        return CopyResult(str(source), str(target), "failed", None, f"not found at the source {source}")
    if source.digest and source.digest != root.digest:
        return CopyResult(str(source), str(target), "failed", root.digest,
                          f"the source served {root.digest}, not the pinned {source.digest}")
    accessories = find_accessories(src, source.path, root.digest, tag_lists.get(src, source.path))
    logged_in()
    return judge(str(source), target, clients.get(target.domain), root, accessories,
                 lambda manifest: expand(src, source.path, manifest), RegistrySource(src, source.path), force)


def mirror_images(rewrites: Sequence[Rewrite], clients: Clients, *, force: bool = False, workers: int = 8,
                  on_done: Callable[[CopyResult], None] | None = None, stats: TransferStats | None = None,
                  on_bytes: Callable[[int], None] | None = None) -> list[CopyResult]:
    """Copy each source to its rewritten target (registry to registry); results in input order.

    Every target registry is logged in to before anything is asked of it, so wrong credentials stop the run
    with one clear error; the sources are read meanwhile (the logins take round trips of their own).
    Images the Edge host pulls from their source (no rule matched) are skipped: there is nothing to copy.
    `workers` bounds the blob streams at once (`-j`); `stats` receives the bytes and blobs moved.
    """
    hosts = list(dict.fromkeys(r.target_ref.domain for r in rewrites if r.target != str(r.source)))
    tag_lists = TagLists()
    with ThreadPoolExecutor(max_workers=max(1, len(hosts)), thread_name_prefix="login") as logins:
        logged_in = {host: logins.submit(clients.get(host).ping) for host in hosts}

        def decide(i: int) -> CopyResult | Copy:
            rewrite = rewrites[i]
            if rewrite.target == str(rewrite.source):
                return CopyResult(rewrite.target, rewrite.target, "skipped", None, "pulled from its source")
            login = logged_in[rewrite.target_ref.domain]
            try:
                return _decide(rewrite.source, rewrite.target_ref, clients, force, tag_lists, login.result)
            except RegistryError as exc:
                if login.done() and login.exception() is exc:
                    raise  # the login failed: the whole run stops with its error (run_copies raises it)
                return CopyResult(str(rewrite.source), rewrite.target, "failed", None, exc.message)

        return run_copies(len(rewrites), decide, clients, workers=workers, on_done=on_done, stats=stats,
                          on_bytes=on_bytes)


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
