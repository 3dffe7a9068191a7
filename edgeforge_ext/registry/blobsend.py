"""Blobs into destination registries, each across the wire once: the engine under `images mirror` and
`images load`.

One job per (destination registry, blob), whatever number of repositories and images want it. The job
asks the first repository that wants the blob whether it holds it already (a killed run left it there),
else streams it from its source into it, and mounts it into every other repository that wants it
(`POST …/blobs/uploads/?mount=&from=`: the registry links the blob it has; no bytes move). Because one
job owns a blob on a registry, two workers never upload the same blob at once, and never write the same
repository link file at once (docker-registry rewrites link files in place: a request that reads one
mid-write sees it empty and answers "blob unknown to registry").

`streams` workers (the `-j` of mirror/load) run the jobs; the biggest waiting blob starts first, so a run
is not left waiting on one large layer that started last.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
import urllib3

from edgeforge_ext.errors import RegistryAuthError, RegistryError, RegistryStatusError, RegistryUnreachable
from edgeforge_ext.registry.client import Clients, RegistryClient, registry_host
from edgeforge_ext.registry.manifests import Descriptor
from edgeforge_ext.registry.streams import BlobIntegrityError, Readable, VerifyingReader

ATTEMPTS = 3  # a stream that breaks is started again from its first byte, this many times in all


class BlobSource(Protocol):
    """Where a blob's bytes come from: a repository of a registry, or a bundle on disk."""

    @property
    def where(self) -> str: ...  # for messages: "127.0.0.1:5000/team/app", "bundle.tar"

    @property
    def host(self) -> str | None: ...  # the registry host, for a same-registry mount; None for a bundle

    @property
    def path(self) -> str | None: ...

    def open(self, descriptor: Descriptor) -> contextlib.AbstractContextManager[Readable]: ...


@dataclass(frozen=True)
class RegistrySource:
    client: RegistryClient
    path: str

    @property
    def where(self) -> str:
        return f"{self.client.host}/{self.path}"

    @property
    def host(self) -> str:
        return self.client.host

    @contextlib.contextmanager
    def open(self, descriptor: Descriptor) -> Iterator[Readable]:
        resp = self.client.get_blob(self.path, descriptor.digest, attempts=1)
        try:
            yield resp.raw  # raw bytes (requests asks urllib3 not to decode): what the digest is of
        finally:
            resp.close()


@dataclass
class TransferStats:
    """What a run moved, counted as it happens (the bench and `--json` read it)."""

    bytes_uploaded: int = 0
    blobs_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_present: int = 0  # found where they were wanted (a rerun), or already in the bundle/its predecessor
    bytes_downloaded: int = 0  # into a bundle
    blobs_downloaded: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_json(self) -> dict[str, int]:
        return {"bytes_uploaded": self.bytes_uploaded, "blobs_uploaded": self.blobs_uploaded,
                "blobs_mounted": self.blobs_mounted, "blobs_present": self.blobs_present}

    def saved_json(self) -> dict[str, int]:
        return {"bytes_saved": self.bytes_downloaded, "blobs_saved": self.blobs_downloaded,
                "blobs_left_out": self.blobs_present}


@dataclass
class _Job:
    host: str
    descriptor: Descriptor
    sources: list[BlobSource]
    futures: dict[str, Future[None]] = field(default_factory=dict)  # per repository that wants it, in order
    dispatched: set[str] = field(default_factory=set)  # repositories being (or done) put
    holder: str | None = None  # a repository of `host` that holds it, once the job has put it there
    error: BaseException | None = None


_STOP = object()


class BlobSender:
    """Blob jobs run as soon as they are known (`need`): a mirror streams its first layers while it is still
    reading the manifests of its last images. `streams` workers take the biggest waiting blob first. Once a
    blob is in its first repository, the others that want it get mounts, at once and in parallel (a mount
    moves no bytes: it does not take a stream)."""

    def __init__(self, clients: Clients, *, streams: int = 8, stats: TransferStats | None = None,
                 on_bytes: Callable[[int], None] | None = None) -> None:
        self.clients = clients
        self.stats = stats or TransferStats()
        self._on_bytes = on_bytes
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._holders: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._mounts = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mount")
        self._workers = [threading.Thread(target=self._work, name=f"blob-{i}", daemon=True)
                         for i in range(max(1, streams))]
        for worker in self._workers:
            worker.start()

    def need(self, host: str, repository: str, descriptor: Descriptor, source: BlobSource) -> Future[None]:
        """The future of `descriptor` being in `repository` of `host`."""
        key = (registry_host(host), descriptor.digest)
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                job = self._jobs[key] = _Job(key[0], descriptor, [])
                self._queue.put((-descriptor.size, next(self._order), job))
            if source not in job.sources:
                job.sources.append(source)
            future = job.futures.get(repository)
            if future is not None:
                return future
            future = job.futures[repository] = Future()
            if job.error is not None:
                future.set_exception(job.error)
            elif job.holder is not None:  # sent already: a mount
                job.dispatched.add(repository)
                self._mounts.submit(self._mount, job, repository)
            return future

    def holder(self, host: str, repository: str, digest: str) -> None:
        """`repository` is known to hold `digest` (an image already there): mount from it, upload nothing."""
        with self._lock:
            self._holders.setdefault((registry_host(host), digest), repository)

    def close(self) -> None:
        self._mounts.shutdown(wait=True)  # a mount the registry refuses queues a stream: workers stop after
        for _ in self._workers:
            self._queue.put((1 << 62, next(self._order), _STOP))
        for worker in self._workers:
            worker.join()

    def __enter__(self) -> BlobSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the workers -------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            _priority, _order, item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, tuple):
                self._stream_into(*item)
            else:
                self._run(item)

    def _run(self, job: _Job) -> None:
        """The first repository that wants the blob gets it (found there, mounted from where it is known to
        be, or streamed); every other one a mount."""
        with self._lock:
            first = next(r for r in job.futures if r not in job.dispatched)
            job.dispatched.add(first)
        try:
            self._put(self.clients.get(job.host), job, first)
        except BaseException as exc:  # handed to every image that waits on this blob
            with self._lock:
                job.error = exc
                for future in job.futures.values():
                    if not future.done():
                        future.set_exception(exc)
            return
        with self._lock:
            job.holder = first
            rest = [r for r in job.futures if r not in job.dispatched]
            job.dispatched.update(rest)
        job.futures[first].set_result(None)
        for repository in rest:
            self._mounts.submit(self._mount, job, repository)

    def _mount(self, job: _Job, repository: str) -> None:
        future = job.futures[repository]
        try:
            assert job.holder is not None
            if self.clients.get(job.host).mount_blob(repository, job.descriptor.digest, job.holder):
                self.stats.add(blobs_mounted=1)
                future.set_result(None)
                return
        except BaseException as exc:
            future.set_exception(exc)
            return
        # The registry would not mount (another storage, another policy): a stream, as -j allows.
        self._queue.put((-job.descriptor.size, next(self._order), (job, repository)))

    def _stream_into(self, job: _Job, repository: str) -> None:
        future = job.futures[repository]
        try:
            self._stream(self.clients.get(job.host), repository, job, None)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(None)

    def _put(self, dst: RegistryClient, job: _Job, repository: str) -> None:
        """The blob into the first repository that wants it. One POST: a mount from where the blob is known
        to be (an image already at its target, the source on this same registry), or from the repository
        itself (a 201 then says a killed run left it there); otherwise the registry opens the upload
        session the stream then uses."""
        digest = job.descriptor.digest
        with self._lock:
            known = self._holders.get((job.host, digest))
        same = next((s.path for s in job.sources if s.host == job.host and s.path), None)
        origin = known or same or repository
        mounted, location = dst.start_upload(repository, digest, origin)
        if mounted:
            self.stats.add(**{"blobs_present" if origin == repository else "blobs_mounted": 1})
            return
        self._stream(dst, repository, job, location)

    def _stream(self, dst: RegistryClient, repository: str, job: _Job, location: str | None) -> None:
        """Source to destination, verified on the way (the size here, the digest here for a bundle and by the
        destination for a registry source); a broken stream starts again (from the next
        source, when there are several)."""
        descriptor = job.descriptor
        last: Exception | None = None
        for attempt in range(ATTEMPTS):
            source = job.sources[attempt % len(job.sources)]
            what = f"blob {descriptor.digest} from {source.where}"
            sent = [0]

            def count(n: int, sent: list[int] = sent) -> None:
                sent[0] += n
                if self._on_bytes is not None:
                    self._on_bytes(n)

            try:
                with source.open(descriptor) as stream:
                    reader = VerifyingReader(stream, descriptor.digest, descriptor.size, what, on_bytes=count,
                                             hash_here=source.host is None)  # a registry's digest: dst hashes
                    try:
                        dst.upload_blob(repository, descriptor.digest, reader, descriptor.size, location)
                    except RegistryStatusError as exc:
                        if exc.status == 400 and "DIGEST_INVALID" in exc.message:
                            raise BlobIntegrityError(f"{what}: the bytes do not match the digest ({dst.host} "
                                                     "hashed what arrived and refused it)") from None
                        raise
            except RegistryAuthError:
                raise
            except (BlobIntegrityError, RegistryUnreachable, requests.RequestException, urllib3.exceptions.HTTPError,
                    OSError) as exc:  # urllib3's own errors: a source that broke off mid-body
                last = exc
            except RegistryStatusError as exc:
                if exc.status < 500 and exc.status != 429:
                    raise
                last = exc
            else:
                self.stats.add(bytes_uploaded=sent[0], blobs_uploaded=1)
                return
            finally:
                location = None  # a session is good for one PUT: a new attempt opens its own
            self.stats.add(bytes_uploaded=sent[0])  # sent, then lost: it crossed the wire all the same
        message = getattr(last, "message", None) or str(last)
        raise RegistryError(f"{descriptor.digest} could not be copied to {dst.host}/{repository} after "
                            f"{ATTEMPTS} attempts: {message}")


def wait_all(futures: list[Future[None]]) -> list[str]:
    """Wait for every future; the distinct error messages of those that failed."""
    problems: list[str] = []
    for future in futures:
        exc = future.exception()
        if exc is None:
            continue
        text = getattr(exc, "message", None) or str(exc)
        if text not in problems:
            problems.append(text)
    return problems
