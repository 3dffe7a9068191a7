"""The build flow: preflight → checkout → render → validate → registry-check → earthly → collect → push → report.

`Pipeline.run` drives the steps of steps.STEPS in order (each named, timed, skippable with `--skip`),
stacks each step's cleanup and unwinds them in reverse on any exit (as kas's macro of setup and
cleanup steps), and always ends with the report. Ctrl-C and SIGTERM become `Interrupted` (exit 130).
What the build shows goes through the reporter it is given (events.Reporter); the core imports no view.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from edgeforge_ext import console
from edgeforge_ext.build.plan import check_config
from edgeforge_ext.build.report import Report, StepRecord, write_os_pack, write_report
from edgeforge_ext.build.state import Build, BuildOptions
from edgeforge_ext.build.steps import STEPS, Step
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
from edgeforge_ext.secrets import Redactor
from edgeforge_ext.signals import sigterm_as_interrupt

# The exit code of a filesystem failure (disk full, permission denied, read-only) in each step: the
# step's own error class, with a message naming the path.
_STEP_ERRORS: dict[str, type[EdgeforgeError]] = {
    "preflight": PreflightError, "checkout": CheckoutError, "render": RenderError, "validate": RenderError,
    "registry-check": RegistryError, "earthly": BuildFailed, "collect": ArtifactError, "push": RegistryError,
    "report": ArtifactError, "boot-test": ArtifactError, "attest": ArtifactError,
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


class Pipeline:
    def __init__(self, config: Config, options: BuildOptions | None = None,
                 steps: Sequence[Step] = STEPS) -> None:
        options = options or BuildOptions()
        self.config = config
        self.steps = tuple(steps)  # the real ones; tests drive the flow with their own
        self.build = Build(config, options, options.output_dir or config.output_dir, uuid.uuid4().hex[:8],
                           redactor=Redactor(config.secrets))

    @property
    def output_dir(self) -> Path:
        return self.build.output_dir

    @property
    def state(self) -> Build:  # what nightly and the tests look at
        return self.build

    def run(self) -> Report:
        from edgeforge_ext.workdir_lock import workdir_lock

        build = self.build
        report = build.report
        report.variant = self.config.variant
        report.skipped = list(build.skip)
        check_config(self.config)
        ensure_dir(build.output_dir, "output directory", "choose another --output (output.dir)")
        cleanups: list[tuple[str, Callable[[Build], None]]] = []
        try:
            with sigterm_as_interrupt(), workdir_lock(self.config.workdir, wait=build.options.wait, what="build"):
                try:
                    for step in self.steps:
                        if step.when is not None and not step.when(build):
                            continue  # not part of this build at all (boot-test without --boot-test)
                        if step.name == "registry-check" and build.options.before_earthly is not None:
                            build.options.before_earthly(build)
                        if step.cleanup is not None:
                            cleanups.append((step.name, step.cleanup))
                        self._run_step(step)
                finally:
                    self._unwind(cleanups)
            report.status = "success" if not report.error else report.status
        except KeyboardInterrupt as exc:
            report.status = "interrupted"
            report.error = "interrupted"
            raise Interrupted("interrupted: the Earthly container (if any) was stopped and removed") from exc
        except EdgeforgeError as exc:
            if report.status == "running":
                report.status = "failed"
            report.error = build.redactor(exc.message)
            raise
        except Exception as exc:  # a bug: the report still says the build failed, not "running"
            report.status = "failed"
            report.error = build.redactor(f"internal error: {type(exc).__name__}: {exc}")
            raise
        finally:
            self._finish()
        return report

    def _run_step(self, step: Step) -> None:
        """Run one step, timed and folded; a step returns "skipped" when it decided to do nothing."""
        build = self.build
        record = StepRecord(step.name, "not-run")
        build.report.steps.append(record)
        skipped = step.name in build.skip
        action = step.on_skip if skipped else step.run
        if action is None:
            record.status = "skipped"
            console.note(f"skipping {step.name} (--skip {step.name})")
            return
        start = time.monotonic()
        with console.group(step.name):
            try:
                with filesystem_errors(step.name):
                    outcome = action(build)
                skipped = skipped or outcome == "skipped"
                record.status = "skipped" if skipped else "ok"
                if skipped and step.name not in build.report.skipped:
                    build.report.skipped.append(step.name)
            except BaseException:
                record.status = "failed"
                raise
            finally:
                record.seconds = time.monotonic() - start
        console.note(f"{step.name}: {record.status} in {record.seconds:.1f}s")

    def _unwind(self, cleanups: list[tuple[str, Callable[[Build], None]]]) -> None:
        """Each started step's cleanup, last first, whatever happened; a failing cleanup is said, and
        raised only when nothing else is (it must not hide why the build stopped)."""
        failing = sys.exc_info()[0] is not None
        error: EdgeforgeError | None = None
        for name, cleanup in reversed(cleanups):
            try:
                with filesystem_errors(name):
                    cleanup(self.build)
            except EdgeforgeError as exc:
                console.warn(f"{name} cleanup: {exc.message}")
                error = error or exc
        if error is not None and not failing:
            raise error

    def _finish(self) -> None:
        """The report step: runs whatever happened. A report that cannot be written (disk full) is an
        error of its own only when the build otherwise succeeded; it never hides the build's error."""
        failing = sys.exc_info()[0] is not None  # called from `finally`: is an error on its way out?
        build = self.build
        report = build.report
        record = StepRecord("report", "ok")
        report.steps.append(record)
        try:
            with filesystem_errors("report"):
                if build.plan is not None:
                    report.os_pack = dict(build.plan.os_pack)
                    report.warnings = list(dict.fromkeys([*report.warnings, *build.plan.warnings]))
                    write_os_pack(build.plan.os_pack_text, build.output_dir)
                write_report(report, build.output_dir)
        except EdgeforgeError as exc:
            record.status = "failed"
            if failing:
                console.warn(exc.message)
                return
            raise

