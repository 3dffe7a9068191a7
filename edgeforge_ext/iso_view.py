"""The `iso inspect` and `iso boot` results for humans (stderr)."""

from __future__ import annotations

from edgeforge_ext.iso.boot import FIRMWARE_NAMES, BootReport
from edgeforge_ext.iso.inspect import Inspection

_STATUS = {"ok": "[green]ok[/green]", "warning": "[yellow]warning[/yellow]", "failed": "[bold red]FAILED[/bold red]"}


def print_inspection(inspection: Inspection) -> None:
    from rich.markup import escape
    from rich.table import Table

    from edgeforge_ext import console

    table = Table(title=f"iso inspect {escape(inspection.path.name)}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for f in inspection.findings:
        detail = escape(f.detail) + (f"\n[dim]{escape(f.hint)}[/dim]" if f.hint and f.status != "ok" else "")
        table.add_row(f.name, _STATUS.get(f.status, f.status), detail)
    console.err().print(table)
    console.info(f"{inspection.path}: {inspection.size / 1024**2:.1f} MiB, volume label "
                 f"{inspection.volume_label!r}{', UKI' if inspection.uki else ''}; read in {inspection.seconds:.2f} s")


def print_boot(report: BootReport) -> None:
    from edgeforge_ext import console

    console.info(f"boot test of {report.iso} under {report.accel.upper()} ({report.accel_reason})")
    for r in report.results:
        seen = ", ".join(f"{name} at {at:.1f} s" for name, at in r.seen.items()) or "no marker"
        state = "passed" if r.passed else "FAILED"
        console.info(f"  {FIRMWARE_NAMES[r.firmware]:<15} {state} in {r.seconds:.1f} s ({seen}); console: {r.log}")
