"""`images verify --deep`: pull what an Edge host will pull, as it would, and say what would break its pull.

For each target: its manifest under the tag, every platform manifest of an index, and every blob (config and
layers) of each, fetched in full with the credentials the host is given for that registry; sizes and
digests are checked against the descriptors. Each fault has its own message: a missing platform manifest,
a missing blob, a zero-byte blob (Palette's troubleshooting documents pulls failing on those), a truncated
blob, bytes that do not match the digest. A blob shared by images of one repository is fetched once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3

from edgeforge_ext.errors import RegistryAuthError, RegistryError, RegistryUnreachable
from edgeforge_ext.registry.client import BlobMissing, Clients, RegistryClient
from edgeforge_ext.registry.graph import fetch_manifest
from edgeforge_ext.registry.images import Rewrite
from edgeforge_ext.registry.manifests import Descriptor, Manifest
from edgeforge_ext.registry.streams import CHUNK


@dataclass
class DeepResult:
    target: str
    digest: str | None = None
    platforms: int = 0
    blobs: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"target": self.target, "digest": self.digest, "platforms": self.platforms, "blobs": self.blobs,
                "bytes": self.bytes, "ok": not self.problems, "problems": self.problems}


def check_blob(client: RegistryClient, path: str, descriptor: Descriptor) -> str | None:
    """Fetch one blob whole; None when it is what its descriptor says, else what is wrong with it."""
    digest, size = descriptor.digest, descriptor.size
    try:
        resp = client.get_blob(path, digest)
    except BlobMissing:
        return f"blob {digest} is missing"
    served = 0
    hasher = hashlib.new(digest.partition(":")[0])
    broke = False
    try:
        for chunk in resp.iter_content(CHUNK):
            served += len(chunk)
            hasher.update(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        broke = True  # the registry hung up before the end
    finally:
        resp.close()
    if served == 0 and size > 0:
        return f"blob {digest} is empty: a zero-byte blob where {size} bytes belong (the Edge host's pull fails on it)"
    if size == 0:
        return f"blob {digest} is a zero-byte blob (its descriptor says 0 bytes): the Edge host's pull fails on it"
    if served < size or broke:
        return f"blob {digest} is truncated: {served} of {size} bytes"
    if served > size:
        return f"blob {digest} is {served} bytes, its descriptor says {size}"
    if hasher.hexdigest() != digest.partition(":")[2]:
        return f"blob {digest} does not match its digest (sha256 of what was served: {hasher.hexdigest()})"
    return None


class _Blobs:
    """Each (registry, repository, blob) fetched once, `workers` at a time."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._seen: dict[tuple[str, str, str], Future[str | None]] = {}
        self._lock = threading.Lock()

    def check(self, client: RegistryClient, path: str, descriptor: Descriptor) -> Future[str | None]:
        key = (client.host, path, descriptor.digest)
        with self._lock:
            future = self._seen.get(key)
            if future is None:
                future = self._seen[key] = self._pool.submit(check_blob, client, path, descriptor)
            return future


def _platforms(client: RegistryClient, path: str, root: Manifest, result: DeepResult) -> list[tuple[str, Manifest]]:
    """(name, manifest) of every platform; a missing or wrong one is a problem of the result."""
    if not root.is_index:
        return [("", root)]
    found = []
    for child in root.children:
        name = child.platform or child.digest
        try:
            manifest = fetch_manifest(client, path, child.digest)
        except RegistryError as exc:
            result.problems.append(f"platform manifest {child.digest} ({name}): {exc.message}")
            continue
        if manifest is None:
            result.problems.append(f"platform manifest {child.digest} for {name} is missing")
            continue
        if manifest.size != child.size:
            result.problems.append(f"platform manifest {child.digest} for {name} is {manifest.size} bytes, the "
                                   f"index says {child.size}")
        found.append((name, manifest))
    return found


def _deep_one(rewrite: Rewrite, clients: Clients, blobs: _Blobs) -> DeepResult:
    target = rewrite.target_ref
    result = DeepResult(rewrite.target)
    client = clients.get(target.domain)
    root = fetch_manifest(client, target.path, target.reference)
    if root is None:
        result.problems.append("the manifest is missing")
        return result
    result.digest = root.digest
    platforms = _platforms(client, target.path, root, result)
    result.platforms = len(platforms) if root.is_index else 1
    checks: list[tuple[str, Descriptor, Future[str | None]]] = []
    for name, manifest in platforms:
        for n, blob in enumerate(manifest.blobs):
            role = "config" if n == 0 else f"layer {n}"  # parse_manifest puts the config first
            where = f"{role} of {name}" if name else role
            checks.append((where, blob, blobs.check(client, target.path, blob)))
    for where, blob, future in checks:
        problem = future.result()
        result.blobs += 1
        result.bytes += blob.size
        if problem:
            result.problems.append(f"{problem} ({where})")
    return result


def verify_deep(rewrites: Sequence[Rewrite], clients: Clients, *, workers: int = 8,
                on_done: Callable[[DeepResult], None] | None = None) -> list[DeepResult]:
    """Pull every target whole; results in input order. Authentication and unreachable registries are
    raised (never reported as a broken image)."""
    results: list[DeepResult] = []
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as blob_pool, \
            ThreadPoolExecutor(max_workers=max(1, min(8, len(rewrites) or 1))) as image_pool:
        blobs = _Blobs(blob_pool)

        def one(rewrite: Rewrite) -> DeepResult:
            try:
                result = _deep_one(rewrite, clients, blobs)
            except (RegistryAuthError, RegistryUnreachable):
                raise
            except RegistryError as exc:
                result = DeepResult(rewrite.target, problems=[exc.message])
            if on_done:
                with lock:
                    on_done(result)
            return result

        results = list(image_pool.map(one, rewrites))
    return results
