"""The stand-in Earthly image, built in the test session from local files (no pulls are possible).

`FROM scratch` + Debian's busybox-static + the host's xorriso (or genisoimage) with its shared
libraries + a docker CLI + `tests/standin/earthly.sh` as `/usr/bin/earthly` (the entrypoint). See
that script for what it does and the knobs it takes (STANDIN_FAIL, STANDIN_LOG_LINES, ...).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require

STANDIN_IMAGE = "edgeforge-test/earthly-standin:latest"
SCRIPT = Path(__file__).parent / "standin" / "earthly.sh"
# Unprivileged, as with a remote BuildKit: the stand-in only checks that the variable is set.
STANDIN_BUILDKIT_HOST = "tcp://127.0.0.1:8372"

DOCKERFILE = b"""FROM scratch
COPY root/ /
RUN ["/bin/busybox", "mkdir", "-p", "/usr/bin", "/sbin", "/usr/sbin", "/tmp", "/workspace"]
RUN ["/bin/busybox", "--install", "-s"]
RUN ["/bin/busybox", "chmod", "1777", "/tmp"]
ENV LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/lib:/usr/lib
WORKDIR /workspace
ENTRYPOINT ["/usr/bin/earthly"]
"""


def _libraries(binary: str) -> list[str]:
    """Shared libraries (and the loader) of a dynamic binary, by `ldd`; [] for a static one."""
    proc = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if proc.returncode != 0:  # "not a dynamic executable"
        return []
    libs: list[str] = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            idx = parts.index("=>")
            if idx + 1 < len(parts) and parts[idx + 1].startswith("/"):
                libs.append(parts[idx + 1])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])  # the loader, e.g. /lib64/ld-linux-x86-64.so.2
    return libs


def _add(tar: tarfile.TarFile, src: str, dest: str, mode: int = 0o755) -> None:
    """Add the real file behind `src` (symlinks followed) at `root/<dest>`."""
    real = os.path.realpath(src)
    info = tar.gettarinfo(real, arcname="root" + dest)
    info.mode = mode
    info.uid = info.gid = 0
    with open(real, "rb") as f:
        tar.addfile(info, f)


def _docker_cli() -> str | None:
    candidates = [p for p in ("/usr/local/bin/docker", "/usr/bin/docker") if os.path.isfile(p)]
    # A static binary needs nothing else; prefer it.
    for path in candidates:
        if not _libraries(path):
            return path
    return candidates[0] if candidates else None


def build_context() -> io.BytesIO:
    busybox = shutil.which("busybox") or "/usr/bin/busybox"
    iso_tool = shutil.which("xorriso") or shutil.which("genisoimage")
    docker_cli = _docker_cli()
    require(os.path.isfile(busybox), "busybox-static is not installed")
    require(iso_tool is not None, "xorriso or genisoimage is not installed")
    require(docker_cli is not None, "no docker CLI binary to put into the stand-in image")
    assert iso_tool is not None and docker_cli is not None
    require(not _libraries(busybox), f"{busybox} is not static (install busybox-static)")
    ctx = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=ctx, mode="w") as tar:
        _add(tar, busybox, "/bin/busybox")
        _add(tar, iso_tool, "/usr/local/bin/" + os.path.basename(iso_tool))
        _add(tar, docker_cli, "/usr/local/bin/docker")
        for binary in (iso_tool, docker_cli):
            for lib in _libraries(binary):
                if lib not in seen:
                    seen.add(lib)
                    _add(tar, lib, lib)
        _add(tar, str(SCRIPT), "/usr/bin/earthly")
        _add_boot_kit(tar)
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(DOCKERFILE)
        tar.addfile(info, io.BytesIO(DOCKERFILE))
    ctx.seek(0)
    return ctx


def _add_boot_kit(tar: tarfile.TarFile) -> None:
    """GRUB's boot images, so the stand-in's ISO has the El Torito entries and hybrid layout that the
    collect step's `iso inspect` requires (it still boots no kernel)."""
    from tests.bootable_iso import standin_boot_kit

    for name, data in (standin_boot_kit() or {}).items():
        info = tarfile.TarInfo(f"root/usr/share/edgeforge-standin/boot/{name}")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="session")
def standin_earthly_image(docker_client: Any) -> str:
    """`edgeforge-test/earthly-standin:latest`, built once per session through the Docker SDK."""
    docker_client.images.build(fileobj=build_context(), custom_context=True, tag=STANDIN_IMAGE, rm=True,
                               forcerm=True, pull=False)
    return STANDIN_IMAGE
