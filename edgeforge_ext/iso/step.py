"""The ISO checks `build` runs: `iso inspect` in the collect step, and the optional boot-test step
(`build --boot-test`, build.boot_test) that boots the collected ISO under QEMU."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeforge_ext import console

if TYPE_CHECKING:
    from edgeforge_ext.build.report import Report
    from edgeforge_ext.config import Config
    from edgeforge_ext.iso.inspect import Expected


def expected_for_build(config: Config, user_data: bytes) -> Expected:
    """What this build put into the ISO: its user-data, and the CLUSTERCONFIG / EDGE_CUSTOM_CONFIG files
    that are in the checkout (CanvOS copies each `--if-exists`, so a missing one vanishes silently)."""
    from edgeforge_ext.iso.inspect import (
        CLUSTER_CONFIG_PATH,
        EDGE_CUSTOM_CONFIG_PATH,
        Expected,
        ExpectedFile,
        sha256_of,
    )

    checkout = config.checkout_dir
    files: list[ExpectedFile] = []
    for name, iso_path, what in ((config.build.cluster_config, CLUSTER_CONFIG_PATH, "the cluster configuration"),
                                 (config.build.edge_custom_config, EDGE_CUSTOM_CONFIG_PATH, "EDGE_CUSTOM_CONFIG")):
        local = checkout / name if name else None
        if local is not None and local.is_file():
            files.append(ExpectedFile(iso_path, sha256_of(local, what), f"{what} {name}"))
    return Expected(hashlib.sha256(user_data).hexdigest() if user_data else None, tuple(files),
                    uki=config.build.uki, arch=config.build.arch)


def inspect_collected_iso(config: Config, iso: Path, user_data: bytes, record: dict[str, Any]) -> None:
    """`iso inspect` of the build's ISO; the result goes into the report's iso record (also when it fails:
    ArtifactError, exit 8)."""
    from edgeforge_ext.iso.inspect import inspect_iso, raise_if_failed

    inspection = inspect_iso(iso, expected_for_build(config, user_data))
    record["inspect"] = inspection.as_json()
    for finding in inspection.findings:
        if finding.status == "warning":
            console.warn(f"iso inspect: {finding.detail}")
    raise_if_failed(inspection)
    console.info(f"iso inspect: {len(inspection.findings)} checks, none failed ({inspection.seconds:.2f} s)")


def boot_test_step(config: Config, report: Report) -> str | None:
    """Boot the collected ISO under BIOS and UEFI; the result goes into the report (iso.boot)."""
    from edgeforge_ext.iso.boot import BootOptions, boot_iso, raise_if_failed

    if not report.iso:
        console.note("boot-test: this build made no ISO")
        return "skipped"
    iso = Path(report.iso["path"])
    result = boot_iso(iso, BootOptions(timeout=float(config.build.boot_test_timeout)), on_note=console.note)
    report.iso["boot"] = result.as_json()
    raise_if_failed(result)
    return None
