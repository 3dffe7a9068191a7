"""rpm's package database as rpm >= 4.16 writes it by default: an SQLite file, rpmdb.sqlite, whose table
`Packages(hnum INTEGER PRIMARY KEY, blob BLOB)` holds one rpm header per installed package (rpm's
lib/backend/sqlite.cc). Pure: bytes in, packages out (Python's own sqlite3, on a private copy).

rpm's older databases, BerkeleyDB `Packages` and ndb `Packages.db`, are not read here (rootfs says so)."""

from __future__ import annotations

import sqlite3
import struct
import tempfile
from contextlib import closing
from pathlib import Path

from edgeforge_ext.attest.packages import Package

# Tag numbers and types: rpm's include/rpm/rpmtag.h (rpmTag_e, rpmTagType_e).
NAME, VERSION, RELEASE, EPOCH, LICENSE, ARCH = 1000, 1001, 1002, 1003, 1014, 1022
INT32_TYPE, STRING_TYPE, STRING_ARRAY_TYPE, I18NSTRING_TYPE = 4, 6, 8, 9
# Limits of lib/header.cc (HEADER_TAGS_MAX, HEADER_DATA_MAX), checked by hdrblobVerifyLengths.
_TAGS_MAX = 0x0000FFFF
_DATA_MAX = 0x0FFFFFFF
_ENTRY = struct.Struct(">IIiI")  # struct entryInfo_s (lib/header_internal.hh): tag, type, offset, count
# The public keys `rpm --import` stores are headers too, named gpg-pubkey (lib/keystore.cc writes them with
# headerPutString(h, RPMTAG_NAME, "gpg-pubkey")): `rpm -qa` lists them, but they are keys, not software.
PUBKEY_NAME = "gpg-pubkey"


class RpmdbError(ValueError):
    """The database or one of its headers cannot be read: the message says what and where."""


def rpmdb_sqlite(data: bytes) -> tuple[list[Package], list[str]]:
    """The installed packages of an rpmdb.sqlite, in rpm's order (hnum, as `rpm -qa` lists them), and what
    was wrong with each header that could not be read. Those are skipped and the rest listed, as rpm does
    (lib/rpmdb.c, rpmdbNextIterator; rpm 4.18 -qa says "error: rpmdbNextIterator: skipping h# 1 blob
    size(1332): BAD, 8 + 16 * il(40) + dl(684)" and lists the other packages: tests/attest)."""
    rows = _packages_rows(data)
    packages: list[Package] = []
    damaged: list[str] = []
    for hnum, blob in rows:
        try:
            if not isinstance(blob, bytes):
                raise RpmdbError("its header is not a blob")
            package = header_package(blob)
        except RpmdbError as e:
            damaged.append(f"package #{hnum}: {e}")
            continue
        if package is not None:
            packages.append(package)
    return packages, damaged


def _packages_rows(data: bytes) -> list[tuple[int, object]]:
    if not data.startswith(b"SQLite format 3\x00") or len(data) < 100:
        raise RpmdbError("not an SQLite database")
    # rpm opens its database in WAL mode (sqlite.cc: "PRAGMA journal_mode = WAL") and checkpoints it into
    # the main file when it closes (wal_checkpoint = TRUNCATE). Bytes 18 and 19 of the file header say
    # "WAL" (2); set to "rollback journal" (1), SQLite reads the copy as a plain file, with no -wal and -shm
    # files made beside it (the workaround SQLite's sqlite3_deserialize documentation gives for WAL files).
    # Changes of a transaction rpm never checkpointed (rpmdb.sqlite-wal, after a crash) are not read.
    copy = bytearray(data)
    copy[18:20] = b"\x01\x01"
    with tempfile.TemporaryDirectory(prefix="edgeforge-rpmdb-") as tmp:
        path = Path(tmp) / "rpmdb.sqlite"
        path.write_bytes(bytes(copy))
        try:
            with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
                # rpm's own query (sqlite.cc, dbiCursorPrep: "SELECT hnum, blob FROM '%q'"), in hnum order
                rows = db.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
        except sqlite3.Error as e:
            raise RpmdbError(f"SQLite cannot read its Packages table: {e}") from None
    return [(int(hnum), blob) for hnum, blob in rows]


def header_package(blob: bytes) -> Package | None:
    """The package one header describes (None for a gpg-pubkey). The blob is what rpm's headerExport
    writes (no 8-byte header magic, as in the database): int32 il, int32 dl, il 16-byte index entries
    (tag, type, offset into the data store, count), then dl bytes of data store. All big-endian."""
    tags = _index(blob)
    name = _string(blob, tags, NAME)
    if not name:
        raise RpmdbError("its header has no name (tag 1000)")
    if name == PUBKEY_NAME:
        return None
    version, release = _string(blob, tags, VERSION), _string(blob, tags, RELEASE)
    epoch = _int32(blob, tags, EPOCH)
    return Package(name, f"{version}-{release}" if release else version, _string(blob, tags, ARCH),
                   kind="rpm", epoch="" if epoch is None else str(epoch), license=_string(blob, tags, LICENSE))


def _index(blob: bytes) -> dict[int, tuple[int, int, int]]:
    """tag -> (type, absolute offset of its data in blob, count), checked as lib/header.cc's hdrblobInit
    checks the preamble (lengths, exact size). Of the entries, only those read here are checked further."""
    if len(blob) < 8:  # hdrblobInit: "hdr length: BAD"
        raise RpmdbError(f"its header is truncated ({len(blob)} bytes, shorter than its 8-byte preamble)")
    il, dl = struct.unpack_from(">II", blob, 0)
    if il > _TAGS_MAX or dl > _DATA_MAX:  # hdrblobVerifyLengths
        raise RpmdbError(f"its header is malformed ({il} tags, {dl} bytes of data: out of range)")
    size = 8 + il * _ENTRY.size + dl
    if size != len(blob):  # hdrblobInit: "blob size(%d): BAD, 8 + 16 * il(%d) + dl(%d)"
        raise RpmdbError(f"its header is truncated or malformed: {len(blob)} bytes where its index "
                         f"({il} tags, {dl} bytes of data) says {size}")
    store = 8 + il * _ENTRY.size
    index: dict[int, tuple[int, int, int]] = {}
    for i in range(il):
        tag, kind, offset, count = _ENTRY.unpack_from(blob, 8 + i * _ENTRY.size)
        if tag not in (NAME, VERSION, RELEASE, EPOCH, LICENSE, ARCH):
            continue
        # hdrchkRange and hdrchkCount of hdrblobVerifyInfo: the data starts inside the store, count >= 1
        if offset < 0 or offset >= dl or count < 1:
            raise RpmdbError(f"its header is malformed (tag {tag}: offset {offset}, count {count}, "
                             f"data store of {dl} bytes)")
        # The last entry of a tag wins, as in headerImport ("Dribble entries replace duplicate region
        # entries"); the tags read here are in the immutable region and appear once.
        index[tag] = (kind, store + offset, count)
    return index


def _string(blob: bytes, index: dict[int, tuple[int, int, int]], tag: int) -> str:
    """A STRING tag, or the first string of a STRING_ARRAY / I18NSTRING (the "C" locale's text: the first
    of lib/header.cc's i18n lookup). A NUL must end it inside the data store (dataLength/strtaglen)."""
    if tag not in index:
        return ""
    kind, start, _count = index[tag]
    if kind not in (STRING_TYPE, STRING_ARRAY_TYPE, I18NSTRING_TYPE):
        raise RpmdbError(f"its header is malformed (tag {tag} has type {kind}, not a string)")
    end = blob.find(b"\x00", start)
    if end < 0:
        raise RpmdbError(f"its header is truncated (tag {tag}: a string without its NUL)")
    return blob[start:end].decode("utf-8", errors="replace")


def _int32(blob: bytes, index: dict[int, tuple[int, int, int]], tag: int) -> int | None:
    if tag not in index:
        return None
    kind, start, _count = index[tag]
    if kind != INT32_TYPE:
        raise RpmdbError(f"its header is malformed (tag {tag} has type {kind}, not INT32)")
    # hdrchkAlign (an INT32 is 4-byte aligned in the store) is left to rpm; the value must fit in the blob
    if start + 4 > len(blob):
        raise RpmdbError(f"its header is truncated (tag {tag}: INT32 past the end)")
    return int(struct.unpack_from(">I", blob, start)[0])
