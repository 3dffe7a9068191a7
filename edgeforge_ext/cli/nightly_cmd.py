"""`lock`: pin the CanvOS commit, the Earthly image and the build inputs in edgeforge.lock."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from edgeforge_ext.cli.build_cmd import BUILD_ONLY_FLAGS
from edgeforge_ext.cli.common import BUILD_FLAGS, load, wants_json, with_flags


def lock(
    ctx: typer.Context,
    all_variants: Annotated[bool, typer.Option("--all", help="lock every [[variants]] table (the default when "
                                               "the config has variants)")] = False,
    variant: Annotated[list[str] | None, typer.Option("--variant", metavar="NAME", show_default=False,
                                                      help="lock this variant (repeatable)")] = None,
    discard_changes: Annotated[bool, typer.Option("--discard-changes",
                                                  help="discard local edits in the checkout when switching ref")]
    = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="fail at once when the work directory is busy")]
    = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the lock as JSON on stdout")] = False,
    shard_by: Annotated[str, typer.Option("--shard-by", metavar="variant|k8s-version",
                                          help="one entry per shard of `plan --shards --shard-by ...` (variant: "
                                          "the variants' own)")] = "variant",
    *,
    flags: dict[str, Any],
    password_stdin: bool,
) -> None:
    """Write edgeforge.lock next to the config file (or in the current directory): the CanvOS commit SHA
    of the ref, the Earthly image digest, and a fingerprint (a hash, never the secrets) of the rendered
    user-data and .arg, targets, build args and plan of each build. Give it the same options as
    `build`; `build --locked` then refuses (exit 5) when any of them drifted."""
    from edgeforge_ext import console
    from edgeforge_ext.edgeforge_lock import lock_builds
    from edgeforge_ext.nightly import NightlyOptions, selected

    config = load(ctx, flags, password_stdin=password_stdin)
    every = all_variants or (not variant and bool(config.variants))
    names = selected(config, NightlyOptions(variants=tuple(variant or ()), all_variants=every))
    if shard_by == "variant":
        path, written = lock_builds(config, names, discard_changes=discard_changes, wait=not no_wait)
    else:
        from edgeforge_ext.shards.planner import lock_shards

        path, written = lock_shards(config, names, shard_by, discard_changes=discard_changes, wait=not no_wait)
    if wants_json(ctx, json_out):
        console.print_json(written.as_json())
        return
    console.info(f"wrote {path}")
    console.info(f"  CanvOS   {written.canvos_ref} at {written.canvos_sha}")
    console.info(f"  Earthly  {written.earthly_image} ({written.earthly_id})")
    for name, fp in sorted(written.fingerprints.items()):
        console.info(f"  {name}: {fp}")


def register(app: typer.Typer) -> None:
    app.command("lock")(with_flags(BUILD_FLAGS + BUILD_ONLY_FLAGS)(lock))
