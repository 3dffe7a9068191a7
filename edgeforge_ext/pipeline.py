"""The build flow: preflight → checkout → render → validate → registry-check → earthly → collect → push → report.

Each step is named, timed and skippable (`--skip STEP`). Whatever a step starts is cleaned up by the
step itself (containers are context managers); Ctrl-C and SIGTERM become `Interrupted` (exit 130).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeforge_ext import console
from edgeforge_ext.config import Config
from edgeforge_ext.errors import (
    ArtifactError,
    BuildFailed,
    CheckoutError,
    EdgeforgeError,
    Interrupted,
    PreflightError,
    RegistryError,
    RenderError,
    UsageError,
)
from edgeforge_ext.fsutil import ensure_dir
from edgeforge_ext.plan import Plan, Source, check_config, make_plan
from edgeforge_ext.report import (
    LOG_NAME,
    ImageRecord,
    PushRecord,
    Report,
    StepRecord,
    write_os_pack,
    write_report,
)
from edgeforge_ext.secrets import Redactor
from edgeforge_ext.settings import STEPS
from edgeforge_ext.signals import sigterm_as_interrupt

# The exit code of a filesystem failure (disk full, permission denied, read-only) in each step: the
# step's own error class, with a message naming the path.
_STEP_ERRORS: dict[str, type[EdgeforgeError]] = {
    "preflight": PreflightError, "checkout": CheckoutError, "render": RenderError, "validate": RenderError,
    "registry-check": RegistryError, "earthly": BuildFailed, "collect": ArtifactError, "push": RegistryError,
    "report": ArtifactError, "boot-test": ArtifactError,
}


@contextmanager
def filesystem_errors(step: str) -> Iterator[None]:
    """An OSError in a step becomes that step's documented error naming the path, never "internal error"."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise _STEP_ERRORS.get(step, UsageError)(
            f"{step}: {exc.strerror or exc}{where}",
            hint="check the free space and the permissions there") from exc


def source_from_facts(facts: Any) -> Source:
    return Source(url=facts.url, ref=facts.ref, tag=facts.tag, sha=facts.sha, pe_version=facts.pe_version,
                  describe=facts.describe, k8s_versions=facts.k8s_versions, targets=tuple(facts.targets),
                  contract=facts.contract)


@dataclass
class BuildOptions:
    keep_user_data: bool = False
    discard_changes: bool = False
    wait: bool = True
    on_line: Callable[[str], None] | None = None
    # Nightly hooks (nightly.py): a dated output directory instead of config.output_dir, and a callback
    # run after validate, before anything contacts a registry or starts a container (it may raise).
    output_dir: Path | None = None
    before_earthly: Callable[[Pipeline], None] | None = None


@dataclass
class BuildState:
    config: Config
    options: BuildOptions
    report: Report = field(default_factory=Report)
    facts: Any = None
    plan: Plan | None = None
    rendered: Any = None
    user_data: bytes = b""  # the user-data the ISO must contain
    user_data_path: Path | None = None
    redactor: Redactor = field(default_factory=Redactor)
    earthly_started: float | None = None  # epoch seconds: when this build's Earthly step began


class Pipeline:
    def __init__(self, config: Config, options: BuildOptions | None = None) -> None:
        self.config = config
        self.state = BuildState(config, options or BuildOptions())
        self.state.redactor = Redactor(config.secrets)
        self.output_dir = self.state.options.output_dir or config.output_dir
        self.run_id = uuid.uuid4().hex[:8]

    # --- driver -----------------------------------------------------------------------------------

    def run(self) -> Report:
        report = self.state.report
        report.variant = self.config.variant
        report.skipped = list(self.config["build.skip"])
        check_config(self.config)
        ensure_dir(self.output_dir, "output directory", "choose another --output (output.dir)")
        # settings.STEPS is the order (and the names --skip accepts); each is a method of the same name.
        # The last, "report", is _finish: it runs whatever happened.
        steps: list[tuple[str, Callable[[], str | None]]] = [
            (name, getattr(self, name.replace("-", "_"))) for name in STEPS
            if name != "report" and (name != "boot-test" or self.config["build.boot_test"])]
        from edgeforge_ext.locking import workdir_lock

        try:
            with sigterm_as_interrupt(), workdir_lock(self.config.workdir, wait=self.state.options.wait,
                                                      what="build"):
                if "preflight" in self.config["build.skip"]:
                    self.engine_gate()
                for name, step in steps:
                    if name == "registry-check" and self.state.options.before_earthly is not None:
                        self.state.options.before_earthly(self)
                    self._run_step(name, step)
            report.status = "success" if not report.error else report.status
        except KeyboardInterrupt as exc:
            report.status = "interrupted"
            report.error = "interrupted"
            raise Interrupted("interrupted: the Earthly container (if any) was stopped and removed") from exc
        except EdgeforgeError as exc:
            if report.status == "running":
                report.status = "failed"
            report.error = self.state.redactor(exc.message)
            raise
        except Exception as exc:  # a bug: the report still says the build failed, not "running"
            report.status = "failed"
            report.error = self.state.redactor(f"internal error: {type(exc).__name__}: {exc}")
            raise
        finally:
            self._finish()
        return report

    def _run_step(self, name: str, step: Callable[[], str | None]) -> None:
        """Run one step, timed and folded; a step returns "skipped" when it decided to do nothing."""
        record = StepRecord(name, "not-run")
        self.state.report.steps.append(record)
        # Skipped checkout and render still run in a reduced form: later steps need the checkout's
        # facts and the user-data the ISO must hold; they just change nothing.
        if name in self.config["build.skip"] and name not in ("checkout", "render"):
            record.status = "skipped"
            console.note(f"skipping {name} (--skip {name})")
            return
        start = time.monotonic()
        with console.group(name):
            try:
                with filesystem_errors(name):
                    outcome = step()
                skipped = outcome == "skipped" or name in self.config["build.skip"]
                record.status = "skipped" if skipped else "ok"
                if skipped and name not in self.state.report.skipped:
                    self.state.report.skipped.append(name)
            except BaseException:
                record.status = "failed"
                raise
            finally:
                record.seconds = time.monotonic() - start
        console.note(f"{name}: {record.status} in {record.seconds:.1f}s")

    def _finish(self) -> None:
        """The report step: runs whatever happened. A report that cannot be written (disk full) is an
        error of its own only when the build otherwise succeeded; it never hides the build's error."""
        failing = sys.exc_info()[0] is not None  # called from `finally`: is an error on its way out?
        report = self.state.report
        record = StepRecord("report", "ok")
        report.steps.append(record)
        ud = self.state.user_data_path
        try:
            with filesystem_errors("report"):
                if ud is not None and ud.exists() and not self.state.options.keep_user_data:
                    ud.unlink()
                    console.note(f"removed {ud} (it holds credentials; --keep-user-data keeps it)")
                if self.state.plan is not None:
                    report.os_pack = dict(self.state.plan.os_pack)
                    report.warnings = list(dict.fromkeys([*report.warnings, *self.state.plan.warnings]))
                    write_os_pack(self.state.plan.os_pack_text, self.output_dir)
                write_report(report, self.output_dir)
        except EdgeforgeError as exc:
            record.status = "failed"
            if failing:
                console.warn(exc.message)
                return
            raise

    # --- steps ------------------------------------------------------------------------------------

    def preflight(self) -> None:
        from edgeforge_ext.preflight import raise_if_failed, run_preflight
        from edgeforge_ext.preflight_view import print_checks

        versions = len(self.config["build.k8s_versions"]) or 1
        checks = run_preflight(self.config, provider_images=versions)
        if console.verbose() or any(c.required and not c.ok for c in checks):
            print_checks(checks)
        raise_if_failed(checks)

    def engine_gate(self) -> None:
        """With preflight skipped, the container engine is still checked before anything changes:
        reachable, new enough, privileged containers when Earthly needs them (exit 6)."""
        from edgeforge_ext.errors import EngineError
        from edgeforge_ext.preflight import run_preflight

        engine_checks = ("docker", "docker_version", "privileged")
        failed = [c for c in run_preflight(self.config) if c.name in engine_checks and c.required and not c.ok]
        if failed:
            raise EngineError(
                f"container engine not usable: {', '.join(c.name for c in failed)}",
                details=[f"{c.name}: {c.detail}" for c in failed],
                hint=next((c.hint for c in failed if c.hint), None),
            )

    def checkout(self) -> None:
        from edgeforge_ext import canvos

        path = self.config.checkout_dir
        if "checkout" in self.config["build.skip"]:
            if not path.exists():
                raise UsageError(f"--skip checkout needs an existing checkout at {path}")
            console.note(f"skipping checkout (--skip checkout): using {path} as it is")
            facts = canvos.read_facts(path, url=str(self.config["canvos.url"]), ref=str(self.config["canvos.ref"]))
        else:
            facts = canvos.checkout(str(self.config["canvos.url"]), str(self.config["canvos.ref"]), path,
                                    discard_changes=self.state.options.discard_changes)
        for w in facts.warnings:
            console.warn(w)
        self.state.facts = facts
        self.state.report.canvos = {"url": facts.url, "ref": facts.ref, "tag": facts.tag, "sha": facts.sha,
                                    "pe_version": facts.pe_version, "describe": facts.describe,
                                    "modified": list(facts.modified)}
        console.info(f"CanvOS {facts.tag or facts.ref} at {facts.sha[:12]} (PE_VERSION {facts.pe_version})")
        plan = make_plan(self.config, source_from_facts(facts))
        self.state.plan = plan
        if console.verbose():
            from edgeforge_ext.build_view import print_plan

            print_plan(plan, self.config)
        for w in plan.warnings:
            console.warn(w)
        self.state.report.provider_images = [ImageRecord(i.ref, i.k8s_version, list(i.push_refs))
                                             for i in plan.provider_images]

    def render(self) -> None:
        from edgeforge_ext.prebuild import install_ca_certs, render_in_memory
        from edgeforge_ext.render import write_rendered

        plan = self._plan()
        rendered = render_in_memory(self.config, plan)
        self.state.rendered = rendered
        if "render" in self.config["build.skip"]:
            console.note("skipping render (--skip render): using the user-data and .arg already in the checkout")
            existing = self.config.checkout_dir / "user-data"
            self.state.user_data_path = None  # not ours: never removed
            if not existing.exists() and plan.iso_name:
                raise UsageError(f"--skip render needs {existing}")
            if existing.exists():
                self.state.user_data = existing.read_bytes()  # what the ISO must hold
            return
        self.state.user_data = rendered.user_data.encode()
        ud, arg = write_rendered(rendered, self.config.checkout_dir)
        self.state.user_data_path = ud
        for cert in install_ca_certs(self.config, plan, self.config.checkout_dir):
            console.info(f"trusting {cert.name} during the build ({cert})")
        self.state.report.warnings.extend(rendered.warnings)
        console.info(f"wrote {ud} (mode 0600) and {arg}")
        if plan.iso_name:
            console.note("the user-data (with the registry password and registration token) ends up inside "
                         "the ISO, by Palette's design")

    def validate(self) -> None:
        # render_all already validated user-data and .arg (exit 5); here: the plan against the checkout.
        from edgeforge_ext.prebuild import check_tree

        plan = self._plan()
        for warning in check_tree(self.config, plan, self.config.checkout_dir):
            console.warn(warning)
        console.info(f"target {plan.target}: {len(plan.runs)} Earthly run(s), "
                     f"{len(plan.provider_images)} provider image(s)"
                     + (f", ISO {plan.iso_file}" if plan.iso_file else ""))

    def registry_check(self) -> None:
        from edgeforge_ext import registry

        plan = self._plan()
        hosts = self._registries_to_check(plan)
        if not hosts:
            console.note("no registry to check (nothing is pushed and no external registry is configured)")
            return
        for host, creds in hosts.items():
            registry.check_credentials(host, creds.username, creds.password, insecure=creds.insecure,
                                       ca_file=creds.ca_file)
            console.info(f"registry {host}: credentials accepted" if creds.username else f"registry {host}: reachable")

    def _registries_to_check(self, plan: Plan) -> dict[str, Any]:
        """The external registry, and every push destination we hold credentials for. Destinations
        without configured credentials use the Docker daemon's own login (docker login)."""
        from edgeforge_ext.registry import credentials_for, registry_host

        hosts: dict[str, Any] = {}
        domain = str(self.config["registry.domain"])
        if domain:
            hosts[registry_host(domain)] = credentials_for(self.config, domain)
        if plan.push_enabled and "push" not in self.config["build.skip"]:
            for image in plan.provider_images:
                for ref in image.push_refs:
                    host = registry_host(ref)
                    creds = credentials_for(self.config, host)
                    if host not in hosts and creds.username:
                        hosts[host] = creds
        return hosts

    def earthly(self) -> None:
        import os

        from edgeforge_ext import earthly, engine
        from edgeforge_ext.earthly_inputs import earthly_inputs

        plan = self._plan()
        client = engine.client()
        log_path = self.output_dir / LOG_NAME
        log_path.unlink(missing_ok=True)
        self.state.report.log = str(log_path)
        checkout = self.config.checkout_dir
        public_arg = self._public_arg_text()
        self.state.earthly_started = time.time()
        try:
            self._clear_leftovers(client, plan)
            with earthly_inputs(self.config, plan, public_arg) as inputs:
                for i, run in enumerate(plan.runs, 1):
                    spec = inputs.spec(run, f"{self.run_id}-{i}", [image.ref for image in plan.provider_images])
                    console.info(f"earthly +{run.target} ({i}/{len(plan.runs)})")
                    # Earthly runs as root: what it wrote goes back to this user, also after a failure;
                    # the ISO holds user-data's credentials, so nobody else may read it meanwhile.
                    def hand_back(run_id: str = f"{self.run_id}-{i}") -> None:
                        earthly.hand_back_outputs(client, plan.earthly_image, checkout, self.config.workdir,
                                                  run_id, os.getuid(), os.getgid())
                        for iso in (checkout / "build").glob("*.iso"):
                            iso.chmod(0o600)
                    try:
                        result = earthly.run_earthly(client, spec, log_path=log_path, redactor=self.state.redactor,
                                                     on_line=self.state.options.on_line)
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

    def _clear_leftovers(self, client: Any, plan: Plan) -> None:
        """What an earlier run on this work directory left when it was killed hard (kill -9, a power
        cut): its Earthly container may still be building and would later re-tag images or drop an ISO
        into build/; an old ISO there would pass for this build's. The work-directory lock is held, so
        every labelled container of this work directory is such a leftover."""
        from edgeforge_ext import engine

        left = engine.remove_managed(client, str(self.config.workdir), volumes=False)
        if left.containers:
            console.warn(f"stopped and removed {len(left.containers)} container(s) an earlier run on "
                         f"{self.config.workdir} left running: {', '.join(left.containers)}")
        if plan.iso_file:
            built = self.config.checkout_dir / "build" / plan.iso_file
            for stale in (built, built.with_name(built.name + ".sha256")):
                try:
                    stale.unlink(missing_ok=True)
                except OSError as exc:  # root-owned from a run that could not hand it back
                    raise ArtifactError(f"cannot remove the old {stale} before building: {exc.strerror}",
                                        hint="remove it (sudo rm) and build again") from None

    def _public_arg_text(self) -> str:
        """The .arg Earthly would read from the checkout: the rendered one, or with --skip render the
        user's own."""
        if "render" in self.config["build.skip"] or self.state.rendered is None:
            try:
                return (self.config.checkout_dir / ".arg").read_text(encoding="utf-8")
            except OSError:
                return ""
        return str(self.state.rendered.arg_text)

    def collect(self) -> None:
        from edgeforge_ext import engine

        plan = self._plan()
        if plan.iso_file:
            self._collect_iso(plan)
        if plan.provider_images:
            client = engine.client()
            try:
                self._collect_images(client, plan)
            finally:
                client.close()

    def _collect_images(self, client: Any, plan: Plan) -> None:
        """Record the id of each provider image this build's Earthly run left in the daemon; the push
        pushes exactly those. Another build saving the same names meanwhile (a shared daemon, other
        work directory) makes that unknowable: refuse rather than push someone else's image."""
        from edgeforge_ext import engine

        refs = [i.ref for i in plan.provider_images]
        ids = {ref: engine.image_id(client, ref) for ref in refs}
        missing = [ref for ref, found in ids.items() if found is None]
        if missing:
            raise ArtifactError("provider images the plan expects are not in the Docker daemon", details=missing)
        if self.state.earthly_started is not None:
            others = engine.other_builds_of(client, refs, since=self.state.earthly_started - 1,
                                            workdir=str(self.config.workdir))
            if others:
                raise ArtifactError(
                    "another build saved provider images with the same names while this one ran, so which "
                    "image in the Docker daemon is this build's cannot be told", details=[f"other build: {w}"
                                                                                         for w in others],
                    hint="give concurrent builds different names (--custom-tag, --image-repo) or run them one "
                    "after the other, then build again")
        for record in self.state.report.provider_images:
            record.image_id = ids.get(record.ref)
        for image in plan.provider_images:
            console.info(f"provider image {image.ref} ({str(ids[image.ref])[:19]})")

    def _collect_iso(self, plan: Plan) -> None:
        """Verify the ISO in the checkout's build/ and move it (mode 0600: it holds the credentials of
        user-data) with its .sha256 into the output directory."""
        from edgeforge_ext.fsutil import artifact_errors, move_into, write_sha256_file
        from edgeforge_ext.iso import verify_iso
        from edgeforge_ext.isostep import inspect_collected_iso

        assert plan.iso_file is not None
        built = self.config.checkout_dir / "build" / plan.iso_file
        if not built.exists():
            raise ArtifactError(f"the build did not produce {built}",
                                hint=f"the Earthly step writes it: see its log ({self.output_dir / LOG_NAME}); "
                                "with --skip earthly, build/ in the checkout must already hold it")
        sha_file = built.with_name(built.name + ".sha256")
        if not sha_file.exists() and not expects_checksum(plan, bool(self.config["build.uki"])):
            # CanvOS's +build-uki-iso writes no .sha256 (its +build-iso does): make it, as sha256sum would.
            with artifact_errors("writing the checksum of", built):
                write_sha256_file(built, sha_file)
            console.note(f"the build wrote no {sha_file.name} (UKI ISOs have none): computed it")
        check = verify_iso(built, self.state.user_data)
        with artifact_errors("moving the ISO to the output directory", self.output_dir):
            iso = move_into(built, self.output_dir, mode=0o600)
            move_into(sha_file, self.output_dir)
        self.state.report.iso = {"path": str(iso), "size": check.size, "sha256": check.sha256,
                                 "user_data_path": check.user_data_path}
        inspect_collected_iso(self.config, iso, self.state.user_data, self.state.report.iso)
        console.info(f"ISO {iso} ({check.size / 1024**2:.1f} MiB, sha256 {check.sha256[:16]}…), "
                     f"user-data inside at {check.user_data_path}")

    def boot_test(self) -> str | None:
        from edgeforge_ext.isostep import boot_test_step

        return boot_test_step(self.config, self.state.report)

    def push(self) -> str | None:
        plan = self._plan()
        if not plan.push_enabled:
            console.note("push disabled (--no-push)")
            return "skipped"
        push_images(self.config, self.state.report)
        return None

    def _plan(self) -> Plan:
        if self.state.plan is None:
            raise UsageError("internal: no plan (the checkout step did not run)")
        return self.state.plan


def expects_checksum(plan: Plan, uki: bool) -> bool:
    """Whether the checkout's ISO target writes `<ISO>.sha256` itself (`RUN sha256sum` in +build-iso;
    none in +build-uki-iso at every CanvOS tag). Unknown trees are expected to."""
    contract = plan.source.contract
    if contract is None:
        return True
    body = contract.earthfile.bodies.get("build-uki-iso" if uki else "build-iso")
    return body is None or any("sha256sum" in line for line in body)


def push_images(config: Config, report: Report) -> None:
    """Push every image of the report that is not pushed yet; the report records what was (resumable)."""
    from edgeforge_ext import engine

    pending = [(image, target) for image in report.provider_images for target in image.unpushed]
    if not pending:
        console.info("nothing to push: every provider image is already pushed")
        return
    from edgeforge_ext.registry import credentials_for

    client = engine.client()
    failures: list[str] = []
    try:
        for image, target in pending:
            creds = credentials_for(config, target)
            alias = target != image.ref
            try:
                _point_at_this_build(client, image, target)
                digest = engine.push_image(client, target, username=creds.username or None, password=creds.password,
                                           on_progress=_push_progress(target))
            except RegistryError as exc:
                failures.append(f"{target}: {exc.message}")
                continue
            finally:
                if alias:
                    engine.untag(client, target)  # the name existed only to push; Earthly's own stays
            image.pushed.append(PushRecord(target, digest))
            console.info(f"pushed {target} ({digest})")
    finally:
        client.close()
    if failures:
        report.status = "push-failed"
        raise RegistryError(
            "some provider images were not pushed", details=failures,
            hint="edgeforge-ext push resumes; give it the same registry options as the build (--registry, "
            "--registry-username and the password) so it has the credentials")


def _point_at_this_build(client: Any, image: ImageRecord, target: str) -> None:
    """Make `target` name the image this build produced (its id from collect), not whatever now carries
    Earthly's name in a shared daemon; builds recorded before ids were kept push by name."""
    from edgeforge_ext import engine

    source = image.image_id or image.ref
    if target == image.ref and (image.image_id is None or engine.image_id(client, image.ref) == image.image_id):
        return
    if image.image_id is not None and engine.image_info(client, image.image_id) is None:
        raise RegistryError(f"the image {image.ref} this build produced ({image.image_id[:19]}) is no longer in "
                            "the Docker daemon", hint="build again")
    engine.tag_image(client, source, target)


def _push_progress(target: str) -> Callable[[str], None] | None:
    """Per-layer push progress on a terminal, or everywhere with -v."""
    if not (console.is_interactive() or console.verbose()):
        return None

    def show(line: str) -> None:
        console.note(f"{target}: {line}")

    return show
