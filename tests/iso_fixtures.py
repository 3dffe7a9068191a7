"""Fixture plugin: the bootable installer ISOs of tests/bootable_iso.py, built once per session and kept in
pytest's cache directory by content (a second session with the same kernel, busybox and GRUB reuses them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bootable_iso import USER_DATA, VARIANTS, Kit, build_iso, cache_key, find_kit
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
