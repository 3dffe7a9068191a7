"""`edgeforge-ext checkout`: clone or update CanvOS at --ref and say exactly what was checked out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgeforge_ext.cli.common import BUILD_FLAGS, load, wants_json, with_flags

if TYPE_CHECKING:
    from edgeforge_ext.canvos.repo import CanvosFacts

CHECKOUT_FLAGS = tuple(s for s in BUILD_FLAGS if s.key in ("canvos.url", "canvos.ref"))


@with_flags(CHECKOUT_FLAGS, password_stdin=False)
def checkout(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="print what was checked out as JSON on stdout")] = False,
    discard_changes: Annotated[bool, typer.Option(
        "--discard-changes", help="throw away local edits in the checkout when moving to another ref")] = False,
    no_wait: Annotated[bool, typer.Option(
        "--no-wait", help="fail at once when another run holds the work directory")] = False,
    *,
    flags: dict[str, Any],
    password_stdin: bool,
) -> None:
    """Clone CanvOS into the work directory, or fetch and move it to --ref (default: latest release tag).

    Local edits are kept on the same ref and refused (exit 4) on another ref unless --discard-changes.
    """
    from edgeforge_ext.canvos import sources
    from edgeforge_ext.workdir_lock import workdir_lock

    config = load(ctx, flags)
    with workdir_lock(config.workdir, wait=not no_wait, what="checkout"):
        facts = sources.fetch(config, discard_changes=discard_changes, honour_skip=False)
    _show(facts, wants_json(ctx, json_out))


def _show(facts: CanvosFacts, as_json: bool) -> None:
    from edgeforge_ext import console

    for warning in facts.warnings:
        console.warn(warning)
    if as_json:
        console.print_json(facts.as_dict())
        return
    rows = [
        ("url", facts.url),
        ("ref", facts.ref),
        ("tag", facts.tag or "(none)"),
        ("sha", facts.sha),
        ("pe_version", facts.pe_version or "(not found)"),
        ("describe", facts.describe),
        ("path", str(facts.path)),
        ("modified", ", ".join(facts.modified) if facts.modified else "(none)"),
    ]
    for name, value in rows:
        console.info(f"{name:<11} {value}")


def register(app: typer.Typer) -> None:
    app.command("checkout")(checkout)
