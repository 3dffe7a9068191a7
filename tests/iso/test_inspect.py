"""`iso inspect` on real bootable ISOs (tests/bootable_iso.py): the good one passes, each broken one fails
with its own message, exit 8."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from edgeforge_ext.cli import run
from tests.bootable_iso import USER_DATA
from tests.iso_fixtures import BootIsos


def inspect(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    code = run(["iso", "inspect", "--json", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, json.loads(out), err


def checks(data: dict) -> dict[str, dict]:
    return {c["name"]: c for c in data["checks"]}


@pytest.fixture
def user_data(tmp_path: Path) -> Path:
    path = tmp_path / "user-data"
    path.write_bytes(USER_DATA)
    return path


def test_the_good_iso_passes_every_check(boot_isos: BootIsos, user_data: Path, capsys) -> None:
    code, data, err = inspect(capsys, str(boot_isos["good"]), "--user-data", str(user_data))
    assert code == 0, err
    assert data["ok"] and data["volume_label"] == "COS_LIVE" and not data["uki"]
    assert {c["name"]: c["status"] for c in data["checks"]} == {
        "bios-entry": "ok", "uefi-entry": "ok", "efi-binary": "ok", "usb-bios": "ok", "usb-uefi": "ok",
        "live-label": "ok", "user-data": "ok"}
    assert [e["platform"] for e in data["boot_entries"]] == ["bios", "uefi"]
    assert [b.upper() for b in data["efi_binaries"]] == ["EFI/BOOT/BOOTX64.EFI"]
    assert data["user_data_sha256"] == hashlib.sha256(USER_DATA).hexdigest()
    assert any(p["efi_system"] for p in data["partitions"])
    assert "bios-entry" in err and "FAILED" not in err  # the table for humans


def test_no_efi_entry(boot_isos: BootIsos, user_data: Path, capsys) -> None:
    code, data, err = inspect(capsys, str(boot_isos["no-efi"]), "--user-data", str(user_data))
    assert code == 8
    c = checks(data)
    assert c["bios-entry"]["status"] == "ok" and c["usb-bios"]["status"] == "ok"
    assert c["uefi-entry"]["status"] == "failed" and "no UEFI boot entry" in c["uefi-entry"]["detail"]
    assert c["usb-uefi"]["status"] == "failed" and "no EFI system partition" in c["usb-uefi"]["detail"]
    assert "error: the ISO" in err and "uefi-entry: no UEFI boot entry" in err


def test_a_uefi_only_iso_is_not_said_to_boot_bios_from_a_usb_stick(boot_isos: BootIsos, user_data: Path,
                                                                   capsys) -> None:
    """grub-mkrescue -d x86_64-efi writes no boot code, only an Apple partition map's block 0 ("ER", a jump
    over two bytes) at the start of the image: that is not code a BIOS could boot from a USB stick."""
    code, data, err = inspect(capsys, str(boot_isos["no-bios"]), "--user-data", str(user_data))
    assert code == 8
    assert data["mbr_boot_code"] is False
    c = checks(data)
    assert c["uefi-entry"]["status"] == "ok" and c["usb-uefi"]["status"] == "ok"
    assert c["bios-entry"]["status"] == "failed"
    assert c["usb-bios"]["status"] == "failed" and "an MBR without boot code" in c["usb-bios"]["detail"]
    assert "usb-bios" in err


def test_efi_entry_without_the_binary(boot_isos: BootIsos, user_data: Path, capsys) -> None:
    code, data, err = inspect(capsys, str(boot_isos["efi-without-binary"]), "--user-data", str(user_data))
    assert code == 8
    c = checks(data)
    assert c["uefi-entry"]["status"] == "ok"  # the entry is there: only the binary in it is missing
    assert c["efi-binary"]["status"] == "failed" and "no EFI binary" in c["efi-binary"]["detail"]
    assert "EFI/BOOT/BOOTX64.EFI" in c["efi-binary"]["detail"]
    assert data["efi_binaries"] == []
    assert "efi-binary: no EFI binary" in err


def test_missing_user_data(boot_isos: BootIsos, user_data: Path, capsys) -> None:
    code, data, err = inspect(capsys, str(boot_isos["no-user-data"]), "--user-data", str(user_data))
    assert code == 8
    assert checks(data)["user-data"]["status"] == "failed"
    assert "user-data missing: /files-iso/config.yaml is not in the ISO" in err
    assert [c["name"] for c in data["checks"] if c["status"] == "failed"] == ["user-data"]


def test_different_user_data(boot_isos: BootIsos, tmp_path: Path, capsys) -> None:
    other = tmp_path / "other"
    other.write_bytes(USER_DATA + b"# one more line\n")
    code, data, _err = inspect(capsys, str(boot_isos["good"]), "--user-data", str(other))
    assert code == 8 and "user-data differs" in checks(data)["user-data"]["detail"]


def test_without_expectations_missing_user_data_is_only_a_warning(boot_isos: BootIsos, capsys) -> None:
    code, data, _ = inspect(capsys, str(boot_isos["no-user-data"]))
    assert code == 0 and checks(data)["user-data"]["status"] == "warning"


def test_an_overlay_file_the_build_was_given_is_missing(boot_isos: BootIsos, tmp_path: Path, capsys) -> None:
    spc = tmp_path / "spc.tgz"
    spc.write_bytes(b"cluster definition")
    code, data, err = inspect(capsys, str(boot_isos["good"]), "--cluster-config", str(spc))
    assert code == 8
    assert checks(data)["file /opt/spectrocloud/clusterconfig/spc.tgz"]["status"] == "failed"
    assert "expected overlay file missing: /opt/spectrocloud/clusterconfig/spc.tgz" in err


def test_expect_file_present_by_path(boot_isos: BootIsos, capsys) -> None:
    code, data, _ = inspect(capsys, str(boot_isos["good"]), "--expect-file", "/boot/kernel")
    assert code == 0 and checks(data)["file /boot/kernel"]["status"] == "ok"


def test_uki_looks_for_user_data_at_the_root(boot_isos: BootIsos, user_data: Path, capsys) -> None:
    code, data, err = inspect(capsys, str(boot_isos["no-efi"]), "--uki", "--user-data", str(user_data))
    c = checks(data)
    assert data["uki"] and c["user-data"]["status"] == "failed" and "/config.yaml is not in the ISO" in err
    assert code == 8


def test_expectations_from_the_build_report_beside_the_iso(boot_isos: BootIsos, tmp_path: Path, capsys) -> None:
    iso = tmp_path / "palette-edge-installer.iso"
    iso.symlink_to(boot_isos["good"])
    expected = {"user_data_sha256": hashlib.sha256(b"another user-data").hexdigest(), "files": [],
                "uki": None, "arch": "amd64"}
    (tmp_path / "edgeforge-report.json").write_text(json.dumps(
        {"iso": {"path": str(iso), "inspect": {"expected": expected}}}))
    code, data, err = inspect(capsys, str(iso))
    assert code == 8 and "user-data differs" in err and "edgeforge-report.json" in err
    assert data["expected"]["arch"] == "amd64"


def test_not_an_iso(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.iso"
    junk.write_bytes(b"\0" * 65536)
    assert run(["iso", "inspect", str(junk)]) == 8
    assert "cannot read" in capsys.readouterr().err


def test_a_uki_iso_without_a_bios_entry_only_warns(uefi_only_isos: dict[str, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A UKI ISO (systemd-boot's loader/ in its EFI image) boots with UEFI only: no BIOS entry is a warning and
    the ISO passes; the same UEFI-only ISO without loader/ is not told as UKI, and there it is a failure."""
    code, data, err = inspect(capsys, str(uefi_only_isos["uki"]))
    assert code == 0, err
    assert data["ok"] and data["uki"] and [e["platform"] for e in data["boot_entries"]] == ["uefi"]
    c = checks(data)
    assert c["bios-entry"] == {"name": "bios-entry", "status": "warning", "hint": "",
                               "detail": "no BIOS boot entry: expected for a UKI ISO, which boots with UEFI only"}
    assert c["usb-bios"]["status"] == "warning"  # no isohybrid MBR either: also expected, and said so
    assert c["usb-bios"]["detail"].endswith("(expected for a UKI ISO, which boots with UEFI only)")
    assert c["uefi-entry"]["status"] == "ok" and c["efi-binary"]["status"] == "ok" and c["usb-uefi"]["status"] == "ok"
    assert c["user-data"]["status"] == "ok" and "/config.yaml present" in c["user-data"]["detail"]
    assert "expected for a UKI ISO" in " ".join(err.split()) and "UKI; read in" in err and "FAILED" not in err

    code, data, err = inspect(capsys, str(uefi_only_isos["plain"]))
    assert code == 8
    assert not data["ok"] and not data["uki"] and [e["platform"] for e in data["boot_entries"]] == ["uefi"]
    c = checks(data)
    assert c["bios-entry"]["status"] == "failed"
    assert c["bios-entry"]["detail"] == ("no BIOS boot entry: the El Torito catalog has no x86 BIOS (platform 0x00) "
                                         "entry; legacy BIOS (CSM) machines cannot boot it")
    assert c["usb-bios"]["status"] == "failed" and c["uefi-entry"]["status"] == "ok"
    assert "failed 2 check(s): bios-entry, usb-bios" in err
    assert "bios-entry: no BIOS boot entry: the El Torito catalog has no x86 BIOS (platform 0x00) entry" in err
