"""The installed packages of a root file system: an ISO's (its squashfs, read with `unsquashfs` in place,
at the squashfs's offset inside the ISO: nothing is copied or mounted) or an image's (through the Docker
daemon, see engine.read_image_files). dpkg's database is read, and rpm's SQLite one (rpm >= 4.16, see
attest/rpmdb.py); what cannot be read is said, never guessed: an SBOM that lists nothing says why."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeforge_ext.attest.packages import OsRelease, Package, dpkg_status, os_release
from edgeforge_ext.attest.rpmdb import RpmdbError, rpmdb_sqlite

DPKG_STATUS = "var/lib/dpkg/status"
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
# rpm's SQLite databases (rpm >= 4.16's default: Fedora 33+, RHEL 9+), read; then its BerkeleyDB one
# (RHEL 8 and older) and its ndb one (SUSE's), which are not: found, they are named.
RPM_SQLITE = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
RPM_DBS = (*RPM_SQLITE, "var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages.db")
# The live root file system of Kairos/CanvOS ISOs, and of other live ISOs (dracut, casper).
SQUASHFS_NAMES = ("rootfs.squashfs", "squashfs.img", "filesystem.squashfs")
_SECTOR = 2048


@dataclass(frozen=True)
class Contents:
    packages: tuple[Package, ...] = ()
    release: OsRelease = field(default_factory=OsRelease)
    read_from: str = ""  # where the package database was read, e.g. "/rootfs.squashfs:/var/lib/dpkg/status"
    note: str = ""  # what could not be read, and why


def from_files(files: dict[str, bytes | None], where: str) -> Contents:
    """Packages and distribution from the files read out of a root file system."""
    release = os_release(next((files[p] for p in OS_RELEASE if files.get(p)), None))
    status = files.get(DPKG_STATUS)
    if status is not None:
        return Contents(tuple(dpkg_status(status)), release, f"{where}:/{DPKG_STATUS}")
    rpm = next((p for p in RPM_DBS if files.get(p) is not None), None)
    if rpm in RPM_SQLITE:
        try:
            packages, damaged = rpmdb_sqlite(files[rpm] or b"")
        except RpmdbError as e:
            return Contents((), release, "", f"{where} has an rpm database (/{rpm}) that cannot be read: {e}: "
                            "no packages listed")
        note = ""
        if damaged:  # listed without them, as `rpm -qa` lists them; the SBOM says which are missing
            note = (f"{where}:/{rpm} has {len(damaged)} damaged package header(s), skipped as rpm skips them "
                    f"(so the list lacks those packages): {'; '.join(damaged[:5])}"
                    + (f"; and {len(damaged) - 5} more" if len(damaged) > 5 else ""))
        return Contents(tuple(packages), release, f"{where}:/{rpm}", note)
    if rpm is not None:
        kind = "ndb" if rpm.endswith(".db") else "BerkeleyDB"
        return Contents((), release, "", f"{where} has an rpm {kind} database (/{rpm}), which edgeforge-ext "
                        "does not read (only rpm's SQLite rpmdb.sqlite, rpm >= 4.16): no packages listed")
    return Contents((), release, "", f"{where} has no dpkg database (/{DPKG_STATUS}) and no rpm database "
                    f"(/{RPM_SQLITE[0]}, /{RPM_SQLITE[1]}): no packages listed")


def image_contents(client: Any, image: str, name: str) -> Contents:
    from edgeforge_ext import engine

    files = engine.read_image_files(client, image, [DPKG_STATUS, *OS_RELEASE], max_bytes=256 << 20)
    if files[DPKG_STATUS] is None:  # only then look for an rpm database, to say which one it is
        files.update(engine.read_image_files(client, image, list(RPM_DBS), max_bytes=256 << 20))
    return from_files(files, f"the image {name}")


def iso_contents(iso_path: Path) -> Contents:
    """The packages of the ISO's live root file system (a squashfs file in the ISO)."""
    found = _squashfs_in(iso_path)
    if found is None:
        return Contents(note=f"the ISO holds no squashfs root file system ({', '.join(SQUASHFS_NAMES)}): "
                        "no packages listed")
    inner, offset = found
    tool = shutil.which("unsquashfs")
    if tool is None:
        return Contents(note=f"reading {inner} needs unsquashfs (Debian: apt-get install squashfs-tools): "
                        "no packages listed")
    files: dict[str, bytes | None] = {}
    for path in (DPKG_STATUS, *OS_RELEASE, *RPM_DBS):
        # -cat writes the one file to stdout; a file the image lacks is a non-zero exit. -o: where the
        # squashfs starts inside the ISO (ISO9660 stores a file's data contiguously).
        proc = subprocess.run([tool, "-o", str(offset), "-cat", str(iso_path), path], capture_output=True,
                              check=False, timeout=300)
        files[path] = proc.stdout if proc.returncode == 0 else None
    return from_files(files, f"the ISO's {inner}")


def _squashfs_in(iso_path: Path) -> tuple[str, int] | None:
    """(path in the ISO, byte offset) of its largest squashfs, by the names live ISOs give it."""
    import pycdlib
    from pycdlib.pycdlibexception import PyCdlibException

    from edgeforge_ext.iso.verify import best_facade

    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(iso_path))
    except (PyCdlibException, OSError):
        return None
    try:
        facade, _kind = best_facade(iso)
        best: tuple[int, str, int] | None = None
        for dirname, _dirs, files in facade.walk("/"):
            for name in files:
                plain = name.split(";")[0].lower()
                if plain not in SQUASHFS_NAMES and not plain.endswith(".squashfs"):
                    continue
                path = dirname.rstrip("/") + "/" + name
                record = facade.get_record(path)
                size = int(record.get_data_length())
                if best is None or size > best[0]:
                    best = (size, path, int(record.extent_location()) * _SECTOR)
        return (best[1], best[2]) if best else None
    finally:
        iso.close()
