"""`build`, `plan`, `push` and `clean`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgeforge_ext.cli.common import BUILD_FLAGS, FlagSpec, load, split_commas, wants_json, with_flags


def _opt_file(name: str, help: str) -> Any:
    return typer.Option(None, name, help=help, metavar="FILE", show_default=False)


def _no_push(value: bool | None) -> bool | None:
    return False if value else None


ATTEST_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("attest", "attest.enabled", bool | None,
             typer.Option(None, "--attest", show_default=False,
                          help="sign what is built: the ISO's SLSA provenance and SPDX SBOM beside it, and each pushed "
                          "provider image's signature and attestations (cosign's .sig/.att tags), its tag moved "
                          "only after they verify")),
    FlagSpec("attest_key", "attest.key_file", Path | None,
             _opt_file("--attest-key", "the PEM private key that signs (edgeforge-ext keygen; or "
                       "EDGEFORGE_ATTEST_KEY_FILE); its password in EDGEFORGE_ATTEST_KEY_PASSWORD")),
)


BUILD_ONLY_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec("skip", "build.skip", list[str] | None,
             typer.Option(None, "--skip", metavar="STEP", show_default=False,
                          help="skip a step (repeatable or comma-separated): preflight, checkout, render, validate, "
                          "registry-check, earthly, collect, boot-test, push, report"), split_commas),
    FlagSpec("boot_test", "build.boot_test", bool | None,
             typer.Option(None, "--boot-test", show_default=False,
                          help="after collect, boot the ISO in QEMU under BIOS and UEFI (as `iso boot`); exit 8 "
                          "when it does not boot")),
    FlagSpec("no_push", "push.enabled", bool | None,
             typer.Option(None, "--no-push", help="do not push the provider images", show_default=False),
             _no_push),
    FlagSpec("push_to", "push.to", list[str] | None,
             typer.Option(None, "--push-to", metavar="origin,external", show_default=False,
                          help="where provider images go: origin (IMAGE_REGISTRY/IMAGE_REPO:tag), external "
                          "(<registry>/<IMAGE_REGISTRY>/<IMAGE_REPO>:tag, where the Edge host pulls); default "
                          "external when an external registry is configured, else origin"), split_commas),
    *ATTEST_FLAGS,
)


def build(
    ctx: typer.Context,
    plan_only: Annotated[bool, typer.Option("--plan", help="print what would be built and run; change nothing")]
    = False,
    keep_user_data: Annotated[bool, typer.Option("--keep-user-data",
                                                 help="keep user-data (it holds credentials) in the checkout")]
    = False,
    discard_changes: Annotated[bool, typer.Option("--discard-changes",
                                                  help="discard local edits in the checkout when switching ref")]
    = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="fail at once when the work directory is busy")]
    = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the report as JSON on stdout")] = False,
    all_variants: Annotated[bool, typer.Option("--all", help="build every [[variants]] table of the config")]
    = False,
    variant: Annotated[list[str] | None, typer.Option("--variant", metavar="NAME", show_default=False,
                                                      help="build this variant (repeatable)")] = None,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="after a variant fails, build the others")]
    = False,
    locked: Annotated[bool, typer.Option("--locked", help="refuse to build when the CanvOS SHA, the Earthly "
                                         "image or the inputs differ from edgeforge.lock")] = False,
    skip_unchanged: Annotated[bool, typer.Option("--skip-unchanged", help="exit 0 'up to date' without building "
                                                 "when nothing changed since the last successful build")] = False,
    keep_last: Annotated[int | None, typer.Option("--keep-last", metavar="N", min=1, show_default=False,
                                                  help="keep the N newest dated output directories")] = None,
    shard: Annotated[str | None, typer.Option("--shard", metavar="ID", show_default=False,
                                              help="build exactly this shard of `plan --shards` (a variant's name, "
                                              "or <variant>-<k8s version>) into OUTPUT/<ID>/")] = None,
    shard_list: Annotated[Path | None, typer.Option("--shard-list", metavar="FILE", show_default=False,
                                                    help="the shard list of `plan --shards --format json` (a "
                                                    "Kubernetes Job's ConfigMap): build its entry "
                                                    "$JOB_COMPLETION_INDEX, or --shard ID")] = None,
    *,
    flags: dict[str, Any],
    password_stdin: bool,
) -> None:
    """Run the whole flow: preflight → checkout → render → validate → registry check → earthly →
    collect → push → report. Ends with the ISO (path, size, SHA256), each provider image and where
    it was pushed, the values for the Palette OS (BYOOS) layer, and the time each step took.
    Writes edgeforge-report.json, os-pack.yaml and edgeforge-build.log to the output directory."""
    config = load(ctx, flags, password_stdin=password_stdin)
    as_json = wants_json(ctx, json_out)
    from edgeforge_ext.nightly import NightlyOptions, run_builds

    nightly = NightlyOptions(variants=tuple(variant or ()), all_variants=all_variants, keep_going=keep_going,
                             locked=locked, skip_unchanged=skip_unchanged, keep_last=keep_last)
    sharded = shard is not None or shard_list is not None
    if sharded and (all_variants or variant or skip_unchanged or plan_only):
        from edgeforge_ext.errors import UsageError

        raise UsageError("--shard builds one shard: it does not go with --all, --variant, --skip-unchanged or "
                         "--plan", hint="plan the shards with `edgeforge-ext plan --all --shards`")
    if plan_only:
        _show_plans(config, nightly, as_json)
        return
    from edgeforge_ext import console
    from edgeforge_ext.build.state import BuildOptions
    from edgeforge_ext.build_view import ConsoleReporter
    from edgeforge_ext.progress import BuildProgress

    with BuildProgress() as progress:
        options = BuildOptions(keep_user_data=keep_user_data or bool(config.render.keep_user_data),
                               discard_changes=discard_changes, wait=not no_wait, on_line=progress.on_line,
                               reporter=ConsoleReporter())
        if sharded:
            from edgeforge_ext.shards.runner import ShardRun, run_shard

            report = run_shard(config, ShardRun(shard, shard_list, locked=locked, keep_last=keep_last), options)
            if as_json and report is not None:
                console.print_json(report.as_json())
            return
        summary = run_builds(config, nightly, options)
    if as_json:
        if all_variants or variant:
            console.print_json(summary.as_json())
        elif summary.results[0].report is not None:
            console.print_json(summary.results[0].report.as_json())


def plan(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="print the plan as JSON on stdout")] = False,
    all_variants: Annotated[bool, typer.Option("--all", help="plan every [[variants]] table of the config")]
    = False,
    variant: Annotated[list[str] | None, typer.Option("--variant", metavar="NAME", show_default=False,
                                                      help="plan this [[variants]] table (repeatable)")] = None,
    shards: Annotated[bool, typer.Option("--shards", help="split the builds into shards, each one "
                                         "`build --shard ID` on its own host (resolves the ref as `lock` does)")]
    = False,
    shard_by: Annotated[str, typer.Option("--shard-by", metavar="variant|k8s-version",
                                          help="one shard per variant, or per Kubernetes version of each")]
    = "variant",
    fmt: Annotated[str | None, typer.Option("--format", metavar="FORMAT", show_default=False,
                                            help="table (default), json, github-matrix, k8s-job, argo")] = None,
    changed_since: Annotated[Path | None, typer.Option(
        "--changed-since", metavar="DIR|edgeforge.lock", show_default=False,
        help="leave out shards whose inputs are unchanged and whose outputs exist (an earlier output "
        "directory, or edgeforge.lock with outputs in the output directory)")] = None,
    history: Annotated[list[Path] | None, typer.Option(
        "--history", metavar="DIR", show_default=False,
        help="earlier results whose durations order the shards longest first (repeatable; the output "
        "directory is always read)")] = None,
    from_file: Annotated[Path | None, typer.Option("--from", metavar="FILE", show_default=False,
                                                   help="print a saved shard list (--format json) in another "
                                                   "format, without resolving anything")] = None,
    image: Annotated[str, typer.Option("--image", metavar="IMAGE", help="k8s-job, argo: the image with "
                                       "edgeforge-ext the pods run")] = "edgeforge-ext:latest",
    docker: Annotated[str, typer.Option("--docker", metavar="dind|host", help="k8s-job, argo: a Docker-in-Docker "
                                        "sidecar per pod, or the node's Docker socket")] = "dind",
    secret: Annotated[str, typer.Option("--secret", metavar="NAME", help="k8s-job, argo: the Kubernetes Secret "
                                        "holding registry-password, edge-host-token")] = "edgeforge-secrets",
    output_claim: Annotated[str, typer.Option("--output-claim", metavar="PVC", help="k8s-job, argo: the "
                                              "ReadWriteMany claim the outputs go to")] = "edgeforge-output",
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="k8s-job, argo: the Job's name (the "
                                      "workflow's prefix)")] = "edgeforge-shards",
    parallelism: Annotated[int | None, typer.Option("--parallelism", metavar="N", min=1, show_default=False,
                                                    help="k8s-job, argo: at most N shards at once")] = None,
    dind_image: Annotated[str, typer.Option("--dind-image", metavar="IMAGE", help="k8s-job, argo: the "
                                            "Docker-in-Docker sidecar's image")] = "docker:28-dind",
    *,
    flags: dict[str, Any],
    password_stdin: bool,
) -> None:
    """What `build` would do, with no side effects: CanvOS ref and SHA, PE_VERSION, targets, the Earthly
    command line, provider image tags, the ISO path, where images will be pushed (same as build --plan).

    With --shards: the shards of the builds, each with its id and fingerprint, longest first, as a table,
    the shard list (--format json), a GitHub Actions matrix, a Kubernetes Indexed Job or an Argo Workflow."""
    from edgeforge_ext.nightly import NightlyOptions

    if shards or from_file is not None:
        from edgeforge_ext.shards.planner import PlanOptions
        from edgeforge_ext.shards.pod import PodOptions

        _show_shards(ctx, flags, password_stdin, from_file, fmt or ("json" if wants_json(ctx, json_out) else "table"),
                     PlanOptions(variants=tuple(variant or ()), all_variants=all_variants, shard_by=shard_by,
                                 changed_since=changed_since, history=tuple(history or ())),
                     PodOptions(image=image, docker=docker, secret=secret, output_claim=output_claim, name=name,
                                parallelism=parallelism, dind_image=dind_image))
        return
    if fmt is not None or changed_since is not None:
        from edgeforge_ext.errors import UsageError

        raise UsageError("--format and --changed-since go with --shards")
    config = load(ctx, flags, password_stdin=password_stdin)
    _show_plans(config, NightlyOptions(variants=tuple(variant or ()), all_variants=all_variants),
                wants_json(ctx, json_out))


def _show_shards(ctx: typer.Context, flags: dict[str, Any], password_stdin: bool, from_file: Path | None, fmt: str,
                 options: Any, pod_options: Any) -> None:
    from edgeforge_ext.errors import UsageError
    from edgeforge_ext.shards_view import FORMATS, emit, print_table, render

    if fmt not in FORMATS:
        raise UsageError(f"--format takes {', '.join(FORMATS)}, not {fmt!r}")
    if from_file is not None:
        from edgeforge_ext.shards.model import read_plan
        from edgeforge_ext.shards.planner import config_text

        # The configuration is read (no network) for the edgeforge.toml the pods get.
        shard_plan = read_plan(from_file).with_config_text(config_text(load(ctx, flags, password_stdin=password_stdin)))
    else:
        from edgeforge_ext.shards.planner import plan_shards

        shard_plan = plan_shards(load(ctx, flags, password_stdin=password_stdin), options)
    if fmt == "table":
        print_table(shard_plan)
    else:
        emit(render(shard_plan, fmt, pod_options))


def _show_plans(config: Any, nightly: Any, as_json: bool) -> None:
    """The plan of each selected build (the top-level config, or variants); JSON by variant when several."""
    from edgeforge_ext.canvos.sources import one_look_per_source
    from edgeforge_ext.nightly import selected

    names = selected(config, nightly)
    with one_look_per_source():  # variants of one CanvOS source: one clone, one ls-remote
        if as_json and len(names) > 1:
            _show_plans_json([config.with_variant(n) if n else config for n in names])
            return
        for name in names:
            _show_plan(config.with_variant(name) if name else config, as_json)


def _show_plan(config: Any, as_json: bool) -> None:
    from edgeforge_ext import console
    from edgeforge_ext.build_view import checked_plan, plan_json, print_plan

    the_plan = checked_plan(config)
    if as_json:
        console.print_json(plan_json(the_plan, config))
    else:
        print_plan(the_plan, config)


def _show_plans_json(configs: list[Any]) -> None:
    from edgeforge_ext import console
    from edgeforge_ext.build_view import checked_plan, plan_json

    console.print_json({"variants": {config.variant: plan_json(checked_plan(config), config) for config in configs}})


def push(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="print the updated report as JSON on stdout")] = False,
    variant: Annotated[str | None, typer.Option("--variant", metavar="NAME",
                                                help="the variant whose last build to push")] = None,
    *,
    flags: dict[str, Any],
    password_stdin: bool,
) -> None:
    """Push the provider images of the last build again, without rebuilding (resumes a failed push).

    The last build is the report in the output directory (--output DIR) or, with --variant NAME, the
    newest dated directory of that variant. The targets come from the build's report, the credentials
    from the configuration: give the same registry settings as the build (edgeforge.toml, or --registry,
    --registry-username and the password)."""
    from edgeforge_ext import console
    from edgeforge_ext.build.publish import push_again

    config = load(ctx, flags, password_stdin=password_stdin)
    report, _where = push_again(config.with_variant(variant) if variant else config)
    if wants_json(ctx, json_out):
        console.print_json(report.as_json())


def clean(
    ctx: typer.Context,
    images: Annotated[bool, typer.Option("--images/--keep-images", show_default=False,
                                         help="remove the Earthly image too (the default), or keep it so the "
                                         "next build starts warm")] = True,
    every_workdir: Annotated[bool, typer.Option("--all-workdirs",
                                                help="clean up after the builds of every work directory, not "
                                                "only this one")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print what was removed as JSON")] = False,
) -> None:
    """Remove what edgeforge-ext cached or left behind for this work directory: its containers, the
    BuildKit cache volume, and the Earthly image (kept between builds so the next build is warm) and the
    work directory's own names of its provider images (your IMAGE_REGISTRY/IMAGE_REPO names stay).
    Needs the Docker daemon."""
    from edgeforge_ext import console, engine

    config = load(ctx, {})
    client = engine.client()
    try:
        from edgeforge_ext.build.earthly import CACHE_VOLUME, cache_volume
        from edgeforge_ext.build.earthly_inputs import configured_image

        summary = engine.remove_managed(
            client,
            workdir=None if every_workdir else str(config.workdir),
            earthly_image=configured_image(config) if images else None,
            volume_prefix=CACHE_VOLUME if every_workdir else cache_volume(config.workdir),
        ).as_dict()
        if images:  # the names Earthly saved provider images under (plan.local_image_registry)
            from edgeforge_ext.build.plan import LOCAL_REGISTRY, local_image_registry

            prefix = f"{LOCAL_REGISTRY}/" if every_workdir else f"{local_image_registry(config.workdir)}/"
            summary["images"] += engine.untag_all(client, prefix)
    finally:
        client.close()
    summary["staging"] = _remove_staging(config)
    from edgeforge_ext.fsutil import remove_orphaned_private_dirs

    # Secret files (git's askpass answers, Earthly's secrets) of runs that were killed with -9.
    summary["private"] = [str(p) for p in remove_orphaned_private_dirs()]
    if wants_json(ctx, json_out):
        console.print_json(summary)
    else:
        for kind, names in summary.items():
            for name in names:
                console.info(f"{kind}: {name}")
        if not any(summary.values()):
            console.info("nothing to remove")


def _remove_staging(config: Any) -> list[str]:
    """Half-made clones a killed checkout left beside CanvOS/ (only when no run holds the work directory)."""
    from edgeforge_ext import console
    from edgeforge_ext.canvos import repo as canvos
    from edgeforge_ext.errors import UsageError
    from edgeforge_ext.workdir_lock import workdir_lock

    if not config.workdir.is_dir():
        return []
    try:
        with workdir_lock(config.workdir, wait=False, what="clean"):
            return [str(p) for p in canvos.remove_stale_staging(config.checkout_dir)]
    except UsageError:
        console.note(f"a run is using {config.workdir}: its staging directories were left alone")
        return []


_PUSH_FLAGS = tuple(s for s in BUILD_FLAGS if s.key.startswith("registry.") or s.key == "output.dir") + ATTEST_FLAGS


def register(app: typer.Typer) -> None:
    app.command("build")(with_flags(BUILD_FLAGS + BUILD_ONLY_FLAGS)(build))
    app.command("plan")(with_flags(BUILD_FLAGS + BUILD_ONLY_FLAGS)(plan))
    app.command("push")(with_flags(_PUSH_FLAGS)(push))
    app.command("clean")(clean)
