"""Benchmark: `iso inspect` of a generated 2 GB hybrid installer ISO, against baselines measured in the same run.

The ISO is made here by xorriso like the stand-in's: GRUB's El Torito BIOS and UEFI images, isohybrid MBR,
the EFI image as MBR partition 2, user-data at /files-iso/config.yaml, and a 2 GB sparse rootfs.squashfs
(the size of a real CanvOS ISO). Baselines: `xorriso -indev ISO -report_el_torito plain` (reads the same
boot records) and `sha256sum ISO` (what `build` already does to every ISO). Target: inspect < 5 s.

    .venv/bin/python bench/iso_inspect.py [--size-gb 2]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bootable_iso import USER_DATA, standin_boot_kit  # noqa: E402

TARGET = 5.0


def make_iso(base: Path, size_gb: float) -> Path:
    kit = standin_boot_kit()
    if kit is None:
        raise SystemExit("GRUB's packages are missing (grub-pc-bin grub-efi-amd64-bin grub-common mtools xorriso)")
    root, boot = base / "root", base / "kit"
    (root / "boot" / "grub" / "i386-pc").mkdir(parents=True)
    (root / "files-iso").mkdir()
    boot.mkdir()
    for name, data in kit.items():
        (boot / name).write_bytes(data)
    shutil.copyfile(boot / "eltorito.img", root / "boot" / "grub" / "i386-pc" / "eltorito.img")
    shutil.copyfile(boot / "efi.img", root / "efi.img")
    (root / "files-iso" / "config.yaml").write_bytes(USER_DATA)
    with (root / "rootfs.squashfs").open("wb") as f:
        f.truncate(int(size_gb * 1024**3))  # sparse on disk; xorriso writes it out in full
    iso = base / "big.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "COS_LIVE",
                    "--grub2-mbr", str(boot / "boot_hybrid.img"), "-b", "boot/grub/i386-pc/eltorito.img",
                    "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", "--grub2-boot-info",
                    "-eltorito-alt-boot", "-e", "efi.img", "-no-emul-boot",
                    "-append_partition", "2", "0xef", str(boot / "efi.img"), "-o", str(iso), str(root)],
                   check=True, capture_output=True)
    return iso


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0)
    args = parser.parse_args()
    if shutil.which("xorriso") is None:
        print("xorriso is not installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-iso-") as tmp:
        base = Path(tmp)
        started = time.perf_counter()
        iso = make_iso(base, args.size_gb)
        print(f"generated {iso.stat().st_size / 1024**3:.2f} GiB ISO in {time.perf_counter() - started:.1f}s")
        user_data = base / "user-data"
        user_data.write_bytes(USER_DATA)

        from edgeforge_ext.iso.inspect import Expected, inspect_iso

        expected = Expected(hashlib.sha256(USER_DATA).hexdigest())
        inspect_iso(iso, expected)  # warm the imports; the page cache is warm from writing the ISO
        started = time.perf_counter()
        result = inspect_iso(iso, expected)
        in_process = time.perf_counter() - started
        if not result.ok:
            print(f"inspect failed: {[f.detail for f in result.failed]}", file=sys.stderr)
            return 1
        cli = timed([str(ROOT / ".venv" / "bin" / "edgeforge-ext"), "iso", "inspect", str(iso),
                     "--user-data", str(user_data)])
        xorriso = timed(["xorriso", "-indev", str(iso), "-report_el_torito", "plain"])
        sha = timed(["sha256sum", str(iso)])
    print(f"iso inspect, in-process ({len(result.findings)} checks):  {in_process:.3f}s")
    print(f"edgeforge-ext iso inspect (CLI process):      {cli:.3f}s")
    print(f"xorriso -report_el_torito plain (baseline):   {xorriso:.3f}s  (inspect CLI = {cli / xorriso:.2f}x)")
    print(f"sha256sum of the ISO (baseline):              {sha:.3f}s  (inspect CLI = {cli / sha:.3f}x)")
    ok = cli < TARGET
    print(f"target: iso inspect < {TARGET:.0f}s for a {args.size_gb:g} GB ISO: {'OK' if ok else 'OVER TARGET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
