"""Read the directory tree of a FAT12/16/32 image that sits inside a larger file (an ISO's EFI system image).

Read-only and bounded: the boot sector, the FAT and directory clusters, never file contents. Written here
instead of taken from a library because we only need directory listings at an offset inside the ISO, with
no extraction; pyfatfs would add PyFilesystem2 and wants a file it owns.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

Reader = Callable[[int, int], bytes]  # (offset, length) -> bytes, short at the end of the file

_MAX_FAT_BYTES = 32 * 1024 * 1024  # a 2 TB FAT32 would need more; an ESP never does
_MAX_DIR_ENTRIES = 65536


class FatError(Exception):
    """The bytes are not a FAT file system we can read."""


@dataclass(frozen=True)
class FatEntry:
    name: str  # the long name when there is one, else the 8.3 name
    is_dir: bool
    size: int
    cluster: int


class FatImage:
    def __init__(self, read: Reader, offset: int = 0) -> None:
        self._read = read
        self._offset = offset
        boot = read(offset, 512)
        if len(boot) < 512 or boot[510:512] != b"\x55\xaa":
            raise FatError("no FAT boot sector (no 0x55AA signature)")
        (self.sector_size, self._per_cluster, reserved, fats, root_entries, total16, _media, fat16_size) = \
            struct.unpack_from("<HBHBHHBH", boot, 11)
        total32, fat32_size = struct.unpack_from("<II", boot, 32)
        if self.sector_size not in (512, 1024, 2048, 4096) or self._per_cluster == 0 \
                or self._per_cluster & (self._per_cluster - 1) or fats == 0 or reserved == 0:
            raise FatError("the boot sector does not describe a FAT file system")
        fat_sectors = fat16_size or fat32_size
        self.total_sectors = total16 or total32
        root_sectors = (root_entries * 32 + self.sector_size - 1) // self.sector_size
        self._fat_start = reserved * self.sector_size
        self._root_start = (reserved + fats * fat_sectors) * self.sector_size
        self._root_bytes = root_sectors * self.sector_size
        self._data_start = self._root_start + self._root_bytes
        data_sectors = self.total_sectors - reserved - fats * fat_sectors - root_sectors
        if fat_sectors == 0 or data_sectors <= 0:
            raise FatError("the boot sector does not describe a FAT file system")
        clusters = data_sectors // self._per_cluster
        # The FAT type follows from the cluster count (Microsoft's FAT specification), not from labels.
        self.bits = 12 if clusters < 4085 else 16 if clusters < 65525 else 32
        self._root_cluster = struct.unpack_from("<I", boot, 44)[0] if self.bits == 32 else 0
        self._fat_bytes = min(fat_sectors * self.sector_size, _MAX_FAT_BYTES)
        self._fat: bytes | None = None

    @property
    def size(self) -> int:
        """Bytes the file system claims (the El Torito entry may not say: large images record 0 or 1 sector)."""
        return int(self.total_sectors * self.sector_size)

    def find(self, path: str) -> FatEntry | None:
        """The entry at `path` ("EFI/BOOT/BOOTX64.EFI"), compared case-insensitively as FAT does."""
        parts = [p for p in path.strip("/").split("/") if p]
        entries = self.listdir("")
        found: FatEntry | None = None
        for i, part in enumerate(parts):
            found = next((e for e in entries if e.name.upper() == part.upper()), None)
            if found is None:
                return None
            if i < len(parts) - 1:
                if not found.is_dir:
                    return None
                entries = self._entries(self._chain_bytes(found.cluster))
        return found

    def listdir(self, path: str) -> list[FatEntry]:
        if not path.strip("/"):
            raw = self._chain_bytes(self._root_cluster) if self.bits == 32 else \
                self._read(self._offset + self._root_start, self._root_bytes)
            return self._entries(raw)
        entry = self.find(path)
        if entry is None or not entry.is_dir:
            return []
        return self._entries(self._chain_bytes(entry.cluster))

    # --- clusters -------------------------------------------------------------------------------

    def _next_cluster(self, cluster: int) -> int:
        if self._fat is None:
            self._fat = self._read(self._offset + self._fat_start, self._fat_bytes)
        fat = self._fat
        if self.bits == 12:
            at = cluster + cluster // 2
            if at + 2 > len(fat):
                return 0xFFF
            value = struct.unpack_from("<H", fat, at)[0]
            return int(value >> 4 if cluster & 1 else value & 0xFFF)
        width = self.bits // 8
        at = cluster * width
        if at + width > len(fat):
            return 0x0FFFFFFF
        value = struct.unpack_from("<H" if width == 2 else "<I", fat, at)[0]
        return int(value) & 0x0FFFFFFF

    def _chain_bytes(self, first: int) -> bytes:
        end = {12: 0xFF8, 16: 0xFFF8, 32: 0x0FFFFFF8}[self.bits]
        cluster_bytes = self._per_cluster * self.sector_size
        parts: list[bytes] = []
        seen: set[int] = set()
        cluster = first
        while 2 <= cluster < end and cluster not in seen and len(seen) * cluster_bytes < _MAX_DIR_ENTRIES * 32:
            seen.add(cluster)
            parts.append(self._read(self._offset + self._data_start + (cluster - 2) * cluster_bytes, cluster_bytes))
            cluster = self._next_cluster(cluster)
        return b"".join(parts)

    # --- directory records ------------------------------------------------------------------------

    @staticmethod
    def _entries(raw: bytes) -> list[FatEntry]:
        entries: list[FatEntry] = []
        long_parts: dict[int, str] = {}
        long_sum: int | None = None
        for at in range(0, len(raw) - 31, 32):
            record = raw[at:at + 32]
            if record[0] == 0x00:
                break
            if record[0] == 0xE5:
                long_parts, long_sum = {}, None
                continue
            attr = record[11]
            if attr & 0x3F == 0x0F:  # a long-name piece: 13 UTF-16 characters, pieces in reverse order
                chars = record[1:11] + record[14:26] + record[28:32]
                long_parts[record[0] & 0x1F] = chars.decode("utf-16-le", "replace").split("\0")[0].rstrip("\uffff")
                long_sum = record[13]
                continue
            if attr & 0x08:  # the volume label
                long_parts, long_sum = {}, None
                continue
            short = _short_name(record)
            name = short
            if long_parts and long_sum == _checksum(record[:11]):
                name = "".join(long_parts[i] for i in sorted(long_parts))
            long_parts, long_sum = {}, None
            if short in (".", ".."):
                continue
            cluster = struct.unpack_from("<H", record, 26)[0] | (struct.unpack_from("<H", record, 20)[0] << 16)
            entries.append(FatEntry(name, bool(attr & 0x10), struct.unpack_from("<I", record, 28)[0], cluster))
        return entries


def _short_name(record: bytes) -> str:
    base = record[:8].decode("latin-1").rstrip()
    ext = record[8:11].decode("latin-1").rstrip()
    if base.startswith("\x05"):
        base = "\xe5" + base[1:]
    # Windows NT case flags (byte 12): lower-case base name / extension without a long name.
    if record[12] & 0x08:
        base = base.lower()
    if record[12] & 0x10:
        ext = ext.lower()
    return f"{base}.{ext}" if ext else base


def _checksum(short: bytes) -> int:
    total = 0
    for byte in short:
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    return total
