"""ISO verification: the .sha256 must match and the rendered user-data must be inside, byte for byte."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from pathlib import Path

import pycdlib
import pytest

from edgeforge_ext.errors import ArtifactError
from edgeforge_ext.iso.verify import verify_iso
from tests.conftest import require

USER_DATA = b"#cloud-config\nstylus:\n  site:\n    paletteEndpoint: api.spectrocloud.com\n"


def _write_sum(iso: Path, digest: str | None = None) -> None:
    digest = digest or hashlib.sha256(iso.read_bytes()).hexdigest()
    iso.with_name(iso.name + ".sha256").write_text(f"{digest}  {iso.name}\n")


def _iso_dir(parts: list[str]) -> str:
    return "/" + "/".join(p.upper().replace("-", "_").replace(".", "_") for p in parts)


def _pycdlib_iso(path: Path, files: dict[str, bytes], *, rock_ridge: bool = True, joliet: bool = True) -> Path:
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, rock_ridge="1.09" if rock_ridge else None, joliet=3 if joliet else None)
    made: set[str] = set()
    for i, (name, data) in enumerate(files.items()):
        parts = name.strip("/").split("/")
        for depth in range(1, len(parts)):
            d = _iso_dir(parts[:depth])
            if d not in made:
                made.add(d)
                iso.add_directory(d, rr_name=parts[depth - 1] if rock_ridge else None,
                                  joliet_path="/" + "/".join(parts[:depth]) if joliet else None)
        parent = _iso_dir(parts[:-1]) if len(parts) > 1 else ""
        iso.add_fp(io.BytesIO(data), len(data), f"{parent}/F{i}.;1",
                   rr_name=parts[-1] if rock_ridge else None, joliet_path=name if joliet else None)
    iso.write(str(path))
    iso.close()
    _write_sum(path)
    return path


def test_rock_ridge_config_yaml_at_the_root(tmp_path: Path):
    iso = _pycdlib_iso(tmp_path / "installer.iso", {"/config.yaml": USER_DATA, "/other.txt": b"x"})
    check = verify_iso(iso, USER_DATA)
    assert check.user_data_path == "/config.yaml"
    assert check.size == iso.stat().st_size
    assert check.sha256 == hashlib.sha256(iso.read_bytes()).hexdigest()


def test_user_data_found_anywhere_by_scan_joliet_only(tmp_path: Path):
    iso = _pycdlib_iso(tmp_path / "installer.iso", {"/oem/cloud/99_userdata.yaml": USER_DATA},
                       rock_ridge=False)
    assert verify_iso(iso, USER_DATA).user_data_path == "/oem/cloud/99_userdata.yaml"


def test_plain_iso9660_names(tmp_path: Path):
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1)
    iso.add_fp(io.BytesIO(USER_DATA), len(USER_DATA), "/CONFIG.YAM;1")
    path = tmp_path / "plain.iso"
    iso.write(str(path))
    iso.close()
    _write_sum(path)
    assert verify_iso(path, USER_DATA).user_data_path == "/CONFIG.YAM;1"


def test_an_iso_made_by_xorriso_like_the_standin(tmp_path: Path):
    require(shutil.which("xorriso") is not None, "xorriso is not installed")
    root = tmp_path / "root"
    root.mkdir()
    (root / "config.yaml").write_bytes(USER_DATA)
    iso = tmp_path / "palette-edge-installer.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", str(iso), str(root)], check=True,
                   capture_output=True)
    _write_sum(iso)
    assert verify_iso(iso, USER_DATA).user_data_path == "/config.yaml"


def test_checksum_mismatch(tmp_path: Path):
    iso = _pycdlib_iso(tmp_path / "installer.iso", {"/config.yaml": USER_DATA})
    _write_sum(iso, "0" * 64)
    with pytest.raises(ArtifactError, match="does not match") as info:
        verify_iso(iso, USER_DATA)
    assert info.value.exit_code == 8


def test_missing_iso_and_missing_sum(tmp_path: Path):
    with pytest.raises(ArtifactError, match="was not produced"):
        verify_iso(tmp_path / "installer.iso", USER_DATA)
    iso = _pycdlib_iso(tmp_path / "installer.iso", {"/config.yaml": USER_DATA})
    iso.with_name("installer.iso.sha256").unlink()
    with pytest.raises(ArtifactError, match="checksum file"):
        verify_iso(iso, USER_DATA)


def test_user_data_not_inside(tmp_path: Path):
    iso = _pycdlib_iso(tmp_path / "installer.iso", {"/config.yaml": USER_DATA + b"# changed\n"})
    with pytest.raises(ArtifactError, match="user-data is not inside"):
        verify_iso(iso, USER_DATA)


def test_not_an_iso_at_all(tmp_path: Path):
    iso = tmp_path / "installer.iso"
    iso.write_bytes(b"\0" * 70000)
    _write_sum(iso)
    with pytest.raises(ArtifactError, match="ISO9660"):
        verify_iso(iso, USER_DATA)
