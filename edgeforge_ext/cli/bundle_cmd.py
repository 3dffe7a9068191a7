"""`images save` and `images load`: bundles for the air gap, thin commands over registry/bundle.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgeforge_ext.cli.common import load, wants_json, with_flags
from edgeforge_ext.cli.images_inputs import (
    REGISTRY_FLAGS,
    BuildInputsOpt,
    ForceOpt,
    FromPlanOpt,
    ImagesOpt,
    JobsOpt,
    JsonOpt,
    ProfileOpt,
    clients,
    progress,
    report_copies,
    rewrites,
    size_text,
    sources,
    table,
)


@with_flags(REGISTRY_FLAGS)
def save(ctx: typer.Context,
         to: Annotated[Path, typer.Option("--to", help="the bundle: a directory, NAME.tar or NAME.tar.zst",
                                          metavar="PATH")],
         images: ImagesOpt = None, profile: ProfileOpt = None, from_plan: FromPlanOpt = False,
         build_inputs: BuildInputsOpt = False, json_out: JsonOpt = False, jobs: JobsOpt = 8,
         since: Annotated[Path | None, typer.Option(
             "--since", help="an earlier bundle, or edgeforge.lock: leave out the blobs it covers (a differential "
                             "bundle)", metavar="BUNDLE|LOCK")] = None,
         update_lock: Annotated[bool, typer.Option(
             "--update-lock", help="record the saved images' digests in edgeforge.lock (for a later --since "
                                   "edgeforge.lock)")] = False,
         *, flags: dict[str, Any], password_stdin: bool) -> None:
    """Write the images (every platform, their signatures and referrers) into an OCI image layout for the
    air gap: blobs stored once, each image's original reference in its annotations.

    `.tar.zst` is compressed with zstd (the layers inside are gzip already: it mostly saves the tar's
    padding and the configs). A directory save that stopped keeps the blobs it finished: run it again."""
    from edgeforge_ext import console
    from edgeforge_ext.errors import RegistryError
    from edgeforge_ext.registry.blobsend import TransferStats
    from edgeforge_ext.registry.bundle import bundle_covers, images_cover, save_bundle

    config = load(ctx, flags, password_stdin=password_stdin)
    found = sources(config, images, profile, from_plan, build_inputs)
    refs = [image.ref for image in found]
    stats = TransferStats()
    with clients(config) as pool:
        covered: set[str] | None = None
        if since is not None:
            covered = images_cover(_lock_images(since), pool) if _is_lock(since) else bundle_covers(since)
        bar, advance = progress(len(refs), "saving")
        with bar:
            results = save_bundle(refs, pool, to, since=covered, workers=jobs, stats=stats, on_done=advance,
                                  build_inputs={str(image.ref) for image in found if image.build_input})
    failed = [r for r in results if r.status == "failed"]
    if wants_json(ctx, json_out):
        console.print_json({"bundle": str(to), "saved": len(results) - len(failed), "failed": len(failed),
                            **stats.saved_json()})
    else:
        table(f"bundle {to}", ["image", "result", "detail"], [[r.source, r.status, r.detail] for r in results])
    if failed:
        raise RegistryError(f"{len(failed)} of {len(results)} images could not be read; the bundle was not written",
                            details=[f"{r.source}: {r.detail}" for r in failed])
    console.info(f"saved {len(results)} images to {to}: {size_text(stats.bytes_downloaded)} in "
                 f"{stats.blobs_downloaded} blobs" + (f", {stats.blobs_present} left out (--since)" if since else ""))
    if update_lock:
        from edgeforge_ext.edgeforge_lock import lock_path, record_images

        path = record_images(lock_path(config), {r.source: str(r.digest) for r in results})
        console.info(f"recorded the {len(results)} images in {path}")


def _is_lock(path: Path) -> bool:
    return path.is_file() and path.suffix in (".lock", ".json")


def _lock_images(path: Path) -> dict[str, str]:
    from edgeforge_ext.edgeforge_lock import read_images

    return read_images(path)


@with_flags(REGISTRY_FLAGS)
def load_cmd(ctx: typer.Context,
             source: Annotated[Path, typer.Option("--from", help="a bundle written by `images save`",
                                                  metavar="PATH")],
             json_out: JsonOpt = False, force: ForceOpt = False, jobs: JobsOpt = 8,
             *, flags: dict[str, Any], password_stdin: bool) -> None:
    """Push a bundle's images to where the Edge host pulls them (the places `images rewrite` names), with the
    rules of mirror: an image already there is skipped, a different one under its tag is left alone unless
    --force. Blobs already in the registry are mounted, not sent (a differential bundle relies on that)."""
    from edgeforge_ext.registry.blobsend import TransferStats
    from edgeforge_ext.registry.bundle import load_bundle
    from edgeforge_ext.registry.images import ImageRef, SourceImage

    config = load(ctx, flags, password_stdin=password_stdin)

    def place(images: list[SourceImage]) -> list[ImageRef | None]:
        """The places `images rewrite` names (images.pull_location's rules; build inputs: --inputs-registry)."""
        return [None if r.target == str(r.source) else r.target_ref for r in rewrites(config, images)]

    stats = TransferStats()
    with clients(config) as pool:
        results = load_bundle(source, place, pool, force=force, workers=jobs, stats=stats)
    report_copies(ctx, json_out, f"load {source}", results, stats)


def attach(images_app: typer.Typer) -> None:
    images_app.command("save")(save)
    images_app.command("load")(load_cmd)
