"""The preflight table for humans."""

from __future__ import annotations

from edgeforge_ext.preflight import Check


def print_checks(checks: list[Check]) -> None:
    from rich.table import Table

    from edgeforge_ext import console

    table = Table(title="preflight")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    table.add_column("what to do")
    for c in checks:
        if c.ok:
            result = "[green]ok[/green]"
        elif c.required:
            result = "[bold red]FAILED[/bold red]"
        else:
            result = "[yellow]warning[/yellow]"
        table.add_row(c.name, result, c.detail, c.hint)
    console.err().print(table)
