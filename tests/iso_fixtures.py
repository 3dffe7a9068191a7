"""Fixture plugin: the bootable installer ISOs of tests/bootable_iso.py, built once per session and kept in
pytest's cache directory by content (a second session with the same kernel, busybox and GRUB reuses them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.bootable_iso import USER_DATA, VARIANTS, Kit, build_iso, cache_key, find_kit, standin_boot_kit, uefi_only_iso
from tests.conftest import require


class BootIsos:
    def __init__(self, kit: Kit, cache: Path) -> None:
        self.kit = kit
        self.cache = cache

    def __getitem__(self, variant: str) -> Path:
        assert variant in VARIANTS, variant
        path = self.cache / f"{variant}-{cache_key(self.kit, variant, USER_DATA)}.iso"
        if not path.is_file():
            for stale in self.cache.glob(f"{variant}-*.iso"):  # made from other inputs
                stale.unlink()
            build_iso(self.kit, variant, path)
        return path


@pytest.fixture(scope="session")
def boot_isos(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> BootIsos:
    kit = find_kit()
    require(isinstance(kit, Kit), str(kit))
    assert isinstance(kit, Kit)
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider (.ci/run)
    where = cache.mkdir("edgeforge-boot-isos") if cache is not None else tmp_path_factory.mktemp("boot-isos")
    return BootIsos(kit, Path(where))


@pytest.fixture(scope="session")
def uefi_only_isos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The UEFI-only ISOs of bootable_iso.uefi_only_iso: "uki" with systemd-boot's loader/ directory in its
    EFI image, "plain" the same ISO without it. Made in about a second: not cached."""
    require(all(shutil.which(tool) for tool in ("mmd", "mcopy")), "mtools (mmd, mcopy) is not installed")
    boot_kit = standin_boot_kit()
    require(boot_kit is not None, f"no GRUB EFI image for the UEFI-only ISOs: {find_kit()}")
    assert boot_kit is not None
    where = tmp_path_factory.mktemp("uefi-only-isos")
    return {name: uefi_only_iso(boot_kit, where / f"{name}.iso", uki=name == "uki") for name in ("uki", "plain")}
