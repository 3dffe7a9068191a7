"""`build` runs `iso inspect` in collect and, with --boot-test, boots the ISO. The ISO is put in build/
before a `--skip earthly` build (the Earthly double cannot make a bootable one yet), carrying the exact
user-data this build renders."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from edgeforge_ext.cli import run
from edgeforge_ext.iso.qemuhost import find_ovmf
from tests.bootable_iso import build_iso, find_kit
from tests.canvos_fixture import CanvosRepo
from tests.conftest import require
from tests.engine.buildkit import REMOTE_BUILDKIT
from tests.iso_fixtures import BootIsos

ISO = "palette-edge-installer.iso"


def build(workdir: Path, url: str, *extra: str) -> list[str]:
    return ["--workdir", str(workdir), "build", "--canvos-url", url, "--ref", "v4.10.0", "--target", "iso",
            "--skip", "preflight", "--skip", "earthly", "--no-push", "--buildkit-host", REMOTE_BUILDKIT,
            "--keep-user-data", *extra]


def put_iso(workdir: Path, variant: str, boot_isos: BootIsos) -> bytes:
    """The fixture ISO variant, made with the user-data the build renders, as Earthly would leave it."""
    checkout = workdir / "CanvOS"
    user_data = (checkout / "user-data").read_bytes()
    kit = find_kit()
    assert not isinstance(kit, str)
    target = checkout / "build" / ISO
    build_iso(kit, variant, target, user_data=user_data)
    target.with_name(ISO + ".sha256").write_text(f"{hashlib.sha256(target.read_bytes()).hexdigest()}  {ISO}\n")
    return user_data


@pytest.fixture
def rendered(docker_client, canvos_repo, tmp_path: Path, capsys) -> Path:
    """A work directory whose checkout holds the rendered user-data (a first build stops at collect)."""
    workdir = tmp_path / "w"
    assert run(build(workdir, canvos_repo.url)) == 8  # no ISO yet
    capsys.readouterr()
    assert (workdir / "CanvOS" / "user-data").is_file()
    return workdir


def test_build_fails_with_8_when_the_iso_has_no_uefi_entry(rendered: Path, canvos_repo, boot_isos, capsys) -> None:
    put_iso(rendered, "no-efi", boot_isos)
    code = run(build(rendered, canvos_repo.url))
    err = capsys.readouterr().err
    assert code == 8, err[-3000:]
    assert "failed 2 check(s): uefi-entry, usb-uefi" in err and "no UEFI boot entry" in err
    report = json.loads((rendered / "output" / "edgeforge-report.json").read_text())
    assert report["status"] == "failed"
    checks = {c["name"]: c["status"] for c in report["iso"]["inspect"]["checks"]}
    assert checks["uefi-entry"] == "failed" and checks["user-data"] == "ok"


def test_build_boot_test_boots_the_collected_iso(rendered: Path, canvos_repo, boot_isos, capsys) -> None:
    require(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    user_data = put_iso(rendered, "good", boot_isos)
    code = run(build(rendered, canvos_repo.url, "--boot-test", "--json"))
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    report = json.loads(out)
    assert report["iso"]["inspect"]["ok"]
    assert report["iso"]["inspect"]["user_data_sha256"] == hashlib.sha256(user_data).hexdigest()
    boot = report["iso"]["boot"]
    assert boot["passed"] and [f["firmware"] for f in boot["firmwares"]] == ["bios", "uefi"]
    assert [s["name"] for s in report["steps"]][-3:] == ["boot-test", "push", "report"]
    assert "boot bios: passed" in err and "boot uefi: passed" in err


def test_without_boot_test_there_is_no_boot_step(rendered: Path, canvos_repo, boot_isos, capsys) -> None:
    put_iso(rendered, "good", boot_isos)
    code = run(build(rendered, canvos_repo.url, "--json"))
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    report = json.loads(out)
    assert "boot-test" not in [s["name"] for s in report["steps"]] and "boot" not in report["iso"]
    assert report["iso"]["inspect"]["ok"]


def test_the_job_summary_shows_each_firmware_boot_result(rendered: Path, canvos_repo: CanvosRepo,
                                                       boot_isos: BootIsos, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Under GitHub Actions the job summary's row for the build says how the ISO booted, per firmware: here
    it boots under BIOS and fails under UEFI (immucore's failure banner), so the build fails with 8."""
    require(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    require(find_ovmf() is not None, "OVMF is not installed (apt-get install ovmf)")
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("EDGEFORGE_BUILD_BOOT_TEST_TIMEOUT", "120")  # per firmware; a boot takes 5-15 s
    put_iso(rendered, "uefi-boot-fails", boot_isos)
    code = run(build(rendered, canvos_repo.url, "--boot-test"))
    err = capsys.readouterr().err
    assert code == 8, err[-3000:]
    assert "did not boot under UEFI (OVMF)" in err
    report = json.loads((rendered / "output" / "edgeforge-report.json").read_text())
    firmwares = report["iso"]["boot"]["firmwares"]
    assert [(f["firmware"], f["passed"]) for f in firmwares] == [("bios", True), ("uefi", False)]
    assert "KAIROS BOOT FAILED" in firmwares[1]["failure"]
    row = next(ln for ln in summary.read_text().splitlines() if ln.startswith("| default |"))
    assert "❌ failed (exit 8)" in row
    assert f"{ISO} (" in row and "<br>boot bios: ✅<br>boot uefi: ❌ |" in row
