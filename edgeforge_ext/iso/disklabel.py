"""The MBR and GPT at the start of a hybrid ISO: what a machine sees when the ISO is written to a USB stick.

BIOS boots a USB stick through the MBR's boot code; UEFI looks for an EFI system partition (GPT type
C12A7328-F81F-11D2-BA4B-00A0C93EC93B, or MBR type 0xEF) holding EFI/BOOT/BOOTX64.EFI.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from edgeforge_ext.iso.fat import Reader

SECTOR = 512
ESP_GUID = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
MBR_ESP_TYPE = 0xEF
_MAX_GPT_ENTRIES = 1024


@dataclass(frozen=True)
class Partition:
    scheme: str  # "mbr" | "gpt"
    number: int  # 1-based, as fdisk and xorriso count
    type: str  # "0xef" for MBR, the type GUID for GPT
    start: int  # bytes from the start of the image
    size: int  # bytes
    name: str = ""

    @property
    def is_esp(self) -> bool:
        return self.type in (f"0x{MBR_ESP_TYPE:02x}", str(ESP_GUID))

    def as_json(self) -> dict[str, object]:
        return {"scheme": self.scheme, "number": self.number, "type": self.type, "start": self.start,
                "size": self.size, "name": self.name, "efi_system": self.is_esp}


@dataclass(frozen=True)
class DiskLabel:
    mbr_signature: bool  # 0x55AA at byte 510
    mbr_boot_code: bool  # the first 440 bytes hold code (an isohybrid MBR), not zeros
    mbr: tuple[Partition, ...]
    gpt: tuple[Partition, ...] | None  # None: no GPT header ("EFI PART") at LBA 1

    @property
    def partitions(self) -> tuple[Partition, ...]:
        return self.mbr + (self.gpt or ())

    def efi_system_partitions(self) -> list[Partition]:
        return [p for p in self.partitions if p.is_esp]


def read_label(read: Reader) -> DiskLabel:
    head = read(0, 2 * SECTOR)
    if len(head) < SECTOR:
        return DiskLabel(False, False, (), None)
    signature = head[510:512] == b"\x55\xaa"
    boot_code = signature and _has_boot_code(head[:440])
    mbr: list[Partition] = []
    if signature:
        for i in range(4):
            status, ptype, lba, count = struct.unpack_from("<B3xB3xII", head, 446 + 16 * i)
            if ptype != 0 and count and status in (0x00, 0x80):
                mbr.append(Partition("mbr", i + 1, f"0x{ptype:02x}", lba * SECTOR, count * SECTOR))
    return DiskLabel(signature, boot_code, tuple(mbr), _gpt(read, head))


def _has_boot_code(code: bytes) -> bool:
    """The MBR's code area holds something besides zeros and an Apple partition map's block 0. xorriso (and so
    grub-mkrescue) starts an image that has an APM with "ER", its block size and a two-byte jump ("ER\\x08\\x00
    \\xeb\\x02\\xff\\xff"); with BIOS boot code the code follows (an isohybrid MBR), with none (a UEFI-only
    grub-mkrescue ISO) zeros do."""
    if code[:2] == b"ER":
        code = code[8:]
    return any(code)


def _gpt(read: Reader, head: bytes) -> tuple[Partition, ...] | None:
    header = head[SECTOR:2 * SECTOR]
    if len(header) < 92 or header[:8] != b"EFI PART":
        return None
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    if entry_size < 128 or count == 0:
        return ()
    count = min(count, _MAX_GPT_ENTRIES)
    raw = read(entries_lba * SECTOR, count * entry_size)
    found: list[Partition] = []
    for i in range(len(raw) // entry_size):
        entry = raw[i * entry_size:(i + 1) * entry_size]
        if not any(entry[:16]):
            continue  # unused slot
        first, last = struct.unpack_from("<QQ", entry, 32)
        name = entry[56:128].decode("utf-16-le", "replace").split("\0")[0]
        found.append(Partition("gpt", i + 1, str(uuid.UUID(bytes_le=bytes(entry[:16]))), first * SECTOR,
                               (last - first + 1) * SECTOR if last >= first else 0, name))
    return tuple(found)
