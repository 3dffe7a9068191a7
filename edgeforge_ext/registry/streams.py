"""A blob on its way: read from a registry response (or a file), counted (and hashed, unless its destination
hashes it) as it passes, and refused before its last byte when it is not what its descriptor says.

Why before the last byte: the reader is the body of an upload (or the source of a file being written).
A short source would leave the registry waiting for the bytes its Content-Length promised, and a wrong
last chunk would complete a blob under a digest it does not have; raising instead of returning that
chunk aborts the upload (the registry never commits it) and the file (never renamed into place).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import IO, Protocol

import urllib3

from edgeforge_ext.errors import RegistryError

# Bytes moved per read: urllib3 asks a body for 16 KiB at a time; a read of at least 1 MiB keeps the
# syscalls per blob (and the Python work per byte) low enough that hashing dominates the CPU we spend.
CHUNK = 1 << 20


class Readable(Protocol):
    def read(self, n: int = ..., /) -> bytes: ...


class BlobIntegrityError(RegistryError):
    """A blob's bytes are not the ones its descriptor names (digest or size)."""


class VerifyingReader:
    """File-like view of `source` (anything with `read(n)`) that yields exactly `size` bytes whose digest is
    `digest`, or raises BlobIntegrityError naming `what`.

    `len` makes requests send a Content-Length (a monolithic PUT, no chunked encoding); `on_bytes` is told
    every chunk's length (progress, the byte counts of a run).

    `hash_here=False` leaves the digest to the reader's destination: a registry hashes every byte of an upload
    and refuses to commit it under another digest (400 DIGEST_INVALID, distribution spec "Pushing blobs"), so
    a registry-to-registry copy need not hash it a second time; sizes are still checked here."""

    def __init__(self, source: Readable, digest: str, size: int, what: str,
                 on_bytes: Callable[[int], None] | None = None, *, hash_here: bool = True) -> None:
        algorithm, _, expected = digest.partition(":")
        try:
            self._hash = hashlib.new(algorithm) if hash_here else None
        except ValueError:
            raise BlobIntegrityError(f"{what}: unsupported digest algorithm {algorithm!r}") from None
        self._source = source
        self._expected = expected
        self.digest = digest
        self.size = size
        self.len = size  # requests reads this for Content-Length
        self.what = what
        self.done = 0
        self._on_bytes = on_bytes

    def read(self, n: int = -1) -> bytes:
        want = self.size - self.done
        if want <= 0:
            extra: bytes = self._source.read(1)
            if extra:
                raise BlobIntegrityError(f"{self.what}: more than the {self.size} bytes its descriptor gives")
            return b""
        try:
            chunk: bytes = self._source.read(min(max(n, CHUNK), want))
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # the source hung up mid-body
            raise BlobIntegrityError(f"{self.what}: truncated: the source broke off after {self.done} of "
                                     f"{self.size} bytes ({type(exc).__name__})") from None
        if not chunk:
            raise BlobIntegrityError(f"{self.what}: truncated: {self.done} of {self.size} bytes arrived")
        self.done += len(chunk)
        if self._hash is not None:
            self._check(chunk)
        if self._on_bytes is not None:
            self._on_bytes(len(chunk))
        return chunk

    def _check(self, chunk: bytes) -> None:
        assert self._hash is not None
        self._hash.update(chunk)
        if self.done == self.size and self._hash.hexdigest() != self._expected:
            raise BlobIntegrityError(f"{self.what}: the bytes do not match the digest "
                                     f"(got {self.digest.partition(':')[0]}:{self._hash.hexdigest()})")


def copy_verified(reader: VerifyingReader, out: IO[bytes]) -> int:
    """Write every byte of `reader` to `out`; returns the count."""
    total = 0
    while True:
        chunk = reader.read(CHUNK)
        if not chunk:
            return total
        out.write(chunk)
        total += len(chunk)
