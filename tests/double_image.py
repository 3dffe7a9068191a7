"""The Earthly test double as a Docker image, built in the test session from local files only (no pulls).

Layout (as the real earthly/earthly image: Earthfile v0.8.15 `earthly-docker:` ~450-466):

    /usr/bin/earthly-entrypoint.sh     ENTRYPOINT (tests/double/entrypoint.sh)
    /usr/bin/earthly                   the CLI: python3 -IS, package /usr/lib/earthly-double/double
    /usr/bin/captest, /usr/sbin/update-ca-certificates, /usr/bin/buildkitd, /usr/bin/entrypoint.sh
    /bin/busybox + its applets         sh, chown, chroot, hostname, sha256sum, ...
    /usr/bin/python3.X + the part of /usr/lib/python3.X the double imports (and the interpreter's libraries)
    /usr/local/bin/xorriso (+ libraries), /usr/local/bin/docker
    /usr/share/earthly-double/grub/     GRUB's boot images, for hybrid BIOS+UEFI ISOs (tests/bootable_iso.py)
    WORKDIR /workspace

The tag is `edgeforge-test/earthly-double:<first 12 hex of the sha256 of every input>`, so sessions with
different versions of the double never overwrite each other's image; an image already built is reused.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require

REPO = "edgeforge-test/earthly-double"
DOUBLE = Path(__file__).parent / "double"
# A reachable remote BuildKit in the double's world (any non-local tcp:// host answers; see
# tests/double/earthly.py). 127.0.0.1 would NOT do: Earthly takes it for a local BuildKit it must start.
DOUBLE_BUILDKIT_HOST = "tcp://buildkit.edgeforge.test:8372"
# The Earthly images CanvOS pins (earthly.sh): v4.4.x, and v4.5.3 and later.
REAL_EARTHLY_IMAGES = (
    "gcr.io/spectro-images-public/earthly/earthly:v0.8.5",
    "us-docker.pkg.dev/palette-images/third-party/edge/earthly/earthly:v0.8.15",
)
PKG = "/usr/lib/earthly-double/double"

_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "EARTHLY_IMAGE": "true",  # Earthfile v0.8.15 ~458
    "EARTHLY_DISABLE_REMOTE_REGISTRY_PROXY": "true",  # ~463
    "EARTHLY_TMP_DIR": "/tmp/earthly",  # buildkitd/Earthfile ~67
    "LD_LIBRARY_PATH": "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/lib:/usr/lib",
}


def _dockerfile() -> bytes:
    env = " ".join(f'{k}="{v}"' for k, v in _ENV.items())
    return (f"FROM scratch\nCOPY root/ /\nENV {env}\nWORKDIR /workspace\n"
            'ENTRYPOINT ["/usr/bin/earthly-entrypoint.sh"]\n').encode()


def libraries(binary: str) -> list[str]:
    """Shared libraries (and the loader) of a dynamic binary, by `ldd`; [] for a static one."""
    proc = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return []
    libs: list[str] = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            idx = parts.index("=>")
            if idx + 1 < len(parts) and parts[idx + 1].startswith("/"):
                libs.append(parts[idx + 1])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def system_python() -> str | None:
    """Debian's interpreter (/usr/bin/python3.11; another /usr/bin/python3.1x where that is what the
    distribution has)."""
    for minor in (11, 12, 13, 10):
        path = f"/usr/bin/python3.{minor}"
        if os.path.isfile(path) and os.path.isdir(f"/usr/lib/python3.{minor}"):
            return path
    return None


_COLLECT = r"""
import sys
sys.path.insert(0, sys.argv[1])
import double.earthly, double.interpreter, double.config, double.godotenv, double.world  # noqa
import encodings.latin_1, encodings.ascii, encodings.utf_8  # noqa
for name, mod in sorted(sys.modules.items()):
    f = getattr(mod, "__file__", None)
    if f:
        print(f)
"""


def stdlib_files(python: str, staging: str) -> list[str]:
    """The standard-library files the double imports, found by importing it with that interpreter."""
    proc = subprocess.run([python, "-IS", "-c", _COLLECT, staging], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"cannot import the double with {python}: {proc.stderr}")
    libdir = f"/usr/lib/{os.path.basename(python)}/"
    files = {f for f in proc.stdout.split() if f.startswith(libdir)}
    files.add(libdir + "os.py")  # the interpreter's landmark for its prefix
    return sorted(files)


def _docker_cli() -> str | None:
    candidates = [p for p in ("/usr/local/bin/docker", "/usr/bin/docker") if os.path.isfile(p)]
    for path in candidates:
        if not libraries(path):
            return path
    return candidates[0] if candidates else None


class _Context:
    """The build context: files added at their image path, hashed as they go."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w")
        self.digest = hashlib.sha256()
        self.seen: set[str] = set()

    def _info(self, dest: str, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo("root" + dest)
        info.mode = mode
        info.uid = info.gid = 0
        info.mtime = 0
        return info

    def data(self, dest: str, data: bytes, mode: int = 0o644, identity: bytes | None = None) -> None:
        """`identity` stands in for the data in the tag's hash where the data differs run to run for
        no reason that matters (a FAT image's volume serial and timestamps)."""
        if dest in self.seen:
            return
        self.seen.add(dest)
        info = self._info(dest, mode)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))
        self.digest.update(f"{dest}\0{mode:o}\0{len(data)}\0".encode())
        self.digest.update(data if identity is None else identity)

    def file(self, src: str, dest: str, mode: int | None = None) -> None:
        real = os.path.realpath(src)
        with open(real, "rb") as f:
            data = f.read()
        self.data(dest, data, mode if mode is not None else (os.stat(real).st_mode & 0o777))

    def symlink(self, dest: str, target: str) -> None:
        if dest in self.seen:
            return
        self.seen.add(dest)
        info = self._info(dest, 0o777)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        self.tar.addfile(info)
        self.digest.update(f"{dest}\0->{target}\0".encode())

    def directory(self, dest: str, mode: int = 0o755) -> None:
        if dest in self.seen:
            return
        self.seen.add(dest)
        info = self._info(dest, mode)
        info.type = tarfile.DIRTYPE
        self.tar.addfile(info)
        self.digest.update(f"{dest}\0dir\0{mode:o}\0".encode())

    def finish(self, dockerfile: bytes) -> tuple[io.BytesIO, str]:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        self.tar.addfile(info, io.BytesIO(dockerfile))
        self.digest.update(dockerfile)
        self.tar.close()
        self.buf.seek(0)
        return self.buf, self.digest.hexdigest()[:12]


def _package_files() -> Iterator[tuple[Path, str]]:
    for path in sorted(DOUBLE.glob("*.py")):
        yield path, f"{PKG}/{path.name}"


GRUB_KIT = "/usr/share/earthly-double/grub"


def _add_grub_boot_kit(ctx: _Context) -> list[str]:
    """GRUB's boot images (BIOS El Torito image, EFI FAT image with BOOTX64.EFI, isohybrid MBR) for the ISO
    builder images of the double's world: the real osbuilder-tools / AuroraBoot images carry GRUB and make
    hybrid BIOS+UEFI ISOs, which `build`'s ISO inspection requires. Their paths, for iso-tools.txt."""
    from tests.bootable_iso import find_kit, standin_boot_kit

    kit = standin_boot_kit()
    why = find_kit()
    require(kit is not None, f"no GRUB boot images for the Earthly double's ISO builder: {why}")
    assert kit is not None
    # efi.img (made by mformat) differs run to run; GRUB's version shows in eltorito.img, hashed whole.
    for name in ("efi.img", "efi-uki.img"):
        ctx.data(f"{GRUB_KIT}/{name}", kit[name], identity=name.encode() + b" of " + kit["eltorito.img"])
    for name in ("eltorito.img", "boot_hybrid.img"):
        ctx.data(f"{GRUB_KIT}/{name}", kit[name])
    return [f"{GRUB_KIT}/{name}" for name in ("efi.img", "efi-uki.img", "eltorito.img", "boot_hybrid.img")]


def build_context() -> tuple[io.BytesIO, str]:
    """(tar context, tag) of the double's image."""
    busybox = shutil.which("busybox") or "/usr/bin/busybox"
    xorriso = shutil.which("xorriso")
    docker_cli = _docker_cli()
    python = system_python()
    require(os.path.isfile(busybox) and not libraries(busybox), "busybox-static is not installed")
    require(xorriso is not None, "xorriso is not installed")
    require(docker_cli is not None, "no docker CLI binary to put into the Earthly double image")
    require(python is not None, "no Debian python3 interpreter (python3-minimal) to put into the Earthly double image")
    assert xorriso is not None and docker_cli is not None and python is not None
    ctx = _Context()
    for d, mode in (("/tmp", 0o1777), ("/workspace", 0o755), ("/root", 0o700), ("/run", 0o755),
                    ("/var/log", 0o755), ("/etc/ssl/certs", 0o755), ("/usr/local/share/ca-certificates", 0o755)):
        ctx.directory(d, mode)
    ctx.data("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    ctx.data("/etc/group", b"root:x:0:\n")
    # busybox and its applets (sh, chown, chroot, ...)
    ctx.file(busybox, "/bin/busybox", 0o755)
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        ctx.symlink("/" + applet, "/bin/busybox")
    # the interpreter and the part of its standard library the double needs
    staging_parent = Path(os.environ.get("TMPDIR", "/tmp")) / f"earthly-double-staging-{os.getpid()}"
    shutil.rmtree(staging_parent, ignore_errors=True)
    shutil.copytree(DOUBLE, staging_parent / "double", ignore=shutil.ignore_patterns("__pycache__"))
    try:
        stdlib = stdlib_files(python, str(staging_parent))
    finally:
        shutil.rmtree(staging_parent, ignore_errors=True)
    ctx.file(python, python, 0o755)
    ctx.symlink("/usr/bin/python3", os.path.basename(python))
    dynamic: list[str] = [python]
    for path in stdlib:
        ctx.file(path, path, 0o644)
        if path.endswith(".so"):
            dynamic.append(path)
    # tools: xorriso (for the ISO builder images of the double's world) and the docker CLI
    ctx.file(xorriso, "/usr/local/bin/xorriso", 0o755)
    ctx.file(docker_cli, "/usr/local/bin/docker", 0o755)
    iso_tools = ["/usr/local/bin/xorriso", *_add_grub_boot_kit(ctx)]
    for binary in (*dynamic, xorriso):
        for lib in libraries(binary):
            ctx.file(lib, lib, 0o755)
            if binary == xorriso:
                iso_tools.append(lib)
    # the double
    for src, dest in _package_files():
        ctx.file(str(src), dest, 0o644)
    ctx.data(f"{PKG}/tools/busybox-applets.txt", ("\n".join("/" + a for a in applets) + "\n").encode())
    ctx.data(f"{PKG}/tools/iso-tools.txt", ("\n".join(iso_tools) + "\n").encode())
    launcher = (f"#!/usr/bin/python3 -IS\nimport sys\nsys.path.insert(0, {os.path.dirname(PKG)!r})\n"
                "from double.earthly import main\nsys.exit(main())\n").encode()
    ctx.data("/usr/bin/earthly", launcher, 0o755)
    ctx.file(str(DOUBLE / "entrypoint.sh"), "/usr/bin/earthly-entrypoint.sh", 0o755)
    ctx.file(str(DOUBLE / "shims" / "captest"), "/usr/bin/captest", 0o755)
    ctx.file(str(DOUBLE / "shims" / "update-ca-certificates"), "/usr/sbin/update-ca-certificates", 0o755)
    ctx.file(str(DOUBLE / "shims" / "buildkitd"), "/usr/bin/buildkitd", 0o755)
    ctx.file(str(DOUBLE / "shims" / "buildkit-entrypoint.sh"), "/usr/bin/entrypoint.sh", 0o755)
    return ctx.finish(_dockerfile())


def ensure_image(client: Any) -> str:
    """Build the image unless this exact version is already in the daemon; returns its tag."""
    from docker.errors import ImageNotFound

    ctx, digest = build_context()
    tag = f"{REPO}:{digest}"
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
    client.images.build(fileobj=ctx, custom_context=True, tag=tag, rm=True, forcerm=True, pull=False)
    return tag


@pytest.fixture(scope="session")
def standin_earthly_image(docker_client: Any) -> str:
    """The Earthly double's image tag (the fixture keeps the name tests have always used)."""
    return ensure_image(docker_client)


@pytest.fixture(scope="session")
def real_earthly_names(docker_client: Any, standin_earthly_image: str) -> Callable[[], tuple[str, ...]]:
    """Tag the double under the names CanvOS pins, so the tool's default (tag-derived) Earthly image is
    present offline. Those names are shared by every session on this daemon: call the returned function
    again right before a test relies on them (it re-tags and returns the names)."""
    def tag() -> tuple[str, ...]:
        image = docker_client.images.get(standin_earthly_image)
        for ref in REAL_EARTHLY_IMAGES:
            repo, _, version = ref.rpartition(":")
            image.tag(repo, tag=version)
        return REAL_EARTHLY_IMAGES

    tag()
    return tag


if __name__ == "__main__":  # build it by hand: python -m tests.double_image
    import docker

    print(ensure_image(docker.from_env()))
    sys.exit(0)
