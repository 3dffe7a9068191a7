"""`images rewrite|verify|mirror` and `profile patch`: thin commands over images.py, registry.py, profile.py."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgeforge_ext.cli.common import BUILD_FLAGS, load, wants_json, with_flags

if TYPE_CHECKING:
    from edgeforge_ext.config import Config
    from edgeforge_ext.registry.client import Clients
    from edgeforge_ext.registry.images import Rewrite

images_app = typer.Typer(help="Where an Edge host pulls each image from; is it there; copy it there.",
                         no_args_is_help=True)
profile_app = typer.Typer(help="Edit cluster profile layers for an external registry.", no_args_is_help=True)

# The registry options (and the build options --from-plan needs), shared with build/render.
REGISTRY_FLAGS = tuple(f for f in BUILD_FLAGS if f.key.startswith(("registry.", "build.")))

ImagesOpt = Annotated[list[Path] | None, typer.Option(
    "--images", help="image list: one reference a line, '#' comments (repeatable)", metavar="FILE")]
ProfileOpt = Annotated[list[Path] | None, typer.Option(
    "--profile", help="cluster profile export, JSON or YAML (repeatable)", metavar="FILE")]
FromPlanOpt = Annotated[bool, typer.Option("--from-plan", help="the provider images of the current build plan")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON on stdout")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="blob streams at once (all images "
                                                                          "together)")]


def _rewrites(config: Config, images: list[Path] | None, profiles: list[Path] | None,
              from_plan: bool) -> list[Rewrite]:
    from edgeforge_ext import console
    from edgeforge_ext.errors import UsageError
    from edgeforge_ext.registry.images import (
        dedupe,
        images_from_list,
        images_from_profile,
        images_from_refs,
        rules_from_config,
    )

    found = []
    for path in images or []:
        found.extend(images_from_list(path))
    for path in profiles or []:
        from_profile = images_from_profile(path)
        if not from_profile:  # almost always the wrong file: "all 0 images present" would hide it
            console.warn(f"{path}: no image references found (image: values or pack.content.images)")
        found.extend(from_profile)
    if from_plan:
        from edgeforge_ext.canvos.sources import planned_provider_images

        found.extend(images_from_refs(planned_provider_images(config), "the build plan"))
    if not (images or profiles or from_plan):
        raise UsageError("no images given: use --images FILE, --profile FILE or --from-plan")
    if not found:
        raise UsageError("the inputs name no image at all", hint="check the files given with --images/--profile")
    rules = rules_from_config(config)
    for note in rules.notes:
        console.warn(note)
    if not (rules.prefix or rules.mapping):
        console.note("no external registry configured (--registry or --registry-mapping): images are pulled "
                     "from their source")
    return [rules.rewrite(image.ref) for image in dedupe(found)]


def _clients(config: Config) -> Clients:
    from edgeforge_ext.registry.client import Clients, credentials_for

    return Clients(lambda host: credentials_for(config, host))


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    from edgeforge_ext import console

    table = Table(title=title, title_justify="left", show_edge=False, box=None, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.err().print(table)


def _progress(total: int, what: str) -> tuple[Any, Any]:
    """(context manager, advance callback): a rich progress bar only when stderr is a terminal."""
    import contextlib

    from edgeforge_ext import console

    if not console.is_interactive() or total < 2:
        return contextlib.nullcontext(), lambda _result: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console.err(), transient=True)
    task = progress.add_task(what, total=total)
    return progress, lambda _result: progress.advance(task)


@images_app.command("rewrite")
@with_flags(REGISTRY_FLAGS)
def rewrite(ctx: typer.Context, images: ImagesOpt = None, profile: ProfileOpt = None,
            from_plan: FromPlanOpt = False, json_out: JsonOpt = False, *,
            flags: dict[str, Any], password_stdin: bool) -> None:
    """For each image, the reference the Edge host will pull, by the same settings that render user-data.

    Images come from --images, --profile and --from-plan (combine freely). The build options (--k8s-version,
    --image-registry, ...) only matter for --from-plan."""
    from edgeforge_ext import console

    config = load(ctx, flags, password_stdin=password_stdin)
    rewrites = _rewrites(config, images, profile, from_plan)
    if wants_json(ctx, json_out):
        console.print_json({"images": [{"source": str(r.source), "target": r.target} for r in rewrites]})
        return
    _table("where the Edge host pulls each image", ["source", "", "target"],
           [[str(r.source), "→", r.target] for r in rewrites])


@images_app.command("verify")
@with_flags(REGISTRY_FLAGS)
def verify(ctx: typer.Context, images: ImagesOpt = None, profile: ProfileOpt = None,
           from_plan: FromPlanOpt = False, json_out: JsonOpt = False, *,
           flags: dict[str, Any], password_stdin: bool) -> None:
    """Check that every rewritten reference exists in its registry (exit 9 lists what is missing).

    The credentials (--registry-username and the password) are used for the --registry host and the
    [[registry.registries]] hosts; other registries are asked anonymously."""
    from edgeforge_ext import console
    from edgeforge_ext.errors import RegistryError
    from edgeforge_ext.registry.transfer import verify_images

    config = load(ctx, flags, password_stdin=password_stdin)
    rewrites = _rewrites(config, images, profile, from_plan)
    bar, advance = _progress(len(rewrites), "verifying")
    with _clients(config) as clients, bar:
        results = verify_images(rewrites, clients, on_done=advance)
    missing = [r for r in results if not r.present]
    if wants_json(ctx, json_out):
        console.print_json({"images": [{"source": str(r.rewrite.source), "target": r.rewrite.target,
                                        "present": r.present} for r in results], "missing": len(missing)})
    else:
        _table("images at the place the Edge host pulls them from", ["target", "present"],
               [[r.rewrite.target, "yes" if r.present else "MISSING"] for r in results])
    if missing:
        raise RegistryError(f"{len(missing)} of {len(results)} images are missing",
                            details=[r.rewrite.target for r in missing],
                            hint="copy them with: edgeforge-ext images mirror (same options)")
    console.info(f"all {len(results)} images are present")


@images_app.command("mirror")
@with_flags(REGISTRY_FLAGS)
def mirror(ctx: typer.Context, images: ImagesOpt = None, profile: ProfileOpt = None,
           from_plan: FromPlanOpt = False, json_out: JsonOpt = False,
           force: Annotated[bool, typer.Option("--force", help="overwrite a different image under the "
                                                                "same tag (reported)")] = False,
           jobs: JobsOpt = 8, *, flags: dict[str, Any], password_stdin: bool) -> None:
    """Copy what is missing from its source to the rewritten reference, registry to registry (no Docker daemon).

    Blobs stream from source to destination (checked against their digest on the way), each once per
    destination registry: one already in another repository there is mounted. Images already present with
    the same digest are skipped, so re-running does no work; signatures and referrers come along. The
    credentials are used for the --registry host and the [[registry.registries]] hosts; other registries
    are anonymous.
    """
    from edgeforge_ext import console
    from edgeforge_ext.errors import RegistryError
    from edgeforge_ext.registry.blobsend import TransferStats
    from edgeforge_ext.registry.transfer import mirror_images

    config = load(ctx, flags, password_stdin=password_stdin)
    rewrites = _rewrites(config, images, profile, from_plan)
    bar, advance = _progress(len(rewrites), "mirroring")
    stats = TransferStats()
    with _clients(config) as clients, bar:
        results = mirror_images(rewrites, clients, force=force, workers=jobs, on_done=advance, stats=stats)
    counts = {k: sum(1 for r in results if r.status == k) for k in ("copied", "skipped", "failed")}
    if wants_json(ctx, json_out):
        console.print_json({**counts, **stats.as_json()})
    else:
        _table("mirror", ["target", "result", "detail"],
               [[r.target, r.status, r.detail] for r in results])
        console.info(f"copied {counts['copied']}, skipped {counts['skipped']}, failed {counts['failed']}; "
                     f"{_size(stats.bytes_uploaded)} uploaded in {stats.blobs_uploaded} blobs, "
                     f"{stats.blobs_mounted} mounted, {stats.blobs_present} already there")
    for r in results:
        if r.detail.startswith("overwrote"):
            console.warn(f"{r.target}: {r.detail}")
    if counts["failed"]:
        raise RegistryError(f"{counts['failed']} of {len(results)} images were not copied",
                            details=[f"{r.target}: {r.detail}" for r in results if r.status == "failed"])


@profile_app.command("patch")
def patch(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="a Kubernetes layer's values YAML", metavar="FILE")],
    image_repository: Annotated[str | None, typer.Option(
        "--image-repository", metavar="REPO",
        help="also pull the core Kubernetes images from REPO (PXK-E imageRepository)")] = None,
    in_place: Annotated[bool, typer.Option("--in-place", "-i", help="write FILE back (only when it changes)")]
    = False,
) -> None:
    """Remove AlwaysPullImages from the admission plugins (and set imageRepository): patched YAML on stdout,
    the change as a diff on stderr. Comments, order and style of the file are kept.

    FILE is a Kubernetes layer's values YAML (PXK-E, K3s or RKE2), as pasted from the cluster profile."""
    import sys

    from edgeforge_ext import console
    from edgeforge_ext.errors import UsageError, ValidationError
    from edgeforge_ext.registry.profile import patch_values

    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {file}: {exc}") from None
    result = patch_values(text, image_repository=image_repository, where=str(file))
    for note in result.notes:
        console.note(note)
    if result.changed:
        sys.stderr.write(result.diff(file.name))
        sys.stderr.flush()
        for change in result.changes:
            console.info(f"{result.flavour}: {change}")
    else:
        console.info(f"nothing to change in {file}")
    if in_place:
        if result.changed:
            from edgeforge_ext.fsutil import atomic_write

            atomic_write(file, result.text.encode("utf-8"), mode=file.stat().st_mode & 0o7777)
            console.info(f"wrote {file}")
        return
    sys.stdout.write(result.text)
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.add_typer(images_app, name="images")
    app.add_typer(profile_app, name="profile")
