"""Dated output directories: `OUTPUT/<variant or default>/<YYYYmmdd-HHMMSS>-<shortsha>/` and a `latest` link.

A build writes into its own new directory; `latest` moves to it only after the build succeeded, and
the move is atomic (a symlink under a temporary name renamed over `latest`), so a crash or a power
loss never leaves `latest` pointing at a half-written ISO. `prune` removes older directories but
never the one `latest` points at, never the one in use, and never one another process is building in.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from edgeforge_ext.fsutil import ensure_dir

LATEST = "latest"
DEFAULT_VARIANT = "default"
BUILDING_MARKER = ".building"  # holds the pid of the process building into the directory
_RUN_DIR = re.compile(r"^\d{8}-\d{6}-[0-9a-z]+(?:-\d+)?$")


def variant_root(output_dir: Path, variant: str | None) -> Path:
    return Path(output_dir) / (variant or DEFAULT_VARIANT)


def run_dir_name(sha: str | None, when: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
    short = (sha or "unknown")[:8].lower()
    return f"{stamp}-{short}"


def is_run_dir(path: Path) -> bool:
    return bool(_RUN_DIR.match(path.name)) and path.is_dir() and not path.is_symlink()


def new_run_dir(root: Path, sha: str | None, when: float | None = None) -> Path:
    """Create a fresh dated directory (suffix -2, -3, ... if two builds start in the same second),
    marked as being built by this process."""
    ensure_dir(root, "output directory", "choose another --output (output.dir)")
    base = run_dir_name(sha, when)
    for n in range(1, 1000):
        path = root / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        (path / BUILDING_MARKER).write_text(f"{os.getpid()}\n")
        return path
    raise RuntimeError(f"cannot create a new run directory under {root}")  # pragma: no cover


def finished(run_dir: Path) -> None:
    """The build in run_dir is over (whatever its outcome): it may be pruned like any other."""
    (run_dir / BUILDING_MARKER).unlink(missing_ok=True)


def latest(root: Path) -> Path | None:
    """The directory `latest` points at, if the link exists and its target is there."""
    link = root / LATEST
    if not link.is_symlink():
        return None
    target = (root / link.readlink()).resolve()
    return target if target.is_dir() else None


def promote(root: Path, run_dir: Path) -> Path:
    """Point `latest` at run_dir atomically: symlink under a temporary name, fsync, rename over."""
    link = root / LATEST
    tmp = root / f".{LATEST}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)  # relative: the output tree can be moved or mounted elsewhere
    try:
        tmp.replace(link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(root)
    return link


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _being_built(run_dir: Path) -> bool:
    marker = run_dir / BUILDING_MARKER
    try:
        pid = int(marker.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False  # a crashed build: its directory is fair game
    except PermissionError:
        return True
    return True


def prune(root: Path, keep_last: int, in_use: tuple[Path, ...] = ()) -> list[Path]:
    """Remove all but the newest `keep_last` dated directories of root; return what was removed.

    Never removed: the target of `latest`, anything in `in_use`, a directory another live process is
    building in, and anything not named like a dated directory (the user's own files)."""
    if keep_last < 1:
        raise ValueError("keep_last must be at least 1")
    protected = {p.resolve() for p in in_use}
    current = latest(root)
    if current is not None:
        protected.add(current)
    runs = sorted((p for p in root.iterdir() if is_run_dir(p)), key=lambda p: p.name, reverse=True) \
        if root.is_dir() else []
    removed: list[Path] = []
    for path in runs[keep_last:]:
        if path.resolve() in protected or _being_built(path):
            continue
        shutil.rmtree(path)
        removed.append(path)
    return removed


def last_report_dir(output_dir: Path, variant: str | None) -> Path:
    """Where the last build's report is: the output dir itself (plain builds), else the newest dated
    directory of the variant that holds a report (it may be a failed push, which `latest` skips)."""
    from edgeforge_ext.build.report import REPORT_NAME

    if (output_dir / REPORT_NAME).exists():
        return output_dir
    root = variant_root(output_dir, variant)
    runs = sorted(d for d in root.glob("*") if is_run_dir(d) and (d / REPORT_NAME).exists()) if root.is_dir() else []
    return runs[-1] if runs else output_dir
