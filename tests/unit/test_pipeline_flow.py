"""The build driver with stand-in steps (the real steps need Docker and git: tests/engine runs those):
order, --skip, failures, interrupts, filesystem errors, bugs, optional steps, and cleanups unwound in
reverse whatever happened. What a user checks: the report on disk and the exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgeforge_ext.build.pipeline import Pipeline
from edgeforge_ext.build.state import Build, BuildOptions
from edgeforge_ext.build.steps import STEPS, Step
from edgeforge_ext.errors import ArtifactError, BuildFailed, EdgeforgeError, Interrupted
from edgeforge_ext.settings import STEPS as STEP_NAMES
from tests.configs import make_config


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def step(self, name: str, fail: BaseException | None = None, outcome: str | None = None) -> Any:
        def run(build: Build) -> str | None:
            self.calls.append(name)
            if fail is not None:
                raise fail
            return outcome
        return run

    def cleanup(self, name: str, fail: BaseException | None = None) -> Any:
        def clean(build: Build) -> None:
            self.calls.append(f"cleanup {name}")
            if fail is not None:
                raise fail
        return clean


def _config(tmp_path: Path, **flags: Any) -> Any:
    return make_config(tmp_path, base={"build.k8s_versions": ["1.32.3"], "output.dir": str(tmp_path / "out")},
                       **flags)


def _report(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "out" / "edgeforge-report.json").read_text())
    return data


def test_the_real_steps_are_the_ones_skip_names():
    optional = ("report", "boot-test", "attest")
    assert [s.name for s in STEPS if s.when is None] == [n for n in STEP_NAMES if n not in optional]
    assert [s.name for s in STEPS] == [n for n in STEP_NAMES if n != "report"]


def test_every_step_runs_in_order_and_cleanups_unwind_in_reverse(tmp_path):
    r = Recorder()
    steps = [Step("a", r.step("a"), cleanup=r.cleanup("a")), Step("b", r.step("b")),
             Step("c", r.step("c"), cleanup=r.cleanup("c"))]
    report = Pipeline(_config(tmp_path), BuildOptions(), steps).run()
    assert r.calls == ["a", "b", "c", "cleanup c", "cleanup a"]
    assert report.status == "success"
    on_disk = _report(tmp_path)
    assert [(s["name"], s["status"]) for s in on_disk["steps"]] == [("a", "ok"), ("b", "ok"), ("c", "ok"),
                                                                     ("report", "ok")]


def test_skip_records_the_step_and_runs_only_what_must_still_run(tmp_path):
    r = Recorder()
    steps = [Step("validate", r.step("validate")), Step("render", r.step("render"), on_skip=r.step("render reduced")),
             Step("collect", r.step("collect"))]
    Pipeline(_config(tmp_path, build__skip=["validate", "render"]), BuildOptions(), steps).run()
    assert r.calls == ["render reduced", "collect"]
    statuses = [(s["name"], s["status"]) for s in _report(tmp_path)["steps"]]
    assert statuses == [("validate", "skipped"), ("render", "skipped"), ("collect", "ok"), ("report", "ok")]
    assert _report(tmp_path)["skipped"] == ["validate", "render"]
    steps[2] = Step("collect", r.step("collect", outcome="skipped"))  # a step may decide to do nothing
    Pipeline(_config(tmp_path), BuildOptions(), steps).run()
    assert ("collect", "skipped") in [(s["name"], s["status"]) for s in _report(tmp_path)["steps"]]


def test_a_failure_stops_later_steps_unwinds_what_started_and_reports_failed(tmp_path):
    r = Recorder()
    steps = [Step("a", r.step("a"), cleanup=r.cleanup("a")),
             Step("b", r.step("b", fail=BuildFailed("earthly +iso failed")), cleanup=r.cleanup("b")),
             Step("c", r.step("c"), cleanup=r.cleanup("c"))]
    with pytest.raises(BuildFailed) as err:
        Pipeline(_config(tmp_path), BuildOptions(), steps).run()
    assert err.value.exit_code == 7
    assert r.calls == ["a", "b", "cleanup b", "cleanup a"]
    report = _report(tmp_path)
    assert report["status"] == "failed" and report["error"] == "earthly +iso failed"
    assert [(s["name"], s["status"]) for s in report["steps"]] == [("a", "ok"), ("b", "failed"), ("report", "ok")]


def test_a_failing_cleanup_never_hides_the_builds_error_and_fails_a_good_build(tmp_path):
    r = Recorder()
    bad_cleanup = r.cleanup("a", fail=ArtifactError("cannot remove user-data"))
    steps = [Step("a", r.step("a"), cleanup=bad_cleanup), Step("b", r.step("b", fail=BuildFailed("boom")))]
    with pytest.raises(BuildFailed):
        Pipeline(_config(tmp_path), BuildOptions(), steps).run()
    with pytest.raises(ArtifactError, match="cannot remove user-data"):
        Pipeline(_config(tmp_path), BuildOptions(), steps[:1]).run()
    assert _report(tmp_path)["status"] == "failed"


def test_ctrl_c_or_sigterm_is_interrupted_130_and_still_cleans_up(tmp_path):
    r = Recorder()
    steps = [Step("a", r.step("a"), cleanup=r.cleanup("a")), Step("b", r.step("b", fail=KeyboardInterrupt()))]
    with pytest.raises(Interrupted) as err:
        Pipeline(_config(tmp_path), BuildOptions(), steps).run()
    assert err.value.exit_code == 130 and r.calls == ["a", "b", "cleanup a"]
    assert _report(tmp_path)["status"] == "interrupted"


def test_a_filesystem_error_is_the_steps_exit_code_naming_the_path(tmp_path):
    full = OSError(28, "No space left on device", str(tmp_path / "out" / "x.iso"))
    steps = [Step("collect", Recorder().step("collect", fail=full))]
    with pytest.raises(EdgeforgeError) as err:
        Pipeline(_config(tmp_path), BuildOptions(), steps).run()
    assert err.value.exit_code == 8
    assert "No space left on device" in err.value.message and "x.iso" in err.value.message
    assert _report(tmp_path)["status"] == "failed"


def test_a_bug_is_reraised_and_the_report_says_failed(tmp_path):
    steps = [Step("a", Recorder().step("a", fail=ValueError("oops")))]
    with pytest.raises(ValueError):
        Pipeline(_config(tmp_path), BuildOptions(), steps).run()
    report = _report(tmp_path)
    assert report["status"] == "failed" and report["error"] == "internal error: ValueError: oops"


def test_an_optional_step_belongs_to_the_build_only_when_asked(tmp_path):
    r = Recorder()
    steps = [Step("a", r.step("a")), Step("boot-test", r.step("boot"), when=lambda b: b.config.build.boot_test)]
    Pipeline(_config(tmp_path), BuildOptions(), steps).run()
    assert r.calls == ["a"] and "boot-test" not in [s["name"] for s in _report(tmp_path)["steps"]]
    Pipeline(_config(tmp_path, build__boot_test=True), BuildOptions(), steps).run()
    assert r.calls == ["a", "a", "boot"]
