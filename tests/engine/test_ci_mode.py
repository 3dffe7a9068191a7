"""CI mode under GitHub Actions: folded steps, one ::error:: per failure, a job summary, no colour codes.

These builds fail at render (a Kubernetes version the checkout does not list), so they need git and the
CanvOS fixture but no Docker daemon; stderr is made to look like a terminal, so colour would show if
CI mode did not turn it off.
"""

from __future__ import annotations

import json
import sys

import pytest

from edgeforge_ext.cli import run
from tests.engine.buildkit import REMOTE_BUILDKIT
from tests.engine.shard_helpers import cli_process


@pytest.fixture
def gha(tmp_path, monkeypatch, capsys):
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    return summary


def check_folding(lines: list[str]) -> list[str]:
    """Every ::group:: is closed before the next opens (GitHub does not nest them); return the titles."""
    titles, open_group = [], None
    for line in lines:
        if line.startswith("::group::"):
            assert open_group is None, f"nested group {line!r} inside {open_group!r}"
            open_group = line[len("::group::"):]
            titles.append(open_group)
        elif line == "::endgroup::":
            assert open_group is not None, "::endgroup:: without a group"
            open_group = None
    assert open_group is None, f"group {open_group!r} never closed"
    return titles


def test_single_build_failure_is_folded_annotated_once_and_summarised(docker_client, canvos_repo, tmp_path, gha,
                                                                     capsys):
    workdir = tmp_path / "w"
    code = run(["--workdir", str(workdir), "build", "--canvos-url", canvos_repo.url, "--ref", "v4.10.0",
                "--k8s-version", "1.99.1", "--custom-tag", "nightly", "--skip", "preflight", "--no-push",
                "--palette-endpoint", "api.spectrocloud.com", "--buildkit-host", REMOTE_BUILDKIT])
    err = capsys.readouterr().err
    assert code == 5, err
    assert "\x1b" not in err  # no colour codes, although stderr claims to be a terminal
    lines = err.splitlines()
    # --skip preflight still checks the container engine (the preflight step's on_skip), folded as preflight.
    assert check_folding(lines) == ["preflight", "checkout", "render"]
    errors = [ln for ln in lines if ln.startswith("::error::")]
    assert len(errors) == 1 and "problem" in errors[0]
    assert any("1.99.1 is not in k8s_version.json" in ln for ln in lines)
    text = gha.read_text()
    assert text.startswith("earlier step\n")  # appended, never overwritten
    assert "### edgeforge-ext build" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| default |"))
    assert "failed (exit 5)" in row
    report = json.loads((workdir / "output" / "edgeforge-report.json").read_text())
    assert report["status"] == "failed"


def write_variants(tmp_path, canvos_url: str):
    config = tmp_path / "edgeforge.toml"
    config.write_text(f"""
[canvos]
url = "{canvos_url}"
ref = "v4.10.0"

[build]
custom_tag = "nightly"
skip = ["preflight"]

[site]
palette_endpoint = "api.spectrocloud.com"

[push]
enabled = false

[[variants]]
name = "old-k3s"
k8s_versions = ["1.98.0"]

[[variants]]
name = "new-k3s"
custom_tag = "newer"
k8s_versions = ["1.99.0"]
""")
    return config


def test_variants_keep_going_report_every_failure(canvos_repo, tmp_path, gha, capsys):
    config = write_variants(tmp_path, canvos_repo.url)
    workdir = tmp_path / "w"
    code = run(["--config", str(config), "--workdir", str(workdir), "build", "--all", "--keep-going"])
    err = capsys.readouterr().err
    assert code == 5, err
    assert "\x1b" not in err
    lines = err.splitlines()
    assert check_folding(lines) == ["inputs old-k3s", "inputs new-k3s"]
    errors = [ln for ln in lines if ln.startswith("::error::")]
    # One annotation per failed variant, and one for the run as a whole.
    assert [e[len("::error::"):].split(":")[0] for e in errors[:2]] == ["old-k3s", "new-k3s"]
    assert len(errors) == 3 and "2 of 2 variant(s) failed" in errors[2]
    table = [ln for ln in lines if ln.startswith(("build ", "old-k3s ", "new-k3s "))]
    assert [ln.split()[:2] for ln in table] == [["build", "status"], ["old-k3s", "failed"], ["new-k3s", "failed"]]
    summary = json.loads((workdir / "output" / "edgeforge-summary.json").read_text())
    assert summary["status"] == "failed"
    assert [(b["variant"], b["status"], b["exit_code"]) for b in summary["builds"]] == [
        ("old-k3s", "failed", 5), ("new-k3s", "failed", 5)]
    assert "1.98.0" in summary["builds"][0]["error"] or "problem" in summary["builds"][0]["error"]
    rows = [ln for ln in gha.read_text().splitlines() if ln.startswith(("| old-k3s", "| new-k3s"))]
    assert len(rows) == 2 and all("failed (exit 5)" in r for r in rows)


def test_without_keep_going_the_rest_is_reported_as_not_run(canvos_repo, tmp_path, gha, capsys):
    config = write_variants(tmp_path, canvos_repo.url)
    workdir = tmp_path / "w"
    code = run(["--config", str(config), "--workdir", str(workdir), "build", "--variant", "old-k3s",
                "--variant", "new-k3s", "--json"])
    captured = capsys.readouterr()
    assert code == 5
    summary = json.loads((workdir / "output" / "edgeforge-summary.json").read_text())
    assert [(b["variant"], b["status"]) for b in summary["builds"]] == [("old-k3s", "failed"),
                                                                         ("new-k3s", "not-run")]
    assert "not-run" in gha.read_text()
    # --json prints the summary on stdout on failure too (machines read stdout whatever happened).
    assert json.loads(captured.out) == summary


def test_unknown_variant_is_a_usage_error(canvos_repo, tmp_path, capsys):
    config = write_variants(tmp_path, canvos_repo.url)
    code = run(["--config", str(config), "--workdir", str(tmp_path / "w"), "build", "--variant", "nope"])
    assert code == 2
    assert "unknown variant 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_outside_github_actions_nothing_is_annotated(docker_client, canvos_repo, tmp_path, monkeypatch, capsys):
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))  # set, but not under Actions
    code = run(["--workdir", str(tmp_path / "w"), "build", "--canvos-url", canvos_repo.url, "--ref", "v4.10.0",
                "--k8s-version", "1.99.1", "--skip", "preflight", "--no-push", "--buildkit-host", REMOTE_BUILDKIT])
    err = capsys.readouterr().err
    assert code == 5
    assert "::" not in err and "==> checkout" in err
    assert not summary.exists()


def test_gather_summarises_each_shard_in_the_job_summary(canvos_repo, tmp_path, gha, monkeypatch, capsys):
    # No Docker anywhere: the plan host plans without one, and the one shard that runs does so on a runner
    # without a daemon (a real failure, exit 6, with its record); the other never reports.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    config = tmp_path / "edgeforge.toml"
    config.write_text(f"""
[canvos]
url = "{canvos_repo.url}"
ref = "v4.10.0"

[build]
k8s_versions = ["1.32.3"]
custom_tag = "nightly"
skip = ["preflight"]

[site]
palette_endpoint = "api.spectrocloud.com"

[push]
enabled = false

[[variants]]
name = "alpha"

[[variants]]
name = "beta"
custom_tag = "beta"
""")
    base = ["--config", str(config)]
    assert run([*base, "--workdir", str(tmp_path / "w"), "plan", "--all", "--shards", "--format", "json"]) == 0
    (tmp_path / "shards.json").write_text(capsys.readouterr().out)
    out = tmp_path / "out"
    shard = cli_process([*base, "--workdir", str(tmp_path / "runner-0"), "build", "--shard", "alpha"],
                        EDGEFORGE_OUTPUT_DIR=str(out))
    _out, err = shard.communicate(timeout=120)
    assert shard.returncode == 6, err
    gather = [*base, "gather", str(out), "--plan", str(tmp_path / "shards.json"), "--output", str(tmp_path / "g")]

    # GITHUB_STEP_SUMMARY set, but not under Actions: the file is left alone.
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert run(gather) == 6
    capsys.readouterr()
    assert gha.read_text() == "earlier step\n"
    assert (tmp_path / "g" / "edgeforge-summary.json").exists()  # gather itself did run

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert run(gather) == 6  # the failed shard's own exit code
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("::error::")]
    assert len(errors) == 3 and errors[0].startswith("::error::shard alpha: cannot reach the Docker daemon")
    assert errors[1] == "::error::shard beta: missing: no record from this shard"
    assert "2 of 2 shard(s) did not succeed; failed: alpha (exit 6); missing: beta" in errors[2]
    text = gha.read_text()
    assert text.startswith("earlier step\n### edgeforge-ext build\n")  # appended, never overwritten
    lines = text.splitlines()
    assert "| build | status | CanvOS | ISO | sha256 | provider images | time |" in lines
    rows = [ln for ln in lines if ln.startswith(("| alpha ", "| beta "))]
    assert [[c.strip() for c in r.strip("|").split("|")][:2] for r in rows] == [
        ["alpha", "❌ failed (exit 6)"], ["beta", "⏭️ not-run"]]  # the configuration's order
    failures = [ln for ln in lines if ln.startswith("- ")]  # why each did not succeed, under the table
    assert len(failures) == 2 and failures[0].startswith("- **alpha**: cannot reach the Docker daemon"), failures
    assert failures[1] == "- **beta**: missing: no record from this shard"  # not-run alone does not say why
