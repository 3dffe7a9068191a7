"""What the `images` commands share: their options, where their images come from (`--images`, `--profile`,
`--from-plan`, `--build-inputs`), where each one goes, and how results are shown."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgeforge_ext.cli.common import BUILD_FLAGS, wants_json

if TYPE_CHECKING:
    from edgeforge_ext.canvos.build_inputs import BuildInputs
    from edgeforge_ext.config import Config
    from edgeforge_ext.registry.client import Clients
    from edgeforge_ext.registry.images import Rewrite, SourceImage

# The registry options (and the build and CanvOS options --from-plan and --build-inputs need), shared with
# build/render.
REGISTRY_FLAGS = tuple(f for f in BUILD_FLAGS if f.key.startswith(("registry.", "build.", "canvos."))
                       or f.key == "earthly.image")

ImagesOpt = Annotated[list[Path] | None, typer.Option(
    "--images", help="image list: one reference a line, '#' comments (repeatable)", metavar="FILE")]
ProfileOpt = Annotated[list[Path] | None, typer.Option(
    "--profile", help="cluster profile export, JSON or YAML (repeatable)", metavar="FILE")]
FromPlanOpt = Annotated[bool, typer.Option("--from-plan", help="the provider images of the current build plan")]
BuildInputsOpt = Annotated[bool, typer.Option(
    "--build-inputs", help="every image the CanvOS build pulls at the checked-out ref for these options (read "
                           "from its Earthfile)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON on stdout")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="blob streams at once (all images "
                                                                          "together)")]
ForceOpt = Annotated[bool, typer.Option("--force", help="overwrite a different image under the same tag "
                                                        "(reported)")]


def sources(config: Config, images: list[Path] | None, profiles: list[Path] | None, from_plan: bool,
            build_inputs: bool = False) -> list[SourceImage]:
    """The images the inputs name, each once, in the order given."""
    return collect(config, images, profiles, from_plan, build_inputs)[0]


def collect(config: Config, images: list[Path] | None, profiles: list[Path] | None, from_plan: bool,
            build_inputs: bool = False) -> tuple[list[SourceImage], BuildInputs | None]:
    """(the images the inputs name, each once, in the order given; what --build-inputs read, with details)."""
    from edgeforge_ext import console
    from edgeforge_ext.errors import UsageError
    from edgeforge_ext.registry.images import (
        SourceImage,
        dedupe,
        images_from_list,
        images_from_profile,
        images_from_refs,
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
    inputs = None
    if build_inputs:
        from edgeforge_ext.canvos.sources import build_inputs as read_build_inputs
        from edgeforge_ext.registry.images import parse_ref

        inputs = read_build_inputs(config)
        for warning in inputs.warnings:
            console.warn(warning)
        found.extend(SourceImage(parse_ref(i.ref), "build input: " + "; ".join(i.uses), build_input=True)
                     for i in inputs.images)
    if not (images or profiles or from_plan or build_inputs):
        raise UsageError("no images given: use --images FILE, --profile FILE, --from-plan or --build-inputs")
    if not found:
        raise UsageError("the inputs name no image at all", hint="check the files given with --images/--profile")
    return dedupe(found), inputs


def rewrites(config: Config, found: list[SourceImage]) -> list[Rewrite]:
    """Where each image goes: where the Edge host pulls it from (images.pull_location's rules), or, for a
    build input with `build.inputs_registry` set, where the build pulls it from."""
    from edgeforge_ext import console
    from edgeforge_ext.registry.images import Rewrite, build_input_location, rules_from_config

    rules = rules_from_config(config)
    for note in rules.notes:
        console.warn(note)
    inputs_registry = config.build.inputs_registry
    if not (rules.prefix or rules.mapping or inputs_registry):
        console.note("no external registry configured (--registry or --registry-mapping): images are pulled "
                     "from their source")
    out = []
    for image in found:
        if image.build_input and inputs_registry:
            out.append(Rewrite(image.ref, build_input_location(config, str(image.ref)), "inputs_registry"))
        else:
            out.append(rules.rewrite(image.ref))
    return out


def clients(config: Config) -> Clients:
    from edgeforge_ext.registry.client import Clients, credentials_for

    return Clients(lambda host: credentials_for(config, host))


def size_text(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    from edgeforge_ext import console

    shown = Table(title=title, title_justify="left", show_edge=False, box=None, pad_edge=False)
    for column in columns:
        shown.add_column(column, overflow="fold")
    for row in rows:
        shown.add_row(*row)
    console.err().print(shown)


def progress(total: int, what: str) -> tuple[Any, Any]:
    """(context manager, advance callback): a rich progress bar only when stderr is a terminal."""
    import contextlib

    from edgeforge_ext import console

    if not console.is_interactive() or total < 2:
        return contextlib.nullcontext(), lambda _result: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console.err(), transient=True)
    task = bar.add_task(what, total=total)
    return bar, lambda _result: bar.advance(task)


def report_copies(ctx: typer.Context, json_out: bool, title: str, results: Any, stats: Any) -> None:
    """What mirror and load print, and their exit: 9 when an image was not copied."""
    from edgeforge_ext import console
    from edgeforge_ext.errors import RegistryError

    counts = {k: sum(1 for r in results if r.status == k) for k in ("copied", "skipped", "failed")}
    if wants_json(ctx, json_out):
        console.print_json({**counts, **stats.as_json()})
    else:
        table(title, ["target", "result", "detail"], [[r.target, r.status, r.detail] for r in results])
        console.info(f"copied {counts['copied']}, skipped {counts['skipped']}, failed {counts['failed']}; "
                     f"{size_text(stats.bytes_uploaded)} uploaded in {stats.blobs_uploaded} blobs, "
                     f"{stats.blobs_mounted} mounted, {stats.blobs_present} already there")
    for r in results:
        if r.detail.startswith("overwrote"):
            console.warn(f"{r.target}: {r.detail}")
    if counts["failed"]:
        raise RegistryError(f"{counts['failed']} of {len(results)} images were not copied",
                            details=[f"{r.target}: {r.detail}" for r in results if r.status == "failed"])
