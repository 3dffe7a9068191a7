"""The steps of a build, as objects: each has its name, its run and its cleanup (pipeline.py drives
them, in this order, and unwinds the cleanups in reverse). settings.STEPS names the same steps for
--skip; a test checks the two agree. Each step reads and writes the `Build` it is given.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeforge_ext import console
from edgeforge_ext.build.plan import Plan, make_plan
from edgeforge_ext.build.report import LOG_NAME, ImageRecord
from edgeforge_ext.build.state import Build
from edgeforge_ext.errors import ArtifactError, BuildFailed, UsageError


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Build], str | None]  # returns "skipped" when it decided to do nothing
    cleanup: Callable[[Build], None] | None = None  # runs after the build, whatever happened, if `run` began
    # What still runs when `--skip` names the step: the engine check instead of preflight; checkout and
    # render in a reduced form (later steps need the checkout's facts and the user-data the ISO must
    # hold; they just change nothing). None: nothing.
    on_skip: Callable[[Build], str | None] | None = None
    # Whether the step belongs to this build at all (an optional step, e.g. boot-test); None: always.
    when: Callable[[Build], bool] | None = None


def preflight(build: Build) -> None:
    from edgeforge_ext.preflight import raise_if_failed, run_preflight

    versions = len(build.config.build.k8s_versions) or 1
    checks = run_preflight(build.config, provider_images=versions)
    build.options.reporter.preflight_done(checks)
    raise_if_failed(checks)


def engine_gate(build: Build) -> None:
    """With preflight skipped, the container engine is still checked before anything changes:
    reachable, new enough, privileged containers when Earthly needs them (exit 6)."""
    from edgeforge_ext.errors import EngineError
    from edgeforge_ext.preflight import run_preflight

    engine_checks = ("docker", "docker_version", "privileged")
    failed = [c for c in run_preflight(build.config) if c.name in engine_checks and c.required and not c.ok]
    if failed:
        raise EngineError(
            f"container engine not usable: {', '.join(c.name for c in failed)}",
            details=[f"{c.name}: {c.detail}" for c in failed],
            hint=next((c.hint for c in failed if c.hint), None),
        )


def checkout(build: Build) -> None:
    from edgeforge_ext.canvos import sources

    if "checkout" in build.config.build.skip:
        console.note(f"skipping checkout (--skip checkout): using {build.config.checkout_dir} as it is")
    facts = sources.fetch(build.config, discard_changes=build.options.discard_changes)
    for w in facts.warnings:
        console.warn(w)
    build.facts = facts
    build.report.canvos = {"url": facts.url, "ref": facts.ref, "tag": facts.tag, "sha": facts.sha,
                                "pe_version": facts.pe_version, "describe": facts.describe,
                                "modified": list(facts.modified)}
    console.info(f"CanvOS {facts.tag or facts.ref} at {facts.sha[:12]} (PE_VERSION {facts.pe_version})")
    plan = make_plan(build.config, sources.to_source(facts))
    build.plan = plan
    build.options.reporter.plan_ready(plan, build.config)
    for w in plan.warnings:
        console.warn(w)
    build.report.provider_images = [ImageRecord(i.ref, i.k8s_version, list(i.push_refs))
                                         for i in plan.provider_images]


def render(build: Build) -> None:
    from edgeforge_ext.build.prebuild import install_ca_certs, render_in_memory
    from edgeforge_ext.render import write_rendered

    plan = build.the_plan()
    rendered = render_in_memory(build.config, plan)
    build.rendered = rendered
    if "render" in build.config.build.skip:
        console.note("skipping render (--skip render): using the user-data and .arg already in the checkout")
        existing = build.config.checkout_dir / "user-data"
        build.user_data_path = None  # not ours: never removed
        if not existing.exists() and plan.iso_name:
            raise UsageError(f"--skip render needs {existing}")
        if existing.exists():
            build.user_data = existing.read_bytes()  # what the ISO must hold
        return
    build.user_data = rendered.user_data.encode()
    ud, arg = write_rendered(rendered, build.config.checkout_dir)
    build.user_data_path = ud
    for cert in install_ca_certs(build.config, plan, build.config.checkout_dir):
        console.info(f"trusting {cert.name} during the build ({cert})")
    build.report.warnings.extend(rendered.warnings)
    console.info(f"wrote {ud} (mode 0600) and {arg}")
    if plan.iso_name:
        console.note("the user-data (with the registry password and registration token) ends up inside "
                     "the ISO, by Palette's design")


def remove_user_data(build: Build) -> None:
    """render's cleanup: user-data holds the registry password and the registration token; it leaves
    the checkout when the build ends, whatever happened, unless --keep-user-data."""
    path = build.user_data_path
    if path is not None and path.exists() and not build.options.keep_user_data:
        path.unlink()
        console.note(f"removed {path} (it holds credentials; --keep-user-data keeps it)")


def validate(build: Build) -> None:
    # render_all already validated user-data and .arg (exit 5); here: the plan against the checkout.
    from edgeforge_ext.build.prebuild import check_tree

    plan = build.the_plan()
    for warning in check_tree(build.config, plan, build.config.checkout_dir):
        console.warn(warning)
    console.info(f"target {plan.target}: {len(plan.runs)} Earthly run(s), "
                 f"{len(plan.provider_images)} provider image(s)"
                 + (f", ISO {plan.iso_file}" if plan.iso_file else ""))


def registry_check(build: Build) -> None:
    from edgeforge_ext.registry import client as registry

    plan = build.the_plan()
    hosts = _registries_to_check(build, plan)
    if not hosts:
        console.note("no registry to check (nothing is pushed and no external registry is configured)")
        return
    for host, creds in hosts.items():
        registry.check_credentials(host, creds.username, creds.password, insecure=creds.insecure,
                                   ca_file=creds.ca_file)
        console.info(f"registry {host}: credentials accepted" if creds.username else f"registry {host}: reachable")


def _registries_to_check(build: Build, plan: Plan) -> dict[str, Any]:
    """The external registry, and every push destination we hold credentials for. Destinations
    without configured credentials use the Docker daemon's own login (docker login)."""
    from edgeforge_ext.registry.client import credentials_for, registry_host

    hosts: dict[str, Any] = {}
    domain = str(build.config.registry.domain)
    if domain:
        hosts[registry_host(domain)] = credentials_for(build.config, domain)
    if plan.push_enabled and "push" not in build.config.build.skip:
        for image in plan.provider_images:
            for ref in image.push_refs:
                host = registry_host(ref)
                creds = credentials_for(build.config, host)
                if host not in hosts and creds.username:
                    hosts[host] = creds
    return hosts


def earthly(build: Build) -> None:
    from edgeforge_ext import engine
    from edgeforge_ext.build import earthly
    from edgeforge_ext.build.earthly_inputs import earthly_inputs

    plan = build.the_plan()
    client = engine.client()
    log_path = build.output_dir / LOG_NAME
    log_path.unlink(missing_ok=True)
    build.report.log = str(log_path)
    checkout = build.config.checkout_dir
    public_arg = _public_arg_text(build)
    build.earthly_started = time.time()
    build.report.earthly = {"image": plan.earthly_image, "image_from": plan.earthly_image_from,
                            "id": engine.image_id(client, plan.earthly_image)}
    try:
        _clear_leftovers(build, client, plan)
        if plan.iso_file:
            _private_outputs_dir(checkout / "build")
        with earthly_inputs(build.config, plan, public_arg) as inputs:
            for i, run in enumerate(plan.runs, 1):
                spec = inputs.spec(run, f"{build.run_id}-{i}", [image.saved_as for image in plan.provider_images
                                                                  if image.k8s_version in run.provider_versions])
                console.info(f"earthly +{run.target} ({i}/{len(plan.runs)})")
                # Earthly runs as root: what it wrote goes back to this user, also after a failure;
                # the ISO holds user-data's credentials, so nobody else may read it meanwhile.
                def hand_back(run_id: str = f"{build.run_id}-{i}") -> None:
                    earthly.hand_back_outputs(client, plan.earthly_image, checkout, build.config.workdir,
                                              run_id, os.getuid(), os.getgid())
                    for iso in (checkout / "build").glob("*.iso"):
                        iso.chmod(0o600)
                try:
                    result = earthly.run_earthly(client, spec, log_path=log_path, redactor=build.redactor,
                                                 on_line=build.options.on_line)
                except BaseException:
                    with suppress(Exception):  # never hide why the run stopped
                        hand_back()
                    raise
                hand_back()
                if result.exit_code != 0:
                    raise BuildFailed(
                        f"earthly +{run.target} failed with exit code {result.exit_code} "
                        f"(full log: {log_path})",
                        details=[f"--- last {len(result.tail)} lines ---", *result.tail],
                    )
    finally:
        client.close()


def _private_outputs_dir(outputs: Path) -> None:
    """build/ as 0700 before Earthly writes the ISO (user-data's credentials) into it: Earthly keeps an
    existing directory's mode (v0.8.15 util/saveartifactlocally/saveartifactlocally.go:84 os.MkdirAll(toDir,
    0755), then :88 a hard link from its own temporary directory, made 0700 by builder/builder.go:875
    os.MkdirTemp), so nobody else can read the ISO while the build runs."""
    outputs.mkdir(mode=0o700, exist_ok=True)
    outputs.chmod(0o700)


def _clear_leftovers(build: Build, client: Any, plan: Plan) -> None:
    """What an earlier run on this work directory left when it was killed hard (kill -9, a power
    cut): its Earthly container may still be building and would later re-tag images or drop an ISO
    into build/; an old ISO there would pass for this build's. The work-directory lock is held, so
    every labelled container of this work directory is such a leftover."""
    from edgeforge_ext import engine

    left = engine.remove_managed(client, str(build.config.workdir), volumes=False)
    if left.containers:
        console.warn(f"stopped and removed {len(left.containers)} container(s) an earlier run on "
                     f"{build.config.workdir} left running: {', '.join(left.containers)}")
    if plan.iso_file:
        # The killed run's Earthly may have finished meanwhile: its outputs are root-owned, which a
        # non-root member of the docker group cannot remove. Handed back first, as after any run.
        from edgeforge_ext.build.earthly import hand_back_outputs

        hand_back_outputs(client, plan.earthly_image, build.config.checkout_dir, build.config.workdir,
                          f"{build.run_id}-0", os.getuid(), os.getgid())
        built = build.config.checkout_dir / "build" / plan.iso_file
        for stale in (built, built.with_name(built.name + ".sha256")):
            try:
                stale.unlink(missing_ok=True)
            except OSError as exc:  # root-owned from a run that could not hand it back
                raise ArtifactError(f"cannot remove the old {stale} before building: {exc.strerror}",
                                    hint="remove it (sudo rm) and build again") from None


def _public_arg_text(build: Build) -> str:
    """The .arg Earthly would read from the checkout: the rendered one, or with --skip render the
    user's own."""
    if "render" in build.config.build.skip or build.rendered is None:
        try:
            return (build.config.checkout_dir / ".arg").read_text(encoding="utf-8")
        except OSError:
            return ""
    return str(build.rendered.arg_text)


def boot_test(build: Build) -> str | None:
    from edgeforge_ext.iso.step import boot_test_step

    return boot_test_step(build.config, build.report)


def attest(build: Build) -> str | None:
    from edgeforge_ext.build.attest import attest_step

    return attest_step(build)


def collect(build: Build) -> None:
    from edgeforge_ext.build.collect import collect_step

    collect_step(build)


def push(build: Build) -> str | None:
    plan = build.the_plan()
    if not plan.push_enabled:
        console.note("push disabled (--no-push)")
        return "skipped"
    from edgeforge_ext.build.publish import push_images

    push_images(build.config, build.report)
    return None


STEPS: tuple[Step, ...] = (
    Step("preflight", preflight, on_skip=lambda build: engine_gate(build)),
    Step("checkout", checkout, on_skip=lambda build: checkout(build)),
    Step("render", render, cleanup=remove_user_data, on_skip=lambda build: render(build)),
    Step("validate", validate),
    Step("registry-check", registry_check),
    Step("earthly", earthly),
    Step("collect", collect),
    Step("boot-test", lambda build: boot_test(build), when=lambda build: build.config.build.boot_test),
    # Signed evidence of the ISO (and the facts each provider image's provenance will state at push).
    Step("attest", lambda build: attest(build), when=lambda build: build.config.attest.enabled),
    Step("push", push),
)
