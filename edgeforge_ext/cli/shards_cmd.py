"""`gather`: merge the shards' records into one summary (the shards themselves: `plan --shards`,
`build --shard`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgeforge_ext.cli.common import load, wants_json


def gather(
    ctx: typer.Context,
    places: Annotated[list[Path], typer.Argument(metavar="DIR...", help="where the shards' outputs (their "
                                                 "edgeforge-shard.json records) were collected")],
    plan_file: Annotated[Path | None, typer.Option("--plan", metavar="FILE", show_default=False,
                                                   help="the shards expected: `plan --shards --format json`, the "
                                                   "GitHub matrix or Argo's list ('-': stdin)")] = None,
    output: Annotated[Path | None, typer.Option("--output", metavar="DIR", show_default=False,
                                                help="where edgeforge-summary.json goes (default: the output "
                                                "directory)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON on stdout")] = False,
) -> None:
    """Merge the shards' results into one edgeforge-summary.json (the shape `build --all` writes), one
    table and the GitHub job summary; exit non-zero naming every failed or missing shard."""
    from edgeforge_ext import console
    from edgeforge_ext.shards.gather import gather as merge

    flags: dict[str, Any] = {"output.dir": str(output)} if output is not None else {}
    config = load(ctx, flags)
    summary = merge(list(places), config.output_dir, plan_file)
    if wants_json(ctx, json_out):
        console.print_json(summary.as_json())


def register(app: typer.Typer) -> None:
    app.command("gather")(gather)
