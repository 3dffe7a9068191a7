"""`iso inspect` and `iso boot`: thin commands over isoinspect.py and qemuboot.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from edgeforge_ext.cli.common import split_commas, wants_json

iso_app = typer.Typer(help="Will the ISO boot: static inspection and a QEMU boot test.", no_args_is_help=True)

IsoArg = Annotated[Path, typer.Argument(help="the installer ISO", metavar="ISO", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON on stdout")]


@iso_app.command("inspect")
def inspect(
    ctx: typer.Context,
    iso: IsoArg,
    user_data: Annotated[Path | None, typer.Option(
        "--user-data", metavar="FILE", show_default=False,
        help="the rendered user-data: the ISO's /files-iso/config.yaml (/config.yaml for UKI) must equal it "
        "(default: the sha256 the build's report recorded, when the ISO sits beside its report)")] = None,
    cluster_config: Annotated[Path | None, typer.Option(
        "--cluster-config", metavar="FILE", show_default=False,
        help="the build's CLUSTERCONFIG file: must be in the ISO at /opt/spectrocloud/clusterconfig/spc.tgz")] = None,
    edge_custom_config: Annotated[Path | None, typer.Option(
        "--edge-custom-config", metavar="FILE", show_default=False,
        help="the build's EDGE_CUSTOM_CONFIG file: must be in the ISO at /.edge_custom_config.yaml")] = None,
    expect_file: Annotated[list[str] | None, typer.Option(
        "--expect-file", metavar="PATH[=FILE]", show_default=False,
        help="a file the ISO must hold (repeatable); with =FILE, equal to that local file")] = None,
    report: Annotated[Path | None, typer.Option(
        "--report", metavar="FILE", show_default=False,
        help="take the expectations from this edgeforge-report.json (default: the one beside the ISO)")] = None,
    uki: Annotated[bool | None, typer.Option(
        "--uki/--no-uki", show_default=False,
        help="a UKI (UEFI-only) ISO: no BIOS entry is a warning, user-data at /config.yaml (default: told from "
        "the EFI image)")] = None,
    arch: Annotated[str | None, typer.Option(
        "--arch", show_default=False, help="amd64 needs BOOTX64.EFI, arm64 BOOTAA64.EFI (default: either)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Static checks, no root, no mounting: El Torito BIOS and UEFI entries, the EFI binary in the EFI
    image, the hybrid MBR/GPT a USB stick needs, the live volume label, user-data and the overlay files.
    Exit 8 naming each failed check."""
    from edgeforge_ext import console
    from edgeforge_ext.build.report import REPORT_NAME
    from edgeforge_ext.errors import UsageError
    from edgeforge_ext.iso.inspect import (
        expected_from_files,
        expected_from_report,
        inspect_iso,
        raise_if_failed,
    )
    from edgeforge_ext.iso_view import print_inspection

    if arch not in (None, "amd64", "arm64"):
        raise UsageError("--arch takes amd64 or arm64")
    files = tuple(_expect_file(item) for item in expect_file or [])
    expected = expected_from_files(user_data=user_data, cluster_config=cluster_config,
                                   edge_custom_config=edge_custom_config, files=files, uki=uki, arch=arch)
    given = user_data or cluster_config or edge_custom_config or files
    report_path = report or iso.parent / REPORT_NAME
    if not given and (report is not None or report_path.is_file()):
        from_report = expected_from_report(report_path, iso)
        if from_report is None and report is not None:
            raise UsageError(f"{report} is not the report of {iso.name} (or records no expectations)")
        if from_report is not None:
            expected = from_report
            console.note(f"comparing with what the build expected ({report_path})")
    inspection = inspect_iso(iso, expected)
    print_inspection(inspection)
    _conclude(ctx, json_out, inspection.as_json(), lambda: raise_if_failed(inspection))


def _conclude(ctx: typer.Context, json_out: bool, result: dict[str, Any], check: Callable[[], None]) -> None:
    """`check` raises when a check failed; --json prints `result` either way (on failure with the error)."""
    from edgeforge_ext import console
    from edgeforge_ext.errors import EdgeforgeError

    try:
        check()
    except EdgeforgeError as exc:
        exc.result = result
        raise
    if wants_json(ctx, json_out):
        console.print_json(result)


def _expect_file(item: str) -> tuple[str, Path | None]:
    from edgeforge_ext.errors import UsageError

    path, _, local = item.partition("=")
    if not path.strip("/"):
        raise UsageError(f"--expect-file {item!r}: give the path inside the ISO, e.g. /opt/spectrocloud/x.tgz")
    return path, Path(local) if local else None


@iso_app.command("boot")
def boot(
    ctx: typer.Context,
    iso: IsoArg,
    firmware: Annotated[list[str] | None, typer.Option(
        "--firmware", metavar="bios,uefi", show_default=False,
        help="which firmware to boot with, each in turn (default: bios,uefi)")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", metavar="SECONDS", help="per firmware: how long the markers may take")] = 900.0,
    expect: Annotated[list[str] | None, typer.Option(
        "--expect", metavar="REGEX", show_default=False,
        help="a regular expression the serial console must show (repeatable; replaces the defaults: the "
        "bootloader, 'Linux version', and the live system's 'login:')")] = None,
    memory: Annotated[int, typer.Option("--memory", metavar="MiB", help="guest memory, at most 2048")] = 2048,
    cpus: Annotated[int, typer.Option("--cpus", metavar="N", help="guest CPUs")] = 2,
    log_dir: Annotated[Path | None, typer.Option(
        "--log-dir", metavar="DIR", show_default=False,
        help="where the console logs go, ISO-NAME.boot-FIRMWARE.log (default: beside the ISO)")] = None,
    accel: Annotated[str, typer.Option(
        "--accel", metavar="auto|kvm|tcg", help="auto: KVM when a probe boot proves it works, else TCG")] = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Boot the ISO in QEMU with SeaBIOS and with OVMF (UEFI), a blank disk attached, the serial console
    captured to a log. Passes when the console shows the markers of a successful boot within --timeout
    per firmware; exit 8 with the last 50 console lines naming the firmware that failed."""
    from edgeforge_ext import console
    from edgeforge_ext.errors import UsageError
    from edgeforge_ext.iso.boot import FIRMWARES, BootOptions, boot_iso, raise_if_failed
    from edgeforge_ext.iso.markers import DEFAULT_MARKERS, expect_markers
    from edgeforge_ext.iso_view import print_boot

    try:
        markers = expect_markers(expect) if expect else DEFAULT_MARKERS
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    options = BootOptions(firmwares=tuple(split_commas(firmware) or FIRMWARES), timeout=timeout,
                          memory_mib=memory, cpus=cpus, markers=markers, log_dir=log_dir, accel=accel)
    report = boot_iso(iso, options, on_note=console.note)
    print_boot(report)
    _conclude(ctx, json_out, report.as_json(), lambda: raise_if_failed(report))


def register(app: typer.Typer) -> None:
    app.add_typer(iso_app, name="iso")
