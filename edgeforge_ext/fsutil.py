"""Small filesystem helpers: atomic writes that never leave a half-written file that looks complete."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgeforge_ext.errors import UsageError


def ensure_dir(path: Path, what: str, hint: str) -> Path:
    """`mkdir -p`, with a path that cannot be a directory (a file, read-only, no permission) reported as
    a usage error (exit 2) naming `what` it is for, instead of a crash."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"cannot use {path} as the {what}: it exists and is not a directory", hint=hint) from None
    except OSError as exc:
        raise UsageError(f"cannot use {path} as the {what}: {exc.strerror}", hint=hint) from None
    if not os.access(path, os.W_OK | os.X_OK):  # read-only (also a read-only file system)
        raise UsageError(f"cannot use {path} as the {what}: it is not writable", hint=hint)
    return path


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write `data` to `path` through a temp file and rename; False when the bytes were already there."""
    try:
        if path.is_file() and not path.is_symlink() and path.read_bytes() == data:
            if (path.stat().st_mode & 0o777) != mode:
                path.chmod(mode)
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)  # before any byte is written: no window with a wider mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def sha256_file(path: Path, chunk: int = 4 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def move_into(src: Path, dest_dir: Path, mode: int | None = None) -> Path:
    """Move a finished artifact into dest_dir (with `mode`, set before it appears there); across
    filesystems copy to a temp name, then rename."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    if mode is not None:
        src.chmod(mode)
    try:
        src.replace(dest)
        return dest
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    import shutil

    fd, tmp = tempfile.mkstemp(prefix=f".{src.name}.", suffix=".part", dir=dest_dir)
    os.close(fd)
    try:
        if mode is not None:
            Path(tmp).chmod(mode)
        shutil.copyfile(src, tmp)
        Path(tmp).replace(dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    src.unlink()
    return dest


def write_sha256_file(path: Path, sum_path: Path) -> str:
    """`<sha256>  <name>` (sha256sum's format) for `path`, written atomically; returns the digest."""
    digest = sha256_file(path)
    atomic_write(sum_path, f"{digest}  {path.name}\n".encode())
    return digest


@contextmanager
def artifact_errors(doing: str, path: Path) -> Iterator[None]:
    """An OSError while handling a build artifact (disk full, permission denied, read-only) becomes an
    ArtifactError (exit 8) naming the path, not an internal error."""
    from edgeforge_ext.errors import ArtifactError

    try:
        yield
    except OSError as exc:
        where = exc.filename or path
        raise ArtifactError(f"{doing} {path} failed: {exc.strerror or exc} ({where})",
                            hint="check the free space and permissions there") from None


PRIVATE_PREFIX = "edgeforge-private-"


@contextmanager
def private_dir(kind: str) -> Iterator[Path]:
    """A 0700 temporary directory for secret files (git's askpass answers, Earthly's secrets), removed
    when the block ends. Its name carries our pid, so what a run killed with -9 left behind is found
    and removed by the next one (`remove_orphaned_private_dirs`)."""
    remove_orphaned_private_dirs()
    path = Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{kind}-{os.getpid()}-"))
    try:
        yield path
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def remove_orphaned_private_dirs() -> list[Path]:
    """This user's private directories whose process is gone."""
    import shutil

    removed: list[Path] = []
    for path in Path(tempfile.gettempdir()).glob(f"{PRIVATE_PREFIX}*-*-*"):
        try:
            pid = int(path.name[len(PRIVATE_PREFIX):].split("-")[1])
            if path.stat().st_uid != os.getuid() or _alive(pid):
                continue
        except (ValueError, IndexError, OSError):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Create `path` with `mode` from the start (never readable by others, not even for a moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
