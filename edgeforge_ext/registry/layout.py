"""OCI image layouts on disk: a directory, a `.tar`, or a `.tar.zst` (what `images save` writes and
`images load` reads). Content-addressed: `blobs/sha256/HEX` holds every manifest and blob once, however many
images share it; `index.json` lists the images with their original references in annotations.

Writing never leaves something that looks finished and is not: a directory gets its `index.json` last
(blobs arrive as `.HEX.partial` files renamed into place, so a rerun keeps the ones that completed); an
archive is written as `NAME.partial` and renamed at the end. In an archive `oci-layout`, `index.json` and
the manifests come first, then the blobs as their downloads finish (each spooled to a file beside the
archive, appended, removed).

zstd comes from the standard library's `compression.zstd` (Python 3.14) or its backport `backports.zstd`
(the same code and API, by the module's authors; the dependency goes away on 3.14). Layers are already
gzip-compressed: the default level 3 is fast, and gains what the tar headers and the configs give.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from edgeforge_ext.errors import RegistryError, UsageError
from edgeforge_ext.registry.manifests import OCI_INDEX
from edgeforge_ext.registry.streams import Readable

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
DIRECTORY, TAR, TAR_ZST = "directory", "tar", "tar.zst"


def kind_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".tar.zst", ".tzst")):
        return TAR_ZST
    if name.endswith(".tar"):
        return TAR
    return DIRECTORY


def _zstd() -> Any:
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        from backports import zstd  # type: ignore[no-redef,unused-ignore]
    return zstd


def blob_name(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart}"


class BundleError(RegistryError):
    """A bundle that cannot be read or written."""


# --- writing ------------------------------------------------------------------------------------


class LayoutWriter:
    """An OCI layout being written to `path` (kind by suffix). Blobs may be added from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = kind_of(path)
        self._lock = threading.Lock()
        self._names: set[str] = set()
        self._tar: tarfile.TarFile | None = None
        self._raw: IO[bytes] | None = None
        self._zst: Any = None
        self.partial = path.with_name(path.name + ".partial")
        if self.kind == DIRECTORY:
            if path.exists() and not path.is_dir():
                raise UsageError(f"{path} exists and is not a directory")
            if path.is_dir() and any(path.iterdir()) and not (path / LAYOUT_FILE).exists():
                raise UsageError(f"{path} is a directory that is not an OCI layout: choose an empty or new one")
            (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            (path / INDEX_FILE).unlink(missing_ok=True)  # unfinished until the new index is written
            (path / LAYOUT_FILE).write_text(json.dumps(LAYOUT_VERSION))
            self.spool = path / "blobs" / "sha256"
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.spool = Path(tempfile.mkdtemp(prefix=f".{path.name}.spool-", dir=path.parent))
            self._raw = self.partial.open("wb")
            stream: IO[bytes] = self._raw
            if self.kind == TAR_ZST:
                zstd = _zstd()
                self._zst = zstd.ZstdFile(self._raw, "w", options={zstd.CompressionParameter.nb_workers: 2})
                stream = self._zst
            self._tar = tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - finish/abort
            self._add_member(LAYOUT_FILE, json.dumps(LAYOUT_VERSION).encode())

    def has(self, digest: str, size: int) -> bool:
        """The blob is there complete already (a directory written by an earlier, interrupted save)."""
        if self.kind != DIRECTORY:
            return blob_name(digest) in self._names
        target = self.path / blob_name(digest)
        return target.is_file() and target.stat().st_size == size

    def _add_member(self, name: str, data: bytes | None = None, source: Path | None = None) -> None:
        assert self._tar is not None
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        info.size = len(data) if data is not None else (source.stat().st_size if source else 0)
        with self._lock:
            if name in self._names:
                return
            if data is not None:
                import io

                self._tar.addfile(info, io.BytesIO(data))
            else:
                assert source is not None
                with source.open("rb") as handle:
                    self._tar.addfile(info, handle)
            self._names.add(name)

    def add_bytes(self, digest: str, data: bytes) -> None:
        """A manifest (or another small object) by digest."""
        if self.kind == DIRECTORY:
            target = self.path / blob_name(digest)
            if not target.exists():
                tmp = target.with_name(f".{target.name}.partial")
                tmp.write_bytes(data)
                tmp.replace(target)
            return
        self._add_member(blob_name(digest), data)

    @contextlib.contextmanager
    def blob(self, digest: str) -> Iterator[IO[bytes]]:
        """A file to write one blob's bytes to; committed (renamed, or appended to the archive) when the
        block ends without an error, thrown away otherwise."""
        hexpart = digest.partition(":")[2]
        spool = self.spool / f".{hexpart}.partial"
        try:
            with spool.open("wb") as out:
                yield out
            if self.kind == DIRECTORY:
                spool.replace(self.path / blob_name(digest))
            else:
                self._add_member(blob_name(digest), source=spool)
        finally:
            spool.unlink(missing_ok=True)

    def finish(self, index: dict[str, Any]) -> None:
        body = json.dumps(index, indent=2).encode()
        if self.kind == DIRECTORY:
            tmp = self.path / f".{INDEX_FILE}.partial"
            tmp.write_bytes(body)
            tmp.replace(self.path / INDEX_FILE)
            return
        self._add_member(INDEX_FILE, body)
        self._close()
        self.partial.replace(self.path)

    def _close(self) -> None:
        for closer in (self._tar, self._zst, self._raw):
            if closer is not None:
                closer.close()
        self._tar = self._zst = self._raw = None
        if self.kind != DIRECTORY:
            shutil.rmtree(self.spool, ignore_errors=True)

    def abort(self) -> None:
        """Leave nothing that looks like a bundle (a directory keeps its complete blobs, for a rerun)."""
        with contextlib.suppress(OSError):
            self._close()
        if self.kind != DIRECTORY:
            self.partial.unlink(missing_ok=True)


def layout_index(entries: list[dict[str, Any]], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    if annotations:
        index["annotations"] = annotations
    return index


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    offset: int
    size: int


class LayoutReader:
    """An OCI layout to read: a directory as it is, a `.tar` through its member offsets (several threads
    read at once, each with its own file handle), a `.tar.zst` unpacked first into a temporary directory
    beside it (zstd cannot seek; the space it needs is the bundle's unpacked size)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = kind_of(path)
        self._members: dict[str, _Member] = {}
        self._tmp: Path | None = None
        if not path.exists():
            raise UsageError(f"bundle not found: {path}")
        if self.kind == TAR:
            self._index_tar()
        elif self.kind == TAR_ZST:
            self._tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.unpacked-", dir=path.parent))
            self._unpack(self._tmp)
        root = self._tmp or path
        if self.kind != TAR and not (root / INDEX_FILE).is_file():
            self.close()
            raise BundleError(f"{path} has no {INDEX_FILE}: not an OCI layout, or a save that did not finish")
        if self.kind == TAR and INDEX_FILE not in self._members:
            raise BundleError(f"{path} has no {INDEX_FILE}: not an OCI layout, or a save that did not finish")

    def _index_tar(self) -> None:
        try:
            with tarfile.open(self.path, "r:") as tar:
                for member in tar:
                    if member.isfile():
                        self._members[member.name.lstrip("./")] = _Member(member.offset_data, member.size)
        except tarfile.TarError as exc:
            raise BundleError(f"{self.path} is not a readable tar: {exc}") from None

    def _unpack(self, into: Path) -> None:
        zstd = _zstd()
        try:
            with zstd.ZstdFile(self.path, "r") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                for member in tar:
                    name = member.name.lstrip("./")
                    if not member.isfile() or ".." in Path(name).parts or Path(name).is_absolute():
                        continue
                    target = into / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    if source is None:
                        continue
                    with target.open("wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
        except (tarfile.TarError, zstd.ZstdError, EOFError) as exc:
            self.close()
            raise BundleError(f"{self.path} is not a readable zstd tar: {exc}") from None

    def read_bytes(self, name: str) -> bytes | None:
        with self.open_member(name) as handle:
            return handle.read() if handle is not None else None

    @contextlib.contextmanager
    def open_member(self, name: str) -> Iterator[Readable | None]:
        if self.kind == TAR:
            member = self._members.get(name)
            if member is None:
                yield None
                return
            with self.path.open("rb") as handle:
                handle.seek(member.offset)
                yield _Limited(handle, member.size)
            return
        target = (self._tmp or self.path) / name
        if not target.is_file():
            yield None
            return
        with target.open("rb") as handle:
            yield handle

    def index(self) -> dict[str, Any]:
        raw = self.read_bytes(INDEX_FILE)
        try:
            data = json.loads(raw or b"")
        except ValueError:
            raise BundleError(f"{self.path}: {INDEX_FILE} is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("manifests"), list):
            raise BundleError(f"{self.path}: {INDEX_FILE} lists no manifests")
        return data

    def has_blob(self, digest: str) -> bool:
        if self.kind == TAR:
            return blob_name(digest) in self._members
        return ((self._tmp or self.path) / blob_name(digest)).is_file()

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> LayoutReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Limited:
    """`size` bytes of an open file from where it stands (one tar member)."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        self._handle = handle
        self._left = size

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._handle.read(want)
        self._left -= len(data)
        return data
