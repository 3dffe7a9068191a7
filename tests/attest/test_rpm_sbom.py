"""The SBOM of an rpm-based root file system: a real rpm database (rpm >= 4.16's rpmdb.sqlite), made by
Debian's rpm from two packages rpmbuild builds here, read by rootfs.from_files as an image's or an ISO's
files are; and the header parser on broken and pseudo-package headers, without rpm."""

from __future__ import annotations

import re
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest

from edgeforge_ext.attest import spdx
from edgeforge_ext.attest.evidence import sbom
from edgeforge_ext.attest.packages import Package
from edgeforge_ext.attest.rootfs import RPM_DBS, from_files
from edgeforge_ext.attest.rpmdb import RpmdbError, header_package
from tests.attest.helpers import spdx_problems
from tests.conftest import require

FEDORA = b'NAME="Fedora Linux"\nVERSION_ID=40\nID=fedora\nPRETTY_NAME="Fedora Linux 40 (Container Image)"\n'
SPEC = """Name: {name}
Version: {version}
Release: {release}
{epoch}Summary: edgeforge-ext test package
License: {license}
BuildArch: noarch

%description
An empty package, for the rpm database the SBOM tests read.

%files
"""
# name -> (epoch, version, release, license): what rpmbuild is given, and what the SBOM must say
DEMO = {"edgeforge-demo-a": ("2", "1.2.3", "4", "MIT"), "edgeforge-demo-b": ("", "0.1", "1", "MIT")}
QUERY = "%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|%{LICENSE}\\n"


def _rpm_tools() -> tuple[str, str]:
    rpm, rpmbuild = shutil.which("rpm"), shutil.which("rpmbuild")
    require(rpm is not None and rpmbuild is not None,
            "rpm and rpmbuild are not installed (Debian: apt-get install rpm)")
    assert rpm is not None and rpmbuild is not None
    return rpm, rpmbuild


def _run(*args: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, f"{' '.join(args)}: {proc.stderr}"
    return proc.stdout


def _rootfs_with_rpmdb(tmp_path: Path, dbpath: str) -> tuple[Path, list[str]]:
    """A root file system whose rpm database (at /dbpath) has the DEMO packages, installed by rpm itself;
    the rpm command that queries it."""
    rpm, rpmbuild = _rpm_tools()
    built: list[Path] = []
    for name, (epoch, version, release, license_) in DEMO.items():
        spec = tmp_path / f"{name}.spec"
        spec.write_text(SPEC.format(name=name, version=version, release=release, license=license_,
                                    epoch=f"Epoch: {epoch}\n" if epoch else ""))
        # Every path rpmbuild uses is under tmp_path (Debian's rpm keeps its own database in ~/.rpmdb)
        _run(rpmbuild, "-bb", "--quiet", "--define", f"_topdir {tmp_path / 'top'}",
             "--define", f"_rpmdir {tmp_path / 'rpms'}", "--define", f"_dbpath {tmp_path / 'builddb'}", str(spec))
        built.append(tmp_path / "rpms" / "noarch" / f"{name}-{version}-{release}.noarch.rpm")
    root = tmp_path / "rootfs"
    root.mkdir()
    # --dbpath is inside --root: the database lands in rootfs/<dbpath>, where the distribution keeps it
    cmd = [rpm, "--root", str(root), "--dbpath", "/" + dbpath]
    _run(*cmd, "--initdb")
    _run(*cmd, "-i", "--nodeps", "--justdb", "--ignorearch", "--noscripts", *map(str, built))
    assert (root / dbpath / "rpmdb.sqlite").is_file()
    return root, cmd


def _files(root: Path) -> dict[str, bytes | None]:
    """The files rootfs reads, as engine.read_image_files or unsquashfs hand them over."""
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "os-release").write_bytes(FEDORA)
    return {p: (root / p).read_bytes() if (root / p).is_file() else None
            for p in ("var/lib/dpkg/status", "etc/os-release", "usr/lib/os-release", *RPM_DBS)}


@pytest.mark.parametrize("dbpath", ["usr/lib/sysimage/rpm", "var/lib/rpm"])
def test_the_sbom_lists_the_packages_rpm_installed(tmp_path, dbpath):
    assert _run(_rpm_tools()[0], "--eval", "%_db_backend").strip() == "sqlite"  # rpm >= 4.16 default
    root, rpm = _rootfs_with_rpmdb(tmp_path, dbpath)
    contents = from_files(_files(root), "the image x")

    assert contents.note == ""
    assert contents.read_from == f"the image x:/{dbpath}/rpmdb.sqlite"
    assert contents.release.id == "fedora"
    assert sorted(contents.packages, key=lambda p: p.name) == [
        Package("edgeforge-demo-a", "1.2.3-4", "noarch", kind="rpm", epoch="2", license="MIT"),
        Package("edgeforge-demo-b", "0.1-1", "noarch", kind="rpm", epoch="", license="MIT"),
    ]
    # rpm's own answer, from the same database
    queried = sorted(_run(*rpm, "-qa", "--qf", QUERY).splitlines())
    read = sorted(f"{p.name}|{p.epoch or '(none)'}|{p.version.replace('-', '|', 1)}|{p.arch}|{p.license}"
                  for p in contents.packages)
    assert queried == read

    doc = sbom("registry.example/edge/fedora", "sha256:" + "ab" * 32, contents, "2024-05-01T10:00:00Z")
    assert spdx.package_versions(doc) == {"edgeforge-demo-a": "2:1.2.3-4", "edgeforge-demo-b": "0.1-1"}
    purls = sorted(r["referenceLocator"] for p in doc["packages"] for r in p.get("externalRefs", []))
    assert purls == ["pkg:rpm/fedora/edgeforge-demo-a@1.2.3-4?arch=noarch&distro=fedora-40&epoch=2",
                     "pkg:rpm/fedora/edgeforge-demo-b@0.1-1?arch=noarch&distro=fedora-40"]
    assert {p.get("licenseComments") for p in doc["packages"][1:]} == \
        {"the package database declares the license: MIT"}
    assert doc["comment"] == f"packages read from the image x:/{dbpath}/rpmdb.sqlite"
    assert spdx_problems(doc) == []


def test_a_damaged_header_in_a_real_database_is_skipped_as_rpm_skips_it_and_said(tmp_path):
    root, rpm = _rootfs_with_rpmdb(tmp_path, "var/lib/rpm")
    db_file = root / "var/lib/rpm/rpmdb.sqlite"
    db = sqlite3.connect(db_file)
    hnum, blob = db.execute("SELECT hnum, blob FROM Packages ORDER BY hnum LIMIT 1").fetchone()
    db.execute("UPDATE Packages SET blob = ? WHERE hnum = ?", (blob[:-10], hnum))
    db.commit()
    db.close()
    # rpm itself lists the other package and says it skipped this header
    proc = subprocess.run([*rpm, "-qa", "--qf", "%{NAME}\\n"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert re.search(rf"rpmdbNextIterator: skipping h# +{hnum} blob size\({len(blob)}\): BAD", proc.stderr), \
        proc.stderr  # rpm 4.18's words: the size the header's index gives
    assert len(proc.stdout.split()) == 1

    contents = from_files(_files(root), "the image x")
    assert [p.name for p in contents.packages] == proc.stdout.split()
    assert contents.read_from == "the image x:/var/lib/rpm/rpmdb.sqlite"
    assert contents.note == ("the image x:/var/lib/rpm/rpmdb.sqlite has 1 damaged package header(s), skipped as "
                             "rpm skips them (so the list lacks those packages): "
                             f"package #{hnum}: its header is truncated or malformed: {len(blob) - 10} bytes "
                             f"where its index ({struct.unpack_from('>I', blob)[0]} tags, "
                             f"{struct.unpack_from('>I', blob, 4)[0]} bytes of data) says {len(blob)}")
    doc = sbom("registry.example/edge/fedora", "sha256:" + "ab" * 32, contents, "2024-05-01T10:00:00Z")
    assert doc["comment"] == f"packages read from {contents.read_from}; {contents.note}"  # the gap is in the SBOM
    assert spdx_problems(doc) == []


# Headers made here, for what a real database of Debian's rpm cannot show: broken ones, and rpm's
# gpg-pubkey pseudo packages (rpm --import would need gpg to make a key).
def _header(entries: list[tuple[int, int, bytes, int]]) -> bytes:
    """il, dl, the index (tag, type, offset, count), the data store: rpm's headerExport layout."""
    index, store = b"", b""
    for tag, kind, data, count in entries:
        store += b"\0" * (-len(store) % 4 if kind == 4 else 0)  # INT32 data is 4-byte aligned
        index += struct.pack(">IIiI", tag, kind, len(store), count)
        store += data
    return struct.pack(">II", len(entries), len(store)) + index + store


def _strings(name: str, version: str = "1.0", release: str = "1") -> list[tuple[int, int, bytes, int]]:
    return [(1000, 6, name.encode() + b"\0", 1), (1001, 6, version.encode() + b"\0", 1),
            (1002, 6, release.encode() + b"\0", 1)]


def test_a_made_header_reads_like_rpms():
    blob = _header([*_strings("zlib", "1.3", "2.fc40"), (1003, 4, struct.pack(">I", 1), 1),
                    (1014, 9, b"Zlib\0Zlib (de)\0", 2), (1022, 6, b"x86_64\0", 1)])
    assert header_package(blob) == Package("zlib", "1.3-2.fc40", "x86_64", kind="rpm", epoch="1",
                                           license="Zlib")


def test_gpg_pubkey_pseudo_packages_are_not_listed():
    assert header_package(_header(_strings("gpg-pubkey", "8d1b6a3b", "5f5a0e4d"))) is None


@pytest.mark.parametrize(("blob", "message"), [
    (b"\0\0\0", "its header is truncated (3 bytes, shorter than its 8-byte preamble)"),
    (_header(_strings("zlib"))[:-3], "its header is truncated or malformed"),
    (_header(_strings("zlib")) + b"\0", "its header is truncated or malformed"),
    (struct.pack(">II", 0x10000, 0), "out of range"),
    (_header([(1000, 6, b"zlib", 1)]), "a string without its NUL"),
    (_header([(1000, 4, b"\0\0\0\1", 1)]), "tag 1000 has type 4, not a string"),
    (_header([(1000, 6, b"zlib\0", 0)]), "count 0"),
    (_header(_strings("zlib"))[:16] + struct.pack(">i", 999) + _header(_strings("zlib"))[20:], "offset 999"),
    (_header(_strings("")), "its header has no name"),
])
def test_a_malformed_header_is_an_error_that_says_what(blob, message):
    with pytest.raises(RpmdbError) as raised:
        header_package(blob)
    assert message in str(raised.value)


def test_a_database_that_is_not_sqlite_is_a_note_not_a_crash():
    contents = from_files({"usr/lib/sysimage/rpm/rpmdb.sqlite": b"\0" * 4096}, "the ISO's /rootfs.squashfs")
    assert contents.packages == ()
    assert contents.note == ("the ISO's /rootfs.squashfs has an rpm database (/usr/lib/sysimage/rpm/rpmdb.sqlite) "
                             "that cannot be read: not an SQLite database: no packages listed")


@pytest.mark.parametrize(("path", "kind"), [("var/lib/rpm/Packages", "BerkeleyDB"),
                                            ("usr/lib/sysimage/rpm/Packages.db", "ndb")])
def test_the_older_rpm_databases_are_named_not_read(path, kind):
    contents = from_files({path: b"\0" * 64}, "the image x")
    assert contents.packages == ()
    assert contents.note == (f"the image x has an rpm {kind} database (/{path}), which edgeforge-ext does not "
                             "read (only rpm's SQLite rpmdb.sqlite, rpm >= 4.16): no packages listed")
