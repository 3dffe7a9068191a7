"""`images rewrite|verify|mirror` and `profile patch`: thin commands over registry/ (images.py, transfer.py,
profile.py). `images save|load` live in bundle_cmd.py."""

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
    collect,
    progress,
    report_copies,
    rewrites,
    size_text,
    sources,
    table,
)

images_app = typer.Typer(help="Which images (also every one the build pulls); where an Edge host pulls each "
                              "from; is it there; copy it there; bundles for the air gap.",
                         no_args_is_help=True)
profile_app = typer.Typer(help="Edit cluster profile layers for an external registry.", no_args_is_help=True)


@images_app.command("list")
@with_flags(REGISTRY_FLAGS)
def list_images(ctx: typer.Context, images: ImagesOpt = None, profile: ProfileOpt = None,
                from_plan: FromPlanOpt = False, build_inputs: BuildInputsOpt = False, json_out: JsonOpt = False, *,
                flags: dict[str, Any], password_stdin: bool) -> None:
    """The images the inputs name, where each comes from, and where it is pulled from. With --build-inputs:
    every image the CanvOS build pulls at the checked-out ref for these options (read from its Earthfile),
    which ARG carries its registry, and what --inputs-registry would set."""
    from edgeforge_ext import console

    config = load(ctx, flags, password_stdin=password_stdin)
    found, inputs = collect(config, images, profile, from_plan, build_inputs)
    places = rewrites(config, found)
    details = {i.ref: i for i in inputs.images} if inputs else {}
    rows: list[dict[str, Any]] = []
    for image, place in zip(found, places, strict=True):
        detail = details.get(str(image.ref))
        rows.append({"ref": str(image.ref), "origin": image.origin, "build_input": image.build_input,
                     "pulled_from": place.target,
                     **({"uses": list(detail.uses), "carried_by": detail.carried_by} if detail else {})})
    if wants_json(ctx, json_out):
        extra = {"warnings": list(inputs.warnings)} if inputs else {}
        console.print_json({"images": rows, **extra})
        return
    table("images", ["image", "carried by", "from"],
          [[str(r["ref"]), str(r.get("carried_by") or ("-" if r["build_input"] else "")), str(r["origin"])]
           for r in rows])


@images_app.command("rewrite")
@with_flags(REGISTRY_FLAGS)
def rewrite(ctx: typer.Context, images: ImagesOpt = None, profile: ProfileOpt = None,
            from_plan: FromPlanOpt = False, build_inputs: BuildInputsOpt = False, json_out: JsonOpt = False, *,
            flags: dict[str, Any], password_stdin: bool) -> None:
    """For each image, the reference the Edge host will pull, by the same settings that render user-data
    (a build input: where the build pulls it, with --inputs-registry).

    Images come from --images, --profile, --from-plan and --build-inputs (combine freely). The build options
    (--k8s-version, --image-registry, ...) only matter for --from-plan and --build-inputs."""
    from edgeforge_ext import console

    config = load(ctx, flags, password_stdin=password_stdin)
    found = rewrites(config, sources(config, images, profile, from_plan, build_inputs))
    if wants_json(ctx, json_out):
        console.print_json({"images": [{"source": str(r.source), "target": r.target} for r in found]})
        return
    table("where the Edge host pulls each image", ["source", "", "target"],
          [[str(r.source), "→", r.target] for r in found])


@images_app.command("verify")
@with_flags(REGISTRY_FLAGS)
def verify(ctx: typer.Context, images: ImagesOpt = None, profile: ProfileOpt = None,
           from_plan: FromPlanOpt = False, build_inputs: BuildInputsOpt = False, json_out: JsonOpt = False,
           deep: Annotated[bool, typer.Option("--deep", help="pull what the Edge host pulls, as it would: every "
                                                            "platform manifest and every blob, sizes and digests "
                                                            "checked")] = False,
           *, flags: dict[str, Any], password_stdin: bool) -> None:
    """Check that every rewritten reference exists in its registry (exit 9 lists what is missing).

    The credentials (--registry-username and the password) are used for the --registry host and the
    [[registry.registries]] hosts; other registries are asked anonymously."""
    from edgeforge_ext import console
    from edgeforge_ext.errors import RegistryError
    from edgeforge_ext.registry.transfer import verify_images

    config = load(ctx, flags, password_stdin=password_stdin)
    found = rewrites(config, sources(config, images, profile, from_plan, build_inputs))
    if deep:
        _verify_deep(ctx, config, found, json_out)
        return
    bar, advance = progress(len(found), "verifying")
    with clients(config) as pool, bar:
        results = verify_images(found, pool, on_done=advance)
    missing = [r for r in results if not r.present]
    if wants_json(ctx, json_out):
        console.print_json({"images": [{"source": str(r.rewrite.source), "target": r.rewrite.target,
                                        "present": r.present} for r in results], "missing": len(missing)})
    else:
        table("images at the place the Edge host pulls them from", ["target", "present"],
              [[r.rewrite.target, "yes" if r.present else "MISSING"] for r in results])
    if missing:
        raise RegistryError(f"{len(missing)} of {len(results)} images are missing",
                            details=[r.rewrite.target for r in missing],
                            hint="copy them with: edgeforge-ext images mirror (same options)")
    console.info(f"all {len(results)} images are present")


def _verify_deep(ctx: typer.Context, config: Any, found: Any, json_out: bool) -> None:
    from edgeforge_ext import console
    from edgeforge_ext.errors import RegistryError
    from edgeforge_ext.registry.deep import verify_deep

    bar, advance = progress(len(found), "pulling")
    with clients(config) as pool, bar:
        results = verify_deep(found, pool, on_done=advance)
    bad = [r for r in results if r.problems]
    if wants_json(ctx, json_out):
        console.print_json({"images": [r.as_json() for r in results], "broken": len(bad)})
    else:
        table("what the Edge host pulls, pulled as it would", ["target", "platforms", "blobs", "result"],
              [[r.target, str(r.platforms), f"{r.blobs} ({size_text(r.bytes)})",
                "ok" if not r.problems else f"{len(r.problems)} problem(s)"] for r in results])
    if bad:
        raise RegistryError(f"{len(bad)} of {len(results)} images cannot be pulled whole",
                            details=[f"{r.target}: {p}" for r in bad for p in r.problems],
                            hint="copy them again: edgeforge-ext images mirror --force (same options)")
    console.info(f"all {len(results)} images pull whole: every platform, blob, size and digest checked")


@images_app.command("mirror")
@with_flags(REGISTRY_FLAGS)
def mirror(ctx: typer.Context, images: ImagesOpt = None, profile: ProfileOpt = None,
           from_plan: FromPlanOpt = False, build_inputs: BuildInputsOpt = False, json_out: JsonOpt = False,
           force: ForceOpt = False, jobs: JobsOpt = 8, *, flags: dict[str, Any], password_stdin: bool) -> None:
    """Copy what is missing from its source to the rewritten reference, registry to registry (no Docker daemon).

    Blobs stream from source to destination (checked against their digest on the way), each once per
    destination registry: one already in another repository there is mounted. Images already present with
    the same digest are skipped, so re-running does no work; signatures and referrers come along. The
    credentials are used for the --registry host and the [[registry.registries]] hosts; other registries
    are anonymous.
    """
    from edgeforge_ext.registry.blobsend import TransferStats
    from edgeforge_ext.registry.transfer import mirror_images

    config = load(ctx, flags, password_stdin=password_stdin)
    found = rewrites(config, sources(config, images, profile, from_plan, build_inputs))
    bar, advance = progress(len(found), "mirroring")
    stats = TransferStats()
    with clients(config) as pool, bar:
        results = mirror_images(found, pool, force=force, workers=jobs, on_done=advance, stats=stats)
    report_copies(ctx, json_out, "mirror", results, stats)


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
    from edgeforge_ext.cli import bundle_cmd

    bundle_cmd.attach(images_app)
    app.add_typer(images_app, name="images")
    app.add_typer(profile_app, name="profile")
