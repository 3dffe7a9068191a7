"""Small filesystem helpers: atomic writes that never leave a half-written file that looks complete."""

from __future__ import annotations

import hashlib
import os
import tempfile
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


def move_into(src: Path, dest_dir: Path) -> Path:
    """Move a finished artifact into dest_dir; across filesystems copy to a temp name, then rename."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    try:
        src.replace(dest)
        return dest
    except OSError:
        pass
    import shutil

    fd, tmp = tempfile.mkstemp(prefix=f".{src.name}.", suffix=".part", dir=dest_dir)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        Path(tmp).replace(dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    src.unlink()
    return dest
