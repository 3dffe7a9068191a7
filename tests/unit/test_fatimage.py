"""The FAT directory reader against images made by mtools (FAT12, FAT16, FAT32), at an offset inside a file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgeforge_ext.iso.fat import FatError, FatImage
from tests.conftest import require

OFFSET = 3 * 2048  # as inside an ISO


def make(tmp_path: Path, fat_bits: int, sectors: int) -> Path:
    require(shutil.which("mformat") is not None, "mtools is not installed")
    img = tmp_path / f"fat{fat_bits}.img"
    with img.open("wb") as f:
        f.truncate(sectors * 512)
    subprocess.run(["mformat", "-i", str(img), "-T", str(sectors), "-h", "2", "-s", "32",
                    *(["-F"] if fat_bits == 32 else []), "::"], check=True, capture_output=True)
    src = tmp_path / "BOOTX64.EFI"
    src.write_bytes(b"MZ" + b"\0" * 5000)
    long_name = tmp_path / "a long file name.conf"
    long_name.write_text("x")
    for cmd in (["mmd", "-i", str(img), "::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries"],
                ["mcopy", "-i", str(img), str(src), "::/EFI/BOOT/BOOTX64.EFI"],
                ["mcopy", "-i", str(img), str(long_name), "::/loader/entries/a long file name.conf"]):
        subprocess.run(cmd, check=True, capture_output=True)
    # Many entries: the directory spans several clusters.
    for i in range(40):
        subprocess.run(["mcopy", "-i", str(img), str(long_name), f"::/loader/entries/entry-number-{i:03d}.conf"],
                       check=True, capture_output=True)
    inside = tmp_path / f"fat{fat_bits}.bin"
    inside.write_bytes(b"\xaa" * OFFSET + img.read_bytes())
    return inside


@pytest.mark.parametrize(("bits", "sectors"), [(12, 4096), (16, 65536), (32, 140000)])
def test_reads_directories_of_every_fat_type(tmp_path: Path, bits: int, sectors: int) -> None:
    path = make(tmp_path, bits, sectors)
    data = path.read_bytes()
    fat = FatImage(lambda offset, length: data[offset:offset + length], OFFSET)
    assert fat.bits == bits and fat.size == sectors * 512
    binary = fat.find("efi/boot/bootx64.efi")  # FAT names compare case-insensitively
    assert binary is not None and binary.size == 5002 and not binary.is_dir
    names = {e.name for e in fat.listdir("loader/entries")}
    assert "a long file name.conf" in names and "entry-number-039.conf" in names and len(names) == 41
    assert fat.find("EFI/BOOT/BOOTAA64.EFI") is None and fat.find("EFI/BOOT/BOOTX64.EFI/x") is None


def test_not_a_fat_image(tmp_path: Path) -> None:
    with pytest.raises(FatError):
        FatImage(lambda offset, length: b"\0" * length, 0)
