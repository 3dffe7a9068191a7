"""Image filesystems on disk: what FROM creates, what RUN runs in, what SAVE IMAGE hands to Docker.

Real Earthly keeps states in BuildKit; the double keeps each target's filesystem as a directory and runs
RUN in it with `chroot` (the container has CAP_SYS_CHROOT by default), as root, with the command's
variables as its environment, so absolute paths in an Earthfile mean what they mean in Earthly.

A "pulled" image holds busybox (its applets as symlinks), a root user, /tmp, and for ISO builder images
xorriso with its libraries: the files of the double's own image listed in tools/*.txt. They are hard
linked, never copied, so a FROM costs little.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator, Mapping

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.environ.get("EARTHLY_DOUBLE_TOOLS", os.path.join(HERE, "tools"))
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _listing(name: str) -> list[str]:
    try:
        with open(os.path.join(TOOLS, name), encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def _link_or_copy(src: str, dst: str) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def make_image(dest: str, name: str, *, iso_tools: bool) -> None:
    """The filesystem of a pulled image."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/lib", "usr/share", "etc", "root", "run",
              "dev", "proc", "home", "mnt", "opt", "var/log", "var/lib", "var/cache"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    tmp = os.path.join(dest, "tmp")
    os.makedirs(tmp, exist_ok=True)
    os.chmod(tmp, 0o1777)
    busybox = "/bin/busybox"
    if os.path.exists(busybox):
        _link_or_copy(busybox, os.path.join(dest, "bin/busybox"))
    for applet in _listing("busybox-applets.txt"):
        path = os.path.join(dest, applet.lstrip("/"))
        if not os.path.lexists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.symlink("/bin/busybox", path)
    if iso_tools:
        for tool in _listing("iso-tools.txt"):
            if os.path.exists(tool):
                _link_or_copy(tool, os.path.join(dest, tool.lstrip("/")))
        _script(os.path.join(dest, "usr/bin/build-iso"), BUILD_ISO)
    # Commands the real images have and CanvOS calls (Dockerfile: update-ca-certificates; +kairos-agent
    # saves /usr/bin/kairos-agent from a Kairos image).
    os.makedirs(os.path.join(dest, "usr/local/share/ca-certificates"), exist_ok=True)
    os.makedirs(os.path.join(dest, "etc/ssl/certs"), exist_ok=True)
    _script(os.path.join(dest, "usr/sbin/update-ca-certificates"),
            "cat /usr/local/share/ca-certificates/*.crt > /etc/ssl/certs/ca-certificates.crt 2>/dev/null; exit 0")
    if "kairos" in name:
        _script(os.path.join(dest, "usr/bin/kairos-agent"), 'echo "kairos-agent (test double)"')
    with open(os.path.join(dest, "etc/passwd"), "w", encoding="utf-8") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(dest, "etc/group"), "w", encoding="utf-8") as f:
        f.write("root:x:0:\n")
    with open(os.path.join(dest, "etc/os-release"), "w", encoding="utf-8") as f:
        f.write(f'NAME="earthly-double image"\nIMAGE="{name}"\n')


# What osbuilder's `build-iso` (Kairos osbuilder-tools /entrypoint.sh; AuroraBoot on CanvOS main) makes of
# an overlay, as far as the wrapper looks: a hybrid ISO with El Torito BIOS and UEFI entries, an isohybrid
# MBR and an EFI system partition (GRUB's images, from the double's own image), the overlay at its root.
# `build-iso --uefi-only` is the UKI form (enki build-uki): UEFI entry and ESP only, no BIOS boot, and an
# EFI image with systemd-boot's loader/ directory (AuroraBoot's UKI ISO boots systemd-boot), which is how
# `iso inspect` tells a UKI ISO without being told.
# Usage: build-iso [--uefi-only] VOLUME_LABEL OUTPUT.iso DIRECTORY
BUILD_ISO = r"""set -e
kit=/usr/share/earthly-double/grub
bios=1 efi=efi.img; [ "$1" = --uefi-only ] && { bios="" efi=efi-uki.img; shift; }
label=$1 out=$2 dir=$3
cp "$kit/$efi" "$dir/efi.img"
set -- -e efi.img -no-emul-boot -append_partition 2 0xef "$kit/$efi"
if [ -n "$bios" ]; then
    mkdir -p "$dir/boot/grub/i386-pc" && cp "$kit/eltorito.img" "$dir/boot/grub/i386-pc/"
    set -- --grub2-mbr "$kit/boot_hybrid.img" -b boot/grub/i386-pc/eltorito.img -no-emul-boot \
        -boot-load-size 4 -boot-info-table --grub2-boot-info -eltorito-alt-boot "$@"
fi
exec xorriso -as mkisofs -quiet -R -J -V "$label" "$@" -o "$out" "$dir"
"""


def _script(path: str, body: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"#!/bin/sh\n{body}\n")
    os.chmod(path, 0o755)


def copy_tree(src: str, dst: str) -> None:
    """A state handed on (FROM +target): a copy, with the big tool binaries hard linked."""
    tools = set()
    for path in ("/bin/busybox", *_listing("iso-tools.txt")):
        with contextlib.suppress(OSError):
            st = os.stat(path)
            tools.add((st.st_dev, st.st_ino))

    def copy(s: str, d: str) -> None:
        st = os.lstat(s)
        if (st.st_dev, st.st_ino) in tools:
            _link_or_copy(s, d)
        else:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, symlinks=True, copy_function=copy, dirs_exist_ok=True)


def inside(root: str, path: str) -> str:
    """The host path of an absolute path inside the image filesystem `root` (no escaping via ..)."""
    norm = os.path.normpath("/" + path)
    return os.path.join(root, norm.lstrip("/")) if norm != "/" else root


def run(root: str, workdir: str, script: str, env: Mapping[str, str], on_output: Callable[[bytes], None],
        *, shell: bool = True, argv: list[str] | None = None) -> int:
    """`/bin/sh -c script` (or argv) chrooted into root, in workdir; returns the exit code."""
    cmd = argv if argv is not None else ["/bin/sh", "-c", script]
    os.makedirs(inside(root, workdir), exist_ok=True)

    def enter() -> None:  # runs in the child, before exec
        os.chroot(root)
        os.chdir(workdir)

    try:
        proc = subprocess.Popen(cmd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=enter)
    except OSError as exc:
        on_output(f"/bin/sh: {exc.strerror}\n".encode())
        return 127
    assert proc.stdout is not None
    try:
        for chunk in iter(proc.stdout.readline, b""):
            on_output(chunk)
        return proc.wait()
    except BaseException:  # a signal cancelled the build: stop the command as BuildKit would
        proc.kill()
        proc.wait()
        raise


@contextlib.contextmanager
def secret_files(root: str, secrets: Mapping[str, bytes]) -> Iterator[None]:
    """RUN --secret: each secret as /run/secrets/<name>, mode 0444, only while the RUN runs
    (earthfile2llb/converter.go:2190-2206)."""
    made = []
    for name, data in secrets.items():
        path = inside(root, f"/run/secrets/{name}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o444)
        made.append(path)
    try:
        yield
    finally:
        for path in made:
            with contextlib.suppress(OSError):
                os.remove(path)


def image_tar(root: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for entry in sorted(os.listdir(root)):
            tar.add(os.path.join(root, entry), arcname=entry)
    return buf.getvalue()


def docker_import(root: str, ref: str, env: Mapping[str, str], workdir: str) -> tuple[int, str]:
    """SAVE IMAGE into the host's daemon through the mounted socket (Earthly loads images with the
    docker CLI, its container frontend: util/containerutil/docker_shell.go)."""
    changes: list[str] = []
    for k, v in env.items():
        changes += ["--change", f"ENV {k}={v}"]
    if workdir and workdir != "/":
        changes += ["--change", f"WORKDIR {workdir}"]
    proc = subprocess.run(["docker", "import", *changes, "-", ref], input=image_tar(root),
                          capture_output=True, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace").strip()


def docker_push(ref: str) -> tuple[int, str]:
    proc = subprocess.run(["docker", "push", ref], capture_output=True, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace").strip()
