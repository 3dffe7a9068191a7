"""`edgeforge-ext render`: write user-data and .arg (into the CanvOS checkout, or --output DIR)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgeforge_ext.cli.common import BUILD_FLAGS, load, wants_json, with_flags


@with_flags(BUILD_FLAGS)
def render(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON on stdout")] = False,
    *,
    flags: dict[str, Any],
    password_stdin: bool,
) -> None:
    """Render and validate user-data and .arg, then write them.

    They go into the CanvOS checkout (WORKDIR/CanvOS), or into --output DIR when given (for render,
    --output names where the two files go). Nothing is written when validation fails (exit 5).
    """
    from edgeforge_ext import console
    from edgeforge_ext.errors import UsageError
    from edgeforge_ext.render import render_all, write_rendered

    config = load(ctx, flags, password_stdin=password_stdin)

    pe_version: str | None = None
    k8s_versions: dict[str, list[str]] | None = None
    contract = None
    if config.checkout_dir.is_dir():
        from edgeforge_ext.canvos import sources

        facts = sources.local(config, any_ref=True)  # render writes into it: its own commit counts
        if facts is not None:
            pe_version, k8s_versions, contract = facts.pe_version or None, facts.k8s_versions, facts.contract
    # Only the flag counts here: output.dir from a config file names where ISOs go, not user-data.
    dest = Path(flags["output.dir"]) if flags.get("output.dir") else config.checkout_dir
    if not dest.is_dir() and dest == config.checkout_dir:
        raise UsageError(f"no CanvOS checkout at {dest}",
                         hint="run `edgeforge-ext checkout` first, or pass --output DIR")

    rendered = render_all(config, pe_version=pe_version, k8s_versions=k8s_versions, contract=contract)
    user_data, arg = write_rendered(rendered, dest)
    for warning in rendered.warnings:
        console.warn(warning)
    console.info(f"wrote {user_data} (mode 0600)")
    console.info(f"wrote {arg}")
    if config.secrets:
        console.note("user-data holds the registry password and the registration token in clear text; "
                     "by Palette's design they end up inside the ISO")
    if wants_json(ctx, json_out):
        console.print_json({"user_data": str(user_data), "arg_file": str(arg),
                            "warnings": list(rendered.warnings)})


def register(app: typer.Typer) -> None:
    app.command("render")(render)
