"""Verify a built ISO: its `.sha256` file matches, and the rendered user-data is inside it byte for byte."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeforge_ext.errors import ArtifactError
from edgeforge_ext.fsutil import sha256_file

# Where CanvOS puts user-data in the ISO: +build-iso copies it to the overlay's files-iso/config.yaml
# (every tag, v4.4.12 .. main); +build-uki-iso to the overlay root as config.yaml. Other names last.
LIKELY_PATHS = ("/files-iso/config.yaml", "/config.yaml", "/user-data", "/cloud-config.yaml", "/userdata")
_MAX_SCAN_SIZE = 16 * 1024 * 1024  # files bigger than this cannot be a user-data; skip them in the scan


@dataclass(frozen=True)
class IsoCheck:
    sha256: str
    size: int
    user_data_path: str  # where inside the ISO the user-data was found, e.g. "/config.yaml"


def read_sha256_file(path: Path, iso_name: str) -> str:
    """The hex digest from a `sha256sum`-style file (`<hex>  <name>` or `<hex> *<name>`, or just `<hex>`)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ArtifactError(f"cannot read the checksum file {path}: {exc.strerror}") from exc
    entries = [line.split() for line in text.splitlines() if line.strip()]
    for parts in entries:
        digest = parts[0].lower()
        name = parts[1].lstrip("*") if len(parts) > 1 else ""
        if len(digest) == 64 and all(ch in "0123456789abcdef" for ch in digest) \
                and (not name or Path(name).name == iso_name or len(entries) == 1):
            return digest
    raise ArtifactError(f"{path} holds no SHA256 for {iso_name}")


def verify_iso(iso_path: Path, user_data: bytes) -> IsoCheck:
    """ArtifactError (exit 8) when the ISO or its `.sha256` is missing, the sum differs, or the
    user-data is not in the ISO."""
    iso_path = Path(iso_path)
    if not iso_path.is_file():
        raise ArtifactError(f"the ISO {iso_path} was not produced")
    sum_path = iso_path.with_name(iso_path.name + ".sha256")
    if not sum_path.is_file():
        raise ArtifactError(f"the checksum file {sum_path} is missing next to the ISO")
    expected = read_sha256_file(sum_path, iso_path.name)
    actual = sha256_file(iso_path)
    if actual != expected:
        raise ArtifactError(f"the ISO {iso_path} does not match {sum_path.name}",
                            details=[f"expected {expected}", f"actual   {actual}"])
    found = find_user_data(iso_path, user_data)
    if found is None:
        raise ArtifactError(f"the rendered user-data is not inside the ISO {iso_path}",
                            hint="the build did not embed the user-data; check that `user-data` was in the "
                            "checkout when Earthly ran")
    return IsoCheck(actual, iso_path.stat().st_size, found)


def find_user_data(iso_path: Path, user_data: bytes) -> str | None:
    """The path inside the ISO of a file whose bytes equal `user_data`, or None."""
    import pycdlib
    from pycdlib.pycdlibexception import PyCdlibException

    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(iso_path))
    except (PyCdlibException, OSError) as exc:
        raise ArtifactError(f"cannot read {iso_path} as an ISO9660 image: {exc}") from exc
    try:
        facade, kind = best_facade(iso)
        for path in LIKELY_PATHS:
            if _same(facade, kind, path, user_data):
                return path
        for path, size in _walk(facade, kind):
            if size == len(user_data) and _same(facade, kind, path, user_data):
                return path
        return None
    finally:
        iso.close()


def best_facade(iso: Any) -> tuple[Any, str]:
    # Rock Ridge and Joliet keep the real names; plain ISO9660 names are "CONFIG.YAML;1".
    if iso.has_rock_ridge():
        return iso.get_rock_ridge_facade(), "rr"
    if iso.has_joliet():
        return iso.get_joliet_facade(), "joliet"
    return iso.get_iso9660_facade(), "iso9660"


def _iso_name(path: str) -> str:
    parts = [p.upper().replace("-", "_") for p in path.strip("/").split("/")]
    parts[-1] = parts[-1] + ("" if "." in parts[-1] else ".") + ";1"
    return "/" + "/".join(parts)


def _same(facade: Any, kind: str, path: str, want: bytes) -> bool:
    import io

    from pycdlib.pycdlibexception import PyCdlibException

    name = _iso_name(path) if kind == "iso9660" and ";" not in path else path
    try:
        record = facade.get_record(name)
        if record.is_dir() or record.get_data_length() != len(want):
            return False
        out = io.BytesIO()
        facade.get_file_from_iso_fp(out, name)
    except PyCdlibException:
        return False
    return out.getvalue() == want


def _walk(facade: Any, kind: str) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for dirname, _dirs, files in facade.walk("/"):
        for fname in files:
            path = dirname.rstrip("/") + "/" + fname
            try:
                size = int(facade.get_record(path).get_data_length())
            except Exception:  # odd records are skipped, not fatal
                continue
            if size <= _MAX_SCAN_SIZE:
                found.append((path, size))
    return found
