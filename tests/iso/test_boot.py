"""`iso boot` with real QEMU under TCG (or KVM where a probe boot proves it): the good ISO boots under BIOS
and UEFI, the BIOS-only one fails under UEFI only, a hung installer fails at --timeout. No mocks."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from edgeforge_ext.cli import run
from edgeforge_ext.iso.qemuhost import find_ovmf
from tests.bootable_iso import USER_DATA
from tests.conftest import require
from tests.iso_fixtures import BootIsos

# Each boot of the fixture takes 8-15 s under TCG on a 2-CPU host; the limit leaves room for a busy one.
TIMEOUT = "120"


@pytest.fixture(autouse=True)
def _qemu() -> None:
    require(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    require(find_ovmf() is not None, "OVMF is not installed (apt-get install ovmf)")


def boot(capsys: pytest.CaptureFixture[str], iso: Path, tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    code = run(["iso", "boot", "--json", "--cpus", "1", "--log-dir", str(tmp_path), str(iso), *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, json.loads(out), err


def test_the_good_iso_boots_under_bios_and_uefi(boot_isos: BootIsos, tmp_path: Path, capsys) -> None:
    code, data, err = boot(capsys, boot_isos["good"], tmp_path, "--timeout", TIMEOUT)
    assert code == 0, err
    assert data["passed"] and data["accel"] in ("kvm", "tcg") and data["accel_reason"]
    assert [f["firmware"] for f in data["firmwares"]] == ["bios", "uefi"]
    for fw in data["firmwares"]:
        assert fw["passed"] and fw["missing"] == [] and fw["seconds"] < 60, fw
        assert set(fw["seen"]) == {"bootloader", "kernel", "installer"}
        assert fw["seen"]["bootloader"] <= fw["seen"]["kernel"] <= fw["seen"]["installer"]
        console = Path(fw["log"]).read_text(errors="replace")
        # The booted system read the user-data from the CD: the kernel's ISO9660 and CD drivers work.
        assert f"user-data sha256 {hashlib.sha256(USER_DATA).hexdigest()}" in console
    assert "TCG" in err or "KVM" in err  # says which accelerator it used


def test_a_bios_only_iso_fails_under_uefi_only(boot_isos: BootIsos, tmp_path: Path, capsys) -> None:
    code, data, err = boot(capsys, boot_isos["no-efi"], tmp_path, "--timeout", TIMEOUT)
    assert code == 8
    by_fw = {f["firmware"]: f for f in data["firmwares"]}
    assert by_fw["bios"]["passed"] and not by_fw["uefi"]["passed"]
    assert "no bootable device" in by_fw["uefi"]["failure"]
    assert "did not boot under UEFI (OVMF)" in err and "BIOS (SeaBIOS)" not in err.split("error:")[1].splitlines()[0]
    assert "last" in err and "console lines" in err and "UEFI Interactive Shell" in err  # the console tail


def test_a_hung_installer_fails_at_the_timeout(boot_isos: BootIsos, tmp_path: Path, capsys) -> None:
    code, data, err = boot(capsys, boot_isos["silent"], tmp_path, "--firmware", "bios", "--timeout", "30")
    assert code == 8
    result = data["firmwares"][0]
    assert not result["passed"] and "installer" in result["missing"]
    assert "never showed" in result["failure"] and "within 30 s" in result["failure"]
    assert "did not boot under BIOS (SeaBIOS)" in err
    assert "edgeforge-fixture: init started" in err  # the last console lines are shown


def test_expect_replaces_the_default_markers(boot_isos: BootIsos, tmp_path: Path, capsys) -> None:
    never = "this line is never printed"
    code, data, _err = boot(capsys, boot_isos["good"], tmp_path, "--firmware", "bios", "--timeout", TIMEOUT,
                           "--expect", "Linux version", "--expect", never)
    assert code == 8
    result = data["firmwares"][0]
    assert result["missing"] == ["expect 2"] and "expect 1" in result["seen"]
    # The machine powered off before the marker appeared: said so, not a timeout.
    assert "stopped" in result["failure"]


@pytest.mark.parametrize("args", [["--expect", "("], ["--firmware", "coreboot"], ["--memory", "4096"]])
def test_bad_options_are_usage_errors(args: list[str], tmp_path: Path, capsys) -> None:
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"")
    assert run(["iso", "boot", str(iso), *args]) == 2
    assert "error:" in capsys.readouterr().err
