"""`iso inspect`: will this ISO boot, and does it carry what the build put in it? Static, no mounting, no root.

Reads the El Torito boot catalog and the file tree with pycdlib, the EFI system image with fatimage, the
MBR/GPT with disklabel. Only directory records, the catalog, partition tables and the few files compared
are read, so a 2 GB ISO takes well under a second (bench/iso_inspect.py).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from edgeforge_ext.errors import ArtifactError
from edgeforge_ext.iso.verify import best_facade

# Where CanvOS puts user-data: +build-iso copies it to the overlay's files-iso/config.yaml (every tag,
# v4.4.12 .. main); +build-uki-iso to the overlay root, /config.yaml.
USER_DATA_PATH = "/files-iso/config.yaml"
UKI_USER_DATA_PATH = "/config.yaml"
# Other files CanvOS's Earthfile copies into the ISO overlay, each only `--if-exists` (so a missing
# source file vanishes silently from the ISO): CLUSTERCONFIG and EDGE_CUSTOM_CONFIG.
CLUSTER_CONFIG_PATH = "/opt/spectrocloud/clusterconfig/spc.tgz"
EDGE_CUSTOM_CONFIG_PATH = "/.edge_custom_config.yaml"

EFI_BINARIES = {"amd64": "EFI/BOOT/BOOTX64.EFI", "arm64": "EFI/BOOT/BOOTAA64.EFI"}
PLATFORMS = {0x00: "bios", 0xEF: "uefi", 0x01: "powerpc", 0x02: "mac"}
_GRUB_CONFIGS = ("/boot/grub2/grub.cfg", "/boot/grub/grub.cfg", "/EFI/BOOT/grub.cfg")
_MAX_SMALL_FILE = 1024 * 1024


@dataclass(frozen=True)
class ExpectedFile:
    path: str  # inside the ISO
    sha256: str | None  # None: only its presence is checked
    what: str  # what the build gave it as, for the message ("the cluster configuration")


@dataclass(frozen=True)
class Expected:
    """What the ISO must hold. user_data_sha256 None: user-data is reported, not compared."""

    user_data_sha256: str | None = None
    files: tuple[ExpectedFile, ...] = ()
    uki: bool | None = None  # None: told from the EFI image (systemd-boot's loader/ directory)
    arch: str | None = None  # "amd64" / "arm64"; None accepts either EFI binary

    def as_json(self) -> dict[str, Any]:
        return {"user_data_sha256": self.user_data_sha256,
                "files": [{"path": f.path, "sha256": f.sha256, "what": f.what} for f in self.files],
                "uki": self.uki, "arch": self.arch}


@dataclass(frozen=True)
class Finding:
    name: str
    status: str  # ok | warning | failed
    detail: str
    hint: str = ""

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "hint": self.hint}


@dataclass(frozen=True)
class BootEntry:
    platform: str  # bios | uefi | 0xNN
    bootable: bool
    emulation: int  # 0 = no emulation
    lba: int
    sectors: int  # 512-byte sectors as recorded (0 or 1 for large UEFI images is common)
    path: str | None  # the ISO file with the same extent, when there is one

    def as_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "bootable": self.bootable, "emulation": self.emulation,
                "lba": self.lba, "sectors": self.sectors, "path": self.path}


@dataclass
class Inspection:
    path: Path
    size: int = 0
    volume_label: str = ""
    uki: bool = False
    boot_entries: list[BootEntry] = field(default_factory=list)
    efi_binaries: list[str] = field(default_factory=list)
    partitions: list[dict[str, Any]] = field(default_factory=list)
    mbr_boot_code: bool = False
    user_data_sha256: str | None = None
    expected: Expected = field(default_factory=Expected)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_json(self) -> dict[str, Any]:
        return {"iso": str(self.path), "ok": self.ok, "size": self.size, "volume_label": self.volume_label,
                "uki": self.uki, "boot_entries": [e.as_json() for e in self.boot_entries],
                "efi_binaries": self.efi_binaries, "mbr_boot_code": self.mbr_boot_code,
                "partitions": self.partitions, "user_data_sha256": self.user_data_sha256,
                "expected": self.expected.as_json(), "checks": [f.as_json() for f in self.findings],
                "seconds": round(self.seconds, 3)}


def raise_if_failed(inspection: Inspection) -> None:
    """ArtifactError (exit 8) naming every failed check."""
    failed = inspection.failed
    if failed:
        raise ArtifactError(
            f"the ISO {inspection.path} failed {len(failed)} check(s): {', '.join(f.name for f in failed)}",
            details=[f"{f.name}: {f.detail}" for f in failed],
            hint=next((f.hint for f in failed if f.hint), None))


def inspect_iso(iso_path: Path, expected: Expected | None = None) -> Inspection:
    """Every check, in a fixed order; never raises for what it finds (see raise_if_failed)."""
    started = time.perf_counter()
    expected = expected or Expected()
    result = Inspection(Path(iso_path), expected=expected)
    try:
        result.size = result.path.stat().st_size
    except OSError as exc:
        raise ArtifactError(f"cannot read the ISO {iso_path}: {exc.strerror}") from exc
    with _opened(result.path) as (iso, read):
        _Inspector(iso, read, result).run()
    result.seconds = time.perf_counter() - started
    return result


@contextmanager
def _opened(path: Path) -> Iterator[tuple[Any, Callable[[int, int], bytes]]]:
    import pycdlib
    from pycdlib.pycdlibexception import PyCdlibException

    try:
        handle: BinaryIO = path.open("rb")
    except OSError as exc:
        raise ArtifactError(f"cannot read the ISO {path}: {exc.strerror}") from exc
    with handle:
        def read(offset: int, length: int) -> bytes:
            handle.seek(offset)
            return handle.read(length)

        iso = pycdlib.PyCdlib()
        try:
            iso.open_fp(handle)
        except (PyCdlibException, OSError, ValueError) as exc:
            raise ArtifactError(f"cannot read {path} as an ISO9660 image: {exc}") from exc
        try:
            yield iso, read
        finally:
            iso.close()


class _Inspector:
    def __init__(self, iso: Any, read: Callable[[int, int], bytes], result: Inspection) -> None:
        self.iso = iso
        self.read = read
        self.result = result
        self.expected = result.expected
        self.facade, self.kind = best_facade(iso)

    def add(self, name: str, status: str, detail: str, hint: str = "") -> None:
        self.result.findings.append(Finding(name, status, detail, hint))

    def run(self) -> None:
        from edgeforge_ext.iso.disklabel import read_label

        self.result.volume_label = self.iso.pvd.volume_identifier.decode("latin-1").strip()
        self.result.boot_entries = self._boot_entries()
        uefi = [e for e in self.result.boot_entries if e.platform == "uefi"]
        esp_names = self._efi_image_names(uefi)
        detected_uki = any(n.upper().startswith("LOADER/") for n in esp_names)
        self.result.uki = detected_uki if self.expected.uki is None else self.expected.uki
        label = read_label(self.read)
        self.result.mbr_boot_code = label.mbr_boot_code
        self.result.partitions = [p.as_json() for p in label.partitions]
        self._check_bios()
        self._check_uefi(uefi, esp_names)
        self._check_usb(label)
        self._check_live_label()
        self._check_user_data()
        for wanted in self.expected.files:
            self._check_file(wanted)

    # --- El Torito ----------------------------------------------------------------------------------

    def _boot_entries(self) -> list[BootEntry]:
        catalog = getattr(self.iso, "eltorito_boot_catalog", None)
        if catalog is None:
            return []
        raw = [(catalog.validation_entry.platform_id, catalog.initial_entry)]
        for section in catalog.sections:
            raw.extend((section.platform_id, entry) for entry in section.section_entries)
        extents = self._extents({int(entry.load_rba) for _, entry in raw})
        return [BootEntry(PLATFORMS.get(platform, f"0x{platform:02x}"), entry.boot_indicator == 0x88,
                          int(entry.boot_media_type), int(entry.load_rba), int(entry.sector_count),
                          extents.get(int(entry.load_rba)))
                for platform, entry in raw]

    def _extents(self, wanted: set[int]) -> dict[int, str]:
        """ISO paths of the files that start at these blocks (the boot images are usually files too)."""
        found: dict[int, str] = {}
        for path, record in self._walk():
            extent = int(record.extent_location())
            if extent in wanted and extent not in found:
                found[extent] = path
                if len(found) == len(wanted):
                    break
        return found

    def _efi_image_names(self, uefi: list[BootEntry]) -> list[str]:
        """Files of the first UEFI entry's FAT image (depth 3 is enough for EFI/BOOT/*.EFI and loader/)."""
        from edgeforge_ext.iso.fat import FatError, FatImage

        if not uefi:
            return []
        try:
            fat = FatImage(self.read, uefi[0].lba * 2048)
        except FatError:
            return []
        return _fat_names(fat)

    def _check_bios(self) -> None:
        bios = [e for e in self.result.boot_entries if e.platform == "bios"]
        if bios:
            e = bios[0]
            self.add("bios-entry", "ok", f"El Torito BIOS entry, {_emulation(e)}, {e.sectors} sectors at block "
                     f"{e.lba}" + (f" ({e.path})" if e.path else ""))
        elif self.result.uki:
            self.add("bios-entry", "warning", "no BIOS boot entry: expected for a UKI ISO, which boots with "
                     "UEFI only")
        else:
            why = "the ISO has no El Torito boot catalog" if not self.result.boot_entries else \
                "the El Torito catalog has no x86 BIOS (platform 0x00) entry"
            self.add("bios-entry", "failed", f"no BIOS boot entry: {why}; legacy BIOS (CSM) machines cannot boot it",
                     "rebuild the ISO; an xorriso repack must keep the boot images (-boot_image any keep)")

    def _check_uefi(self, uefi: list[BootEntry], esp_names: list[str]) -> None:
        if not uefi:
            why = "the ISO has no El Torito boot catalog" if not self.result.boot_entries else \
                "the El Torito catalog has no UEFI (platform 0xEF) entry"
            self.add("uefi-entry", "failed", f"no UEFI boot entry: {why}; UEFI firmware (OVMF too) reports no "
                     "bootable device or 'no compatible bootloader'",
                     "rebuild the ISO; an xorriso repack must keep the EFI image (-boot_image any keep)")
            return  # no EFI binary to look for: one failure, not two
        e = uefi[0]
        self.add("uefi-entry", "ok", f"El Torito UEFI entry, {_emulation(e)}, FAT image at block {e.lba}"
                 + (f" ({e.path})" if e.path else ""))
        if not esp_names:
            self.add("efi-binary", "failed", f"no EFI binary: the UEFI boot image at block {e.lba} is not a FAT "
                     "file system UEFI firmware can read")
            return
        present = self._binaries(esp_names)
        self.result.efi_binaries = present
        if present:
            self.add("efi-binary", "ok", f"the UEFI boot image holds {', '.join(present)}")
        else:
            self.add("efi-binary", "failed", self._no_binary("the UEFI boot image", esp_names),
                     "rebuild the ISO; check the bootloader step of the ISO build (a shim or GRUB package that "
                     "installed nothing)")

    def _binaries(self, names: list[str]) -> list[str]:
        """The EFI binaries among a FAT image's files, for the expected architecture (or either)."""
        upper = {n.upper(): n for n in names}
        return [upper[path] for arch, path in EFI_BINARIES.items()
                if path in upper and self.expected.arch in (None, arch)]

    def _no_binary(self, where: str, names: list[str]) -> str:
        wanted = EFI_BINARIES[self.expected.arch] if self.expected.arch else " or ".join(EFI_BINARIES.values())
        holds = ", ".join(sorted(n for n in names if n.upper().startswith("EFI/"))[:8]) or "nothing under EFI/"
        return f"no EFI binary: {where} holds no {wanted} (it holds {holds}); UEFI firmware finds no bootloader on it"

    # --- USB (hybrid) -----------------------------------------------------------------------------

    def _check_usb(self, label: Any) -> None:
        from edgeforge_ext.iso.fat import FatError, FatImage

        if label.mbr_boot_code and label.mbr:
            self.add("usb-bios", "ok", "isohybrid MBR with boot code: BIOS machines boot it from a USB stick")
        else:
            why = "no MBR (no 0x55AA signature)" if not label.mbr_signature else \
                "an MBR without boot code" if not label.mbr_boot_code else "an MBR without partitions"
            expected = " (expected for a UKI ISO, which boots with UEFI only)" if self.result.uki else ""
            self.add("usb-bios", "warning" if self.result.uki else "failed",
                     f"not a hybrid ISO for BIOS: {why}; written to a USB stick it does not boot on BIOS machines"
                     f"{expected}",
                     "" if self.result.uki else "rebuild with xorriso's isohybrid MBR (--grub2-mbr or -isohybrid-mbr)")
        esps = label.efi_system_partitions()
        if not esps:
            self.add("usb-uefi", "failed", "no EFI system partition in the MBR or GPT: written to a USB stick, the "
                     "ISO does not boot on UEFI machines",
                     "rebuild with the EFI image as a partition (-append_partition 2 0xef efi.img, or "
                     "-isohybrid-gpt-basdat)")
            return
        esp = esps[0]
        where = f"{esp.scheme.upper()} partition {esp.number}" + (f" ({esp.name})" if esp.name else "")
        if esp.start + 512 > self.result.size:
            self.add("usb-uefi", "failed", f"{where}, the EFI system partition, starts beyond the end of the ISO "
                     "(a truncated or repacked image)")
            return
        try:
            names = _fat_names(FatImage(self.read, esp.start))
        except FatError:
            self.add("usb-uefi", "failed", f"{where}, the EFI system partition, is not a FAT file system")
            return
        present = self._binaries(names)
        if present:
            self.add("usb-uefi", "ok", f"{where} is an EFI system partition holding {', '.join(present)}: UEFI "
                     "machines boot it from a USB stick")
        else:
            self.add("usb-uefi", "failed", self._no_binary(f"{where}, the EFI system partition,", names))

    # --- files ----------------------------------------------------------------------------------

    def _check_live_label(self) -> None:
        """Kairos finds its live medium by volume label (root=live:CDLABEL=COS_LIVE in CanvOS's grub.cfg):
        a repack that renames the volume leaves the installer without its root file system."""
        for cfg in _GRUB_CONFIGS:
            text = self._small_file(cfg)
            if text is None:
                continue
            labels = set(re.findall(rb"CDLABEL=([^\s\"']+)", text))
            if not labels:
                continue
            names = sorted(label.decode("latin-1") for label in labels)
            if self.result.volume_label in names:
                self.add("live-label", "ok", f"volume label {self.result.volume_label!r}, the one {cfg} boots from "
                         f"(CDLABEL={self.result.volume_label})")
            else:
                self.add("live-label", "failed", f"{cfg} looks for its live medium by CDLABEL={names[0]} but the "
                         f"volume label is {self.result.volume_label!r}: the installer would not find its root "
                         "file system", "keep the volume label when repacking the ISO (xorriso -volid)")
            return

    def _check_user_data(self) -> None:
        path = UKI_USER_DATA_PATH if self.result.uki else USER_DATA_PATH
        digest = self._sha256(path)
        want = self.expected.user_data_sha256
        self.result.user_data_sha256 = digest
        if digest is None:
            if want is None:
                self.add("user-data", "warning", f"no user-data in the ISO ({path} is missing): the Edge host "
                         "needs it from elsewhere (site user-data on a second medium)")
            else:
                self.add("user-data", "failed", f"user-data missing: {path} is not in the ISO",
                         "user-data must be in the CanvOS checkout when Earthly runs (edgeforge-ext render)")
        elif want is None:
            self.add("user-data", "ok", f"{path} present (sha256 {digest[:16]}…); not compared: give "
                     "--user-data FILE or the build's report")
        elif digest == want:
            self.add("user-data", "ok", f"{path} is the rendered user-data (sha256 {digest[:16]}…)")
        else:
            self.add("user-data", "failed", f"user-data differs: {path} has sha256 {digest[:16]}…, the rendered "
                     f"user-data {want[:16]}…", "the ISO was built from another user-data: build again")

    def _check_file(self, wanted: ExpectedFile) -> None:
        digest = self._sha256(wanted.path)
        name = f"file {wanted.path}"
        if digest is None:
            self.add(name, "failed", f"expected overlay file missing: {wanted.path} ({wanted.what}) is not in the "
                     "ISO", "CanvOS copies it only if it exists in the checkout when Earthly runs (COPY --if-exists)")
        elif wanted.sha256 is None or digest == wanted.sha256:
            self.add(name, "ok", f"{wanted.what} present (sha256 {digest[:16]}…)")
        else:
            self.add(name, "failed", f"overlay file differs: {wanted.path} has sha256 {digest[:16]}…, "
                     f"{wanted.what} {wanted.sha256[:16]}…")

    def _sha256(self, path: str) -> str | None:
        record = self._record(path)
        if record is None:
            return None
        digest = hashlib.sha256()
        self.facade.get_file_from_iso_fp(_HashWriter(digest), self._name(path))
        return digest.hexdigest()

    def _small_file(self, path: str) -> bytes | None:
        import io

        record = self._record(path)
        if record is None or record.get_data_length() > _MAX_SMALL_FILE:
            return None
        out = io.BytesIO()
        self.facade.get_file_from_iso_fp(out, self._name(path))
        return out.getvalue()

    def _record(self, path: str) -> Any:
        from pycdlib.pycdlibexception import PyCdlibException

        try:
            record = self.facade.get_record(self._name(path))
        except (PyCdlibException, ValueError):
            return None
        return None if record.is_dir() else record

    def _name(self, path: str) -> str:
        if self.kind != "iso9660":
            return path
        from edgeforge_ext.iso.verify import _iso_name

        return _iso_name(path)

    def _walk(self) -> Iterator[tuple[str, Any]]:
        for dirname, _dirs, files in self.facade.walk("/"):
            for fname in files:
                path = dirname.rstrip("/") + "/" + fname
                yield path, self.facade.get_record(path)


class _HashWriter:
    def __init__(self, digest: Any) -> None:
        self.digest = digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return len(data)


def _fat_names(fat: Any, depth: int = 3) -> list[str]:
    names: list[str] = []
    todo: list[tuple[str, int]] = [("", 0)]
    while todo:
        parent, level = todo.pop()
        for entry in fat.listdir(parent):
            path = f"{parent}/{entry.name}" if parent else entry.name
            names.append(path)
            if entry.is_dir and level + 1 < depth:
                todo.append((path, level + 1))
    return names


def _emulation(entry: BootEntry) -> str:
    return "no emulation" if entry.emulation == 0 else f"emulation type {entry.emulation}"


# --- what to expect, from files or from a build's report -------------------------------------------------

def sha256_of(path: Path, what: str) -> str:
    from edgeforge_ext.errors import UsageError
    from edgeforge_ext.fsutil import sha256_file

    try:
        return sha256_file(path)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from exc


def expected_from_files(*, user_data: Path | None = None, cluster_config: Path | None = None,
                        edge_custom_config: Path | None = None, files: tuple[tuple[str, Path | None], ...] = (),
                        uki: bool | None = None, arch: str | None = None) -> Expected:
    """Expectations from local files: each is compared by sha256 with its place in the ISO."""
    wanted: list[ExpectedFile] = []
    if cluster_config is not None:
        wanted.append(ExpectedFile(CLUSTER_CONFIG_PATH, sha256_of(cluster_config, "the cluster configuration"),
                                   f"the cluster configuration {cluster_config.name}"))
    if edge_custom_config is not None:
        wanted.append(ExpectedFile(EDGE_CUSTOM_CONFIG_PATH, sha256_of(edge_custom_config, "EDGE_CUSTOM_CONFIG"),
                                   f"EDGE_CUSTOM_CONFIG {edge_custom_config.name}"))
    for iso_path, local in files:
        wanted.append(ExpectedFile("/" + iso_path.lstrip("/"), sha256_of(local, "the file") if local else None,
                                   local.name if local else "a file the build put in the overlay"))
    return Expected(sha256_of(user_data, "the user-data") if user_data else None, tuple(wanted), uki, arch)


def expected_from_report(report_path: Path, iso: Path) -> Expected | None:
    """What the build that made this ISO expected (edgeforge-report.json, iso.inspect.expected); None when
    the report is about another ISO or holds no expectations."""
    import json

    from edgeforge_ext.errors import UsageError

    try:
        data = json.loads(report_path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the build report {report_path}: {exc}") from exc
    record = data.get("iso") or {}
    if Path(str(record.get("path", ""))).name != iso.name:
        return None
    saved = (record.get("inspect") or {}).get("expected")
    if not isinstance(saved, dict):
        return None
    files = tuple(ExpectedFile(str(f["path"]), f.get("sha256"), str(f.get("what", "")))
                  for f in saved.get("files", []))
    return Expected(saved.get("user_data_sha256"), files, saved.get("uki"), saved.get("arch"))
