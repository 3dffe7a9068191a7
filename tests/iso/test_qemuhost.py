"""The accelerator probe with real QEMU."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgeforge_ext.iso.qemuhost import boot_host, probe, probe_sector
from tests.conftest import require


def test_the_probe_sector_is_a_boot_sector() -> None:
    sector = probe_sector()
    assert len(sector) == 512 and sector[-2:] == b"\x55\xaa"


def test_the_probe_boots_under_tcg_and_the_host_says_how_it_boots() -> None:
    qemu = shutil.which("qemu-system-x86_64")
    require(qemu is not None, "qemu-system-x86_64 is not installed")
    assert qemu is not None
    ok, seconds, why = probe(Path(qemu), "tcg", 30.0)
    assert ok and why == "" and seconds < 30
    host = boot_host()
    assert host.usable and host.accel.name in ("kvm", "tcg")
    # KVM only when its own probe boot worked; TCG says why KVM was not used (when /dev/kvm exists).
    assert host.accel.reason and (host.accel.name == "kvm") == host.accel.reason.startswith("KVM proven")
    assert host.accel.name.upper() in host.summary()
