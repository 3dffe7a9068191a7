"""One edgeforge-ext run per work directory at a time: an flock on `<workdir>/.edgeforge.lock`.

The kernel drops an flock when its holder dies, so a crashed run never leaves a stale lock. The lock
file itself is never deleted (deleting it would let two runs lock two different files). Nested use in
one process (build calls checkout) is counted, not re-locked: a second flock from the same process
on a new descriptor would wait on itself.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgeforge_ext.errors import UsageError
from edgeforge_ext.fsutil import ensure_dir

LOCK_NAME = ".edgeforge.lock"

_held: dict[Path, int] = {}  # resolved workdir -> nesting depth in this process


def _holder(fd: int) -> str:
    """The pid the current holder wrote ("unknown" while it is still writing)."""
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace")
    except OSError:
        return "unknown"
    words = text.split()
    return words[0] if words and words[0].isdigit() else "unknown"


@contextmanager
def workdir_lock(workdir: Path, *, wait: bool = True, what: str = "checkout") -> Iterator[None]:
    """Hold the work-directory lock for the body; wait for it (saying so once) or, with
    wait=False, raise UsageError naming the holder's pid."""
    from edgeforge_ext import console

    workdir = Path(workdir).expanduser().resolve()
    if workdir in _held:
        _held[workdir] += 1
        try:
            yield
        finally:
            _held[workdir] -= 1
        return

    hint = "choose another --workdir (or workdir in edgeforge.toml / EDGEFORGE_WORKDIR)"
    ensure_dir(workdir, "work directory", hint)
    try:
        fd = os.open(workdir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise UsageError(f"cannot use {workdir} as the work directory: {exc.strerror}", hint=hint) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            if not wait:
                raise UsageError(
                    f"another edgeforge-ext run (pid {pid}) is using {workdir}",
                    hint="wait for it to finish, or run again without --no-wait to wait for it",
                ) from None
            console.info(f"waiting for another edgeforge-ext run on {workdir} (pid {pid}) ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {what}\n".encode(), 0)
        _held[workdir] = 1
        try:
            yield
        finally:
            del _held[workdir]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the flock
