"""`edgeforge-ext config show`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from edgeforge_ext.cli.common import BUILD_FLAGS, load, wants_json, with_flags

config_app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)


@config_app.command("show")
@with_flags(BUILD_FLAGS)
def show(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON on stdout")] = False,
    variant: Annotated[str | None, typer.Option("--variant", metavar="NAME",
                                                help="show the configuration of one [[variants]] table")] = None,
    *,
    flags: dict[str, Any],
    password_stdin: bool,
) -> None:
    """The resolved configuration, each value with the layer it came from; secrets masked.

    Layers: packaged defaults < edgeforge.toml (or --config) < EDGEFORGE_* environment < flags.
    """
    from edgeforge_ext.config_view import config_rows, print_config

    config = load(ctx, flags, password_stdin=password_stdin)
    if variant:
        config = config.with_variant(variant)
    if wants_json(ctx, json_out):
        from edgeforge_ext import console

        console.print_json(config_rows(config))
    else:
        print_config(config)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
