"""Small bootable installer ISOs made from Debian's packages, and broken variants of them.

The ISO is laid out like a CanvOS installer where the boot checks look: volume label COS_LIVE, GRUB for
BIOS and UEFI (grub-mkrescue: El Torito BIOS + UEFI entries, isohybrid MBR, GPT with the EFI system
partition), user-data at /files-iso/config.yaml. It boots the distribution kernel (/boot/vmlinuz-*) with
a busybox initramfs whose /init loads the CD drivers, reads /files-iso/config.yaml from the CD, prints
its sha256 and a login prompt on the serial console (what a Kairos live system shows there) and powers
off. Variants:

  good                everything above
  no-efi              BIOS only: no El Torito UEFI entry, no EFI system partition (grub-mkrescue -d i386-pc)
  no-bios             UEFI only: no El Torito BIOS entry, no MBR boot code (grub-mkrescue -d x86_64-efi: its
                      first sector starts with an Apple partition map's block 0, "ER", and holds no code)
  efi-without-binary  the UEFI entry's FAT image without EFI/BOOT/*.EFI (deleted with mtools)
  no-user-data        no /files-iso/config.yaml
  silent              boots, but /init never prints the login prompt (a hung installer)
  uefi-boot-fails     boots under BIOS; under UEFI /init prints immucore's failure banner (KAIROS BOOT FAILED)
                      and powers off: GRUB hands the kernel its platform ($grub_platform), the rest is `good`

uefi_only_iso() makes another shape, not bootable to a login: the UEFI-only ISO of a UKI build.

Needs: grub-mkrescue (grub-common, grub-pc-bin, grub-efi-amd64-bin), xorriso, mtools, a kernel in /boot
(linux-image-amd64) with its modules, busybox-static. No root.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

VARIANTS = ("good", "no-efi", "no-bios", "efi-without-binary", "no-user-data", "silent", "uefi-boot-fails")
VOLUME_LABEL = "COS_LIVE"
USER_DATA = b"#cloud-config\nstylus:\n  site:\n    name: edgeforge-boot-fixture\n"
# CD drivers for QEMU's pc (PIIX IDE) and q35 (AHCI) machines, in load order.
MODULES = ("drivers/scsi/scsi_common", "drivers/scsi/scsi_mod", "drivers/ata/libata", "drivers/ata/ata_piix",
           "drivers/ata/libahci", "drivers/ata/ahci", "drivers/cdrom/cdrom", "drivers/scsi/sr_mod",
           "fs/isofs/isofs")

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "edgeforge-fixture: init started"
for m in MODULES; do insmod /lib/modules/$m.ko 2>/dev/null; done
for i in $(seq 1 100); do [ -b /dev/sr0 ] && break; sleep 0.1; done
if mount -t iso9660 -o ro /dev/sr0 /mnt; then
  if [ -f /mnt/files-iso/config.yaml ]; then
    echo "edgeforge-fixture: user-data sha256 $(sha256sum /mnt/files-iso/config.yaml | cut -d' ' -f1)"
  else
    echo "edgeforge-fixture: user-data missing"
  fi
else
  echo "edgeforge-fixture: cannot mount the CD"
fi
case " $(cat /proc/cmdline) " in
  *" edgeforge.fixture=silent "*) while :; do sleep 3600; done ;;
  *" edgeforge.fixture=uefi-boot-fails-efi "*) echo "KAIROS BOOT FAILED (edgeforge fixture: fails under UEFI)"
    sleep 1; poweroff -f ;;
esac
printf '\\nedgeforge-fixture login: '
sleep 1
poweroff -f
"""

GRUB_CFG = """set default=0
set timeout=0
menuentry "Palette eXtended Kubernetes Edge Installer (edgeforge test fixture)" {
    echo Loading kernel...
    linux /boot/kernel cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ console=tty1 console=ttyS0 panic=-1 \
edgeforge.fixture=VARIANT
    echo Loading initrd...
    initrd /boot/initrd
}
"""


@dataclass(frozen=True)
class Kit:
    kernel: Path
    modules: Path  # /lib/modules/<version>/kernel
    busybox: Path
    grub_mkrescue: str
    mdel: str


def find_kit() -> Kit | str:
    """The tools and files the ISOs are made from, or why they cannot be made here."""
    missing = [tool for tool in ("grub-mkrescue", "xorriso", "mformat", "mdel") if shutil.which(tool) is None]
    for platform in ("i386-pc", "x86_64-efi"):
        if not Path("/usr/lib/grub", platform).is_dir():
            missing.append(f"/usr/lib/grub/{platform} (grub-pc-bin / grub-efi-amd64-bin)")
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    kernel = next((k for k in reversed(kernels)
                   if (Path("/lib/modules") / k.name.removeprefix("vmlinuz-") / "kernel").is_dir()), None)
    if kernel is None:
        missing.append("a kernel in /boot with its modules (linux-image-amd64)")
    busybox = next((p for p in (Path("/bin/busybox"), Path("/usr/bin/busybox")) if p.is_file()), None)
    if busybox is None:
        missing.append("busybox (busybox-static)")
    if missing or kernel is None or busybox is None:
        return "cannot make the boot fixture ISOs, missing: " + ", ".join(missing)
    modules = Path("/lib/modules") / kernel.name.removeprefix("vmlinuz-") / "kernel"
    absent = [m for m in MODULES if not (modules / f"{m}.ko").is_file()]
    if absent:
        return f"the kernel's modules are not all plain .ko files: {', '.join(absent)}"
    return Kit(kernel, modules, busybox, str(shutil.which("grub-mkrescue")), str(shutil.which("mdel")))


def cache_key(kit: Kit, variant: str, user_data: bytes) -> str:
    """Changes when anything the ISO is made from changes: this file, the kernel, busybox, the modules."""
    digest = hashlib.sha256()
    for path in (Path(__file__), kit.kernel, kit.busybox, *(kit.modules / f"{m}.ko" for m in MODULES)):
        digest.update(path.read_bytes())
    digest.update(subprocess.run([kit.grub_mkrescue, "--version"], capture_output=True, check=True).stdout)
    digest.update(variant.encode() + b"\0" + user_data)
    return digest.hexdigest()[:24]


def build_iso(kit: Kit, variant: str, out: Path, user_data: bytes = USER_DATA) -> Path:
    if variant not in VARIANTS:
        raise ValueError(f"unknown fixture variant {variant!r}")
    with tempfile.TemporaryDirectory(prefix="edgeforge-fixture-") as tmp:
        tree = Path(tmp) / "tree"
        (tree / "boot" / "grub").mkdir(parents=True)
        shutil.copyfile(kit.kernel, tree / "boot" / "kernel")
        (tree / "boot" / "initrd").write_bytes(initramfs(kit))
        # GRUB expands $grub_platform (pc under BIOS, efi under UEFI) on the kernel command line.
        fixture = "uefi-boot-fails-$grub_platform" if variant == "uefi-boot-fails" else variant
        (tree / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG.replace("VARIANT", fixture))
        if variant != "no-user-data":
            (tree / "files-iso").mkdir()
            (tree / "files-iso" / "config.yaml").write_bytes(user_data)
        platform = {"no-efi": ["-d", "/usr/lib/grub/i386-pc"],
                    "no-bios": ["-d", "/usr/lib/grub/x86_64-efi"]}.get(variant, [])
        partial = Path(tmp) / "out.iso"
        _run([kit.grub_mkrescue, *platform, "-o", str(partial), str(tree), "--", "-volid", VOLUME_LABEL])
        if variant == "efi-without-binary":
            _delete_efi_binaries(kit, partial)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(partial), out)
    return out


def uefi_only_iso(boot_kit: dict[str, bytes], out: Path, *, uki: bool, user_data: bytes = USER_DATA) -> Path:
    """A UEFI-only ISO as the Earthly double's `build-iso --uefi-only` makes the UKI form (tests/double/
    rootfs.py): one El Torito entry, UEFI, for GRUB's EFI image (EFI/BOOT/BOOTX64.EFI), the same image as the
    EFI system partition (-append_partition 2 0xef), no BIOS entry, no isohybrid MBR; user-data at the root,
    /config.yaml, where +build-uki-iso puts it. uki=True adds systemd-boot's loader/ directory (loader.conf,
    entries/) to the EFI image, what a UKI ISO's EFI image holds; uki=False leaves it out, so the two ISOs
    differ in that alone. `boot_kit` is standin_boot_kit()'s. Needs xorriso and mtools."""
    with tempfile.TemporaryDirectory(prefix="edgeforge-uefi-only-") as tmp:
        base = Path(tmp)
        tree = base / "tree"
        tree.mkdir()
        (tree / "config.yaml").write_bytes(user_data)
        efi = tree / "efi.img"
        efi.write_bytes(uki_efi_image(boot_kit["efi.img"]) if uki else boot_kit["efi.img"])
        partial = base / "out.iso"
        _run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "UKI_ISO", "-e", "efi.img", "-no-emul-boot",
              "-append_partition", "2", "0xef", str(efi), "-o", str(partial), str(tree)])
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(partial), out)
    return out


def uki_efi_image(efi: bytes) -> bytes:
    """GRUB's EFI FAT image with systemd-boot's loader/ directory (loader.conf, entries/) added: where a UKI
    ISO's EFI image differs from a GRUB one as far as `iso inspect` looks (AuroraBoot's build-uki puts
    systemd-boot there). Needs mtools."""
    with tempfile.TemporaryDirectory(prefix="edgeforge-uki-efi-") as tmp:
        image, conf = Path(tmp) / "efi.img", Path(tmp) / "loader.conf"
        image.write_bytes(efi)
        conf.write_text("timeout 0\ndefault @saved\n")
        _run(["mmd", "-i", str(image), "::/loader", "::/loader/entries"])
        _run(["mcopy", "-i", str(image), str(conf), "::/loader/loader.conf"])
        return image.read_bytes()


def _delete_efi_binaries(kit: Kit, iso: Path) -> None:
    """Delete EFI/BOOT/*.EFI inside the UEFI boot image in place (mtools reads a FAT at image@@offset)."""
    report = _run(["xorriso", "-indev", str(iso), "-report_el_torito", "plain"])
    found = re.search(r"El Torito boot img :\s+\d+\s+UEFI\s+\S+\s+\S+\s+\S+\s+\S+\s+\d+\s+(\d+)", report)
    assert found, report
    fat = f"{iso}@@{int(found.group(1)) * 2048}"
    listing = _run(["mdir", "-b", "-i", fat, "::/EFI/BOOT"])
    binaries = [line.strip() for line in listing.splitlines() if line.strip().upper().endswith(".EFI")]
    assert binaries, listing
    _run([kit.mdel, "-i", fat, *binaries])


def initramfs(kit: Kit) -> bytes:
    """A gzip'd newc cpio: busybox, the CD modules, /init, /dev/console."""
    archive = _Cpio()
    for directory in ("bin", "dev", "proc", "sys", "mnt", "lib", "lib/modules"):
        archive.add(directory, 0o040755, b"")
    archive.add("dev/console", 0o020600, b"", rdev=(5, 1))
    archive.add("bin/busybox", 0o100755, kit.busybox.read_bytes())
    names = []
    for module in MODULES:
        name = Path(module).name
        names.append(name)
        archive.add(f"lib/modules/{name}.ko", 0o100644, (kit.modules / f"{module}.ko").read_bytes())
    archive.add("init", 0o100755, INIT.replace("MODULES", " ".join(names)).encode())
    return gzip.compress(archive.finish(), compresslevel=1)


class _Cpio:
    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.inode = 1

    def add(self, name: str, mode: int, data: bytes, rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = (self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        self.inode += 1
        self.out.write(b"070701" + "".join(f"{v:08x}" for v in fields).encode() + encoded)
        self._pad()
        self.out.write(data)
        self._pad()

    def _pad(self) -> None:
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def finish(self) -> bytes:
        self.add("TRAILER!!!", 0, b"")
        return self.out.getvalue()


def _run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout + done.stderr


def standin_boot_kit() -> dict[str, bytes] | None:
    """GRUB's boot images for an ISO made by `xorriso -as mkisofs` (the Earthly stand-in's): the BIOS El
    Torito image, the EFI FAT image holding EFI/BOOT/BOOTX64.EFI (and its UKI form, with loader/), and the
    isohybrid MBR. None when GRUB's
    packages are missing. Taken from a grub-mkrescue image so they are exactly what GRUB ships."""
    if isinstance(find_kit(), str):
        return None
    with tempfile.TemporaryDirectory(prefix="edgeforge-bootkit-") as tmp:
        base = Path(tmp)
        (base / "tree" / "boot" / "grub").mkdir(parents=True)
        (base / "tree" / "boot" / "grub" / "grub.cfg").write_text("set timeout=0\n")
        _run(["grub-mkrescue", "-o", str(base / "skeleton.iso"), str(base / "tree")])
        _run(["xorriso", "-osirrox", "on", "-indev", str(base / "skeleton.iso"),
              "-extract", "/boot/grub/i386-pc/eltorito.img", str(base / "eltorito.img"),
              "-extract", "/efi.img", str(base / "efi.img")])
        efi = (base / "efi.img").read_bytes()
        return {"eltorito.img": (base / "eltorito.img").read_bytes(), "efi.img": efi,
                "efi-uki.img": uki_efi_image(efi),
                "boot_hybrid.img": Path("/usr/lib/grub/i386-pc/boot_hybrid.img").read_bytes()}
