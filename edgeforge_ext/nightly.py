"""Scripted builds: every selected variant in turn, dated outputs, skip-when-unchanged, --locked.

One work directory lock for the whole run, so one CanvOS checkout and one BuildKit cache serve every
variant. Each build is independent: a variant's failure is recorded and (with keep_going) the others
still build; the summary (table, edgeforge-summary.json, GitHub step summary) always shows them all.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeforge_ext import console, edgeforge_lock, outputs
from edgeforge_ext.build.pipeline import Pipeline
from edgeforge_ext.build.plan import check_config
from edgeforge_ext.build.report import Report, read_report
from edgeforge_ext.build.state import Build, BuildOptions
from edgeforge_ext.config import Config
from edgeforge_ext.errors import EdgeforgeError, Interrupted, UsageError
from edgeforge_ext.fsutil import atomic_write, ensure_dir, sha256_file
from edgeforge_ext.secrets import scrub

SUMMARY_NAME = "edgeforge-summary.json"
INPUTS_NAME = "edgeforge-inputs.json"  # the build's locked-style inputs and provider image ids


@dataclass(frozen=True)
class NightlyOptions:
    variants: tuple[str, ...] = ()
    all_variants: bool = False
    keep_going: bool = False
    locked: bool = False
    skip_unchanged: bool = False
    keep_last: int | None = None
    sharded: bool = False  # build --shard: one shard's build, recorded for `gather`

    @property
    def dated(self) -> bool:
        """Dated output directories with a `latest` link (any of the nightly options turns them on)."""
        return bool(self.variants or self.all_variants or self.skip_unchanged or self.keep_last or self.sharded)


@dataclass
class BuildResult:
    name: str  # "default" or the variant's name
    status: str  # success | up-to-date | failed | interrupted | not-run
    exit_code: int = 0
    seconds: float = 0.0
    output_dir: Path | None = None
    report: Report | None = None
    error: str | None = None
    details: list[str] = field(default_factory=list)  # the error's details (e.g. what drifted from the lock)
    reason: str = ""  # why it was built or skipped

    def as_json(self) -> dict[str, Any]:
        return {"variant": self.name, "status": self.status, "exit_code": self.exit_code,
                "seconds": round(self.seconds, 2), "output_dir": str(self.output_dir) if self.output_dir else None,
                "reason": self.reason, "error": scrub(self.error) if self.error else None, "details": self.details,
                "report": self.report.as_json() if self.report else None}

    @staticmethod
    def from_json(data: dict[str, Any]) -> BuildResult:
        """A build as edgeforge-summary.json (or a shard record) lists it."""
        from edgeforge_ext.build.report import report_from_json

        report = data.get("report")
        where = Path(data["output_dir"]) if data.get("output_dir") else None
        return BuildResult(str(data["variant"]), str(data["status"]), int(data.get("exit_code") or 0),
                           float(data.get("seconds") or 0), where,
                           report_from_json(report) if isinstance(report, dict) else None, data.get("error"),
                           list(data.get("details") or []), str(data.get("reason") or ""))


@dataclass
class Summary:
    output_dir: Path
    results: list[BuildResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        if any(r.status == "interrupted" for r in self.results):
            return "interrupted"
        return "failed" if any(r.status in ("failed", "not-run") for r in self.results) else "success"

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "builds": [r.as_json() for r in self.results]}


class VariantsFailed(EdgeforgeError):
    """Some variants failed; the exit code is the first failure's."""

    def __init__(self, message: str, exit_code: int, details: list[str]) -> None:
        super().__init__(message, details=details, hint="each variant's report is in its output directory")
        self.exit_code = exit_code


def selected(config: Config, options: NightlyOptions) -> list[str | None]:
    """The builds of this run: variant names, or [None] for the top-level config."""
    if options.all_variants:
        if not config.variants:
            raise UsageError("--all: the configuration defines no [[variants]]")
        return [v.name for v in config.variants]
    for name in options.variants:
        config.with_variant(name)  # unknown names fail before anything runs
    return list(dict.fromkeys(options.variants)) or [None]


# ------------------------------------------------------------------------------------------ running


@dataclass(frozen=True)
class Planned:
    """One build of a run: its label names its output directory (OUTPUT/<label>/) and its summary row."""

    label: str  # "default", a variant's name, or a shard's id
    config: Config


def planned_builds(config: Config, options: NightlyOptions) -> list[Planned]:
    return [Planned(name or outputs.DEFAULT_VARIANT, config.with_variant(name) if name else config)
            for name in selected(config, options)]


def run_builds(config: Config, options: NightlyOptions, build: BuildOptions) -> Summary:
    """Build every selected variant; raise the build's own error for one build, VariantsFailed for several."""
    planned = planned_builds(config, options)
    summary, first_error = run_planned(config, planned, options, build)
    raise_for(summary, first_error)
    return summary


def run_planned(config: Config, planned: list[Planned], options: NightlyOptions, build: BuildOptions, *,
                summary_file: bool = True) -> tuple[Summary, BaseException | None]:
    """Build each planned build under one work-directory lock; (the summary, the first error or None).
    `summary_file`: write OUTPUT/edgeforge-summary.json (a shard writes its own record instead)."""
    from edgeforge_ext.signals import sigterm_as_interrupt
    from edgeforge_ext.workdir_lock import workdir_lock

    lock = edgeforge_lock.read_lock(edgeforge_lock.lock_path(config)) if options.locked else None
    for one in planned:  # mistakes the configuration alone decides stop the run before anything starts
        check_config(one.config)
    summary = Summary(config.output_dir)
    first_error: BaseException | None = None
    runner = _Runner(config, options, build, lock)
    with sigterm_as_interrupt(), workdir_lock(config.workdir, wait=build.wait, what="build"):
        try:
            for one in planned:
                if first_error is not None and not options.keep_going:
                    summary.results.append(BuildResult(one.label, "not-run", reason="an earlier variant failed"))
                    continue
                if len(planned) > 1:
                    console.info(f"=== {one.label} ===")
                result, error = runner.one(one)
                summary.results.append(result)
                if error is not None and first_error is None:
                    first_error = error
                if isinstance(error, Interrupted):
                    break
        except KeyboardInterrupt as exc:  # between builds
            first_error = Interrupted("interrupted")
            first_error.__cause__ = exc
        finally:
            for one in planned[len(summary.results):]:
                summary.results.append(BuildResult(one.label, "not-run", reason="interrupted"))
            _finish(summary, options, len(planned) > 1, summary_file=summary_file)
    return summary, first_error


def raise_for(summary: Summary, first_error: BaseException | None) -> None:
    """The run's error, as the CLI reports it: a single build's own error, or VariantsFailed naming them."""
    if first_error is None:
        return
    single = len(summary.results) == 1
    if single or isinstance(first_error, Interrupted):
        if isinstance(first_error, EdgeforgeError):
            report = summary.results[0].report if single and summary.results else None
            first_error.result = report.as_json() if report is not None else summary.as_json()
        raise first_error
    failed = [r for r in summary.results if r.status in ("failed", "interrupted")]
    error = VariantsFailed(f"{len(failed)} of {len(summary.results)} variant(s) failed: "
                           + ", ".join(f"{r.name} (exit {r.exit_code})" for r in failed),
                           exit_code=failed[0].exit_code if failed else 1,
                           details=[line for r in failed for line in (f"{r.name}: {r.error}",
                                                                      *(f"  {d}" for d in r.details[-10:]))])
    error.result = summary.as_json()
    raise error


class _Runner:
    def __init__(self, config: Config, options: NightlyOptions, build: BuildOptions,
                 lock: edgeforge_lock.Lock | None) -> None:
        self.config = config
        self.options = options
        self.build = build
        self.lock = lock
        self.facts: Any = None  # one checkout per run serves every variant

    def one(self, planned: Planned) -> tuple[BuildResult, BaseException | None]:
        label = planned.label
        started = time.monotonic()
        result = BuildResult(label, "failed")
        try:
            self._build(planned.config, label, result)
        except (EdgeforgeError, KeyboardInterrupt) as exc:
            error = exc if isinstance(exc, EdgeforgeError) else Interrupted("interrupted")
            result.status = "interrupted" if isinstance(error, Interrupted) else "failed"
            result.exit_code = error.exit_code
            result.error = error.message
            result.details = [scrub(d) for d in error.details]
            result.seconds = time.monotonic() - started
            if _multi(self.options):
                console.error(f"{label}: {error.message}")  # the CLI annotates the overall failure once more
            return result, error
        result.seconds = time.monotonic() - started
        return result, None

    def _build(self, config: Config, label: str, result: BuildResult) -> None:
        root = outputs.variant_root(self.config.output_dir, label)
        plain = not self.options.dated and not self.options.locked
        resolved: edgeforge_lock.Resolved | None = None
        if not plain:
            with console.group(f"inputs {label}"):
                resolved = edgeforge_lock.resolve(config, discard_changes=self.build.discard_changes, facts=self.facts)
                self.facts = resolved.facts
                inputs = resolved.inputs
                console.info(f"CanvOS {inputs.canvos_ref} at {inputs.canvos_sha[:12]}, Earthly image "
                             f"{inputs.earthly_id or 'not present locally'}, fingerprint {inputs.fingerprint[:19]}…")
            if self.lock is not None:
                edgeforge_lock.check_locked(self.lock, label, resolved.inputs, edgeforge_lock.lock_path(self.config))
            if self.options.skip_unchanged:
                previous, reason = up_to_date(root, resolved.inputs)
                result.reason = reason
                if previous is not None:
                    console.info(f"{label}: up to date ({reason}); nothing to build")
                    result.status = "up-to-date"
                    result.output_dir = previous
                    result.report = read_report(previous)
                    return
                console.info(f"{label}: building ({reason})")
        run_dir = outputs.new_run_dir(root, resolved.inputs.canvos_sha if resolved else None) \
            if self.options.dated else None
        result.output_dir = run_dir or config.output_dir
        hook = _InputsHook(self.lock, label, edgeforge_lock.lock_path(self.config))
        pipeline = Pipeline(config, replace(self.build, output_dir=run_dir, before_earthly=None if plain else hook))
        try:
            report = pipeline.run()
            result.report = report
            if run_dir is not None:
                _write_inputs(run_dir, hook.inputs, report)
                _verify_evidence(config, report, run_dir)
                outputs.promote(root, run_dir)
                console.info(f"{root / outputs.LATEST} -> {run_dir.name}")
            result.status = "success"
            self.build.reporter.build_done(report, pipeline.output_dir)
        except BaseException:
            result.report = pipeline.build.report
            if run_dir is not None and hook.inputs is not None:
                _write_inputs(run_dir, hook.inputs, None)
            raise
        finally:
            if run_dir is not None:
                outputs.finished(run_dir)
                if self.options.keep_last:
                    for old in outputs.prune(root, self.options.keep_last, in_use=(run_dir,)):
                        console.note(f"removed old build {old} (--keep-last {self.options.keep_last})")


def _verify_evidence(config: Config, report: Report, run_dir: Path) -> None:
    """`latest` moves only after the build's attestations verify (build --attest); otherwise the run's
    report says why it was not promoted."""
    from edgeforge_ext.build.attest import verify_for_promotion
    from edgeforge_ext.build.report import write_report

    try:
        verify_for_promotion(config, report)
    except EdgeforgeError as exc:
        report.status = "unverified"
        report.error = exc.message
        write_report(report, run_dir)
        raise


def _multi(options: NightlyOptions) -> bool:
    return options.all_variants or len(options.variants) > 1


class _InputsHook:
    """Runs in the pipeline after validate: records the inputs actually built and re-checks the lock
    (the ref may have moved since the run resolved it)."""

    def __init__(self, lock: edgeforge_lock.Lock | None, label: str, path: Path) -> None:
        self.lock = lock
        self.label = label
        self.path = path
        self.inputs: edgeforge_lock.Inputs | None = None

    def __call__(self, build: Build) -> None:
        if build.facts is None or build.plan is None or build.rendered is None:
            return
        earthly = edgeforge_lock.earthly_identity(build.plan.earthly_image)
        self.inputs = edgeforge_lock.inputs_of(build.config, build.facts, build.plan, build.rendered, earthly)
        if self.lock is not None:
            edgeforge_lock.check_locked(self.lock, self.label, self.inputs, self.path)


def _write_inputs(run_dir: Path, inputs: edgeforge_lock.Inputs | None, report: Report | None) -> None:
    if inputs is None:
        return
    # The ids collect recorded: the user's names may since name another build's image (a shared daemon).
    images = {i.ref: i.image_id for i in report.provider_images if i.image_id} if report is not None else {}
    data = {"format": edgeforge_lock.FORMAT, "inputs": inputs.as_json(), "provider_image_ids": images}
    atomic_write(run_dir / INPUTS_NAME, (json.dumps(data, indent=2) + "\n").encode())


def read_inputs(run_dir: Path) -> tuple[edgeforge_lock.Inputs, dict[str, str]] | None:
    try:
        data = json.loads((run_dir / INPUTS_NAME).read_text())
        return edgeforge_lock.Inputs.from_json(data["inputs"]), dict(data.get("provider_image_ids", {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class LastSuccess:
    directory: Path
    report: Report
    inputs: edgeforge_lock.Inputs
    image_ids: dict[str, str]  # provider image ref -> the image id the build produced


def last_success(root: Path) -> LastSuccess | str:
    """The newest successful build under `root` with the inputs it recorded, or why there is none."""
    previous = outputs.latest(root)
    if previous is None:
        return "no earlier successful build"
    try:
        report = read_report(previous)
    except EdgeforgeError:
        return f"cannot read the report in {previous}"
    recorded = read_inputs(previous)
    if report.status != "success" or recorded is None:
        return f"{previous.name} has no record of a successful build"
    return LastSuccess(previous, report, *recorded)


def up_to_date(root: Path, now: edgeforge_lock.Inputs) -> tuple[Path | None, str]:
    """(the last successful build's directory, why) when nothing changed and its artifacts are intact;
    (None, what changed) otherwise."""
    last = last_success(root)
    if isinstance(last, str):
        return None, last
    previous, report, before, image_ids = last.directory, last.report, last.inputs, last.image_ids
    if before.canvos_sha != now.canvos_sha:
        return None, f"CanvOS moved from {before.canvos_sha[:12]} to {now.canvos_sha[:12]}"
    if before.earthly_id != now.earthly_id or now.earthly_id is None:
        return None, "the Earthly image changed"
    if before.fingerprint != now.fingerprint:
        return None, "the rendered user-data, .arg, targets or build args changed"
    if report.iso:
        iso = previous / Path(report.iso["path"]).name  # the tree may have been moved or mounted elsewhere
        if not iso.is_file():
            return None, f"the last ISO {iso} is gone"
        if sha256_file(iso) != report.iso.get("sha256"):
            return None, f"the last ISO {iso} no longer matches its sha256"
    missing = images_gone(report, image_ids)
    if missing:
        return None, f"provider image {missing[0]} is no longer in the Docker daemon"
    return previous, f"same inputs as {previous.name}, artifacts intact"


def images_gone(report: Report, image_ids: dict[str, str]) -> list[str]:
    """The provider images whose recorded image is no longer in the daemon (asked by id: the names may
    name another build's image by now)."""
    refs = [image.ref for image in report.provider_images]
    if not refs:
        return []
    known = [image_ids[ref] for ref in refs if image_ids.get(ref)]
    found = edgeforge_lock.local_images(known) if known else {}
    return [ref for ref in refs if not image_ids.get(ref) or found[image_ids[ref]][0] is None]


# ------------------------------------------------------------------------------------------ the summary


def _finish(summary: Summary, options: NightlyOptions, multi: bool, *, summary_file: bool = True) -> None:
    if options.dated and summary_file:
        ensure_dir(summary.output_dir, "output directory", "choose another --output (output.dir)")
        atomic_write(summary.output_dir / SUMMARY_NAME, (json.dumps(summary.as_json(), indent=2) + "\n").encode())
    if multi or options.dated:
        print_table(summary)
    console.step_summary(markdown(summary))


def print_table(summary: Summary) -> None:
    rows = [("build", "status", "time", "CanvOS", "output")]
    for r in summary.results:
        sha = (r.report.canvos.get("sha") or "")[:12] if r.report else ""
        rows.append((r.name, r.status + (f" (exit {r.exit_code})" if r.exit_code else ""), f"{r.seconds:.0f}s",
                     sha, str(r.output_dir or "")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    console.info("")
    for row in rows:
        console.info("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    path = summary.output_dir / SUMMARY_NAME
    if path.exists():
        console.info(f"summary  {path}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(summary: Summary) -> str:
    """The GitHub job summary: one row per build with its outputs."""
    icon = {"success": "✅", "up-to-date": "✅", "failed": "❌", "interrupted": "⚠️", "not-run": "⏭️"}
    lines = ["### edgeforge-ext build", "",
             "| build | status | CanvOS | ISO | sha256 | provider images | time |",
             "|---|---|---|---|---|---|---|"]
    for r in summary.results:
        report = r.report
        canvos = iso = sha = images = ""
        if report is not None:
            c = report.canvos
            if c.get("sha"):
                canvos = f"{c.get('tag') or c.get('ref') or ''} @ `{str(c['sha'])[:12]}`"
            if report.iso:
                iso = f"{Path(report.iso['path']).name} ({int(report.iso.get('size', 0)) / 1024**2:.1f} MiB)"
                iso += "".join(f"<br>boot {f['firmware']}: {'✅' if f['passed'] else '❌'}"
                               for f in (report.iso.get("boot") or {}).get("firmwares", []))
                sha = f"`{report.iso.get('sha256', '')}`"
            images = "<br>".join(
                f"`{p.ref}`" for i in report.provider_images for p in i.pushed) or "<br>".join(
                f"`{i.ref}` (not pushed)" for i in report.provider_images)
        status = f"{icon.get(r.status, '')} {r.status}" + (f" (exit {r.exit_code})" if r.exit_code else "")
        lines.append("| " + " | ".join(_cell(x) for x in (r.name, status, canvos, iso, sha, images,
                                                            f"{r.seconds:.0f}s")) + " |")
    # Under the table, why each build failed or did not run ("missing: no record from this shard" from
    # gather, "an earlier variant failed" from build --all): the row alone cannot tell those apart.
    notes = [(r.name, r.error or r.reason) for r in summary.results if r.error or (r.status == "not-run" and r.reason)]
    if notes:
        lines.append("")
        lines.extend(f"- **{_cell(name)}**: {_cell(why)}" for name, why in notes)
    return "\n".join(lines) + "\n"
