"""Shards end to end (issue 16): a generated GitHub matrix run locally, each entry its own
`edgeforge-ext build --shard` process, all at once, against the real daemon and the stand-in Earthly;
`gather` then writes the summary `build --all` writes. `--changed-since` leaves out exactly the shards
that did not change. Real git, real daemon; pushes off (the isolation test covers pushing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgeforge_ext.cli import run
from tests.engine.shard_helpers import cli_process, remove_built_images, tag_with_knobs, write_config

VARIANTS = """
[[variants]]
name = "alpha"
custom_tag = "alpha"

[[variants]]
name = "beta"
custom_tag = "beta"
k8s_distribution = "rke2"
k8s_versions = ["1.31.5"]

[[variants]]
name = "gamma"
custom_tag = "gamma"
target = "provider-images"
"""

@pytest.fixture(autouse=True)
def _no_images_left(docker_client, tmp_path):
    yield
    remove_built_images(docker_client, tmp_path)


# What differs between two runs of the same builds by nature: times, where they ran, image ids, and the
# ISO's bytes (xorriso stamps the time). Everything else must be the same.
_VOLATILE = {"seconds", "output_dir", "log", "path", "image_id", "user_data_path", "sha256"}


def normalized(value: Any, root: Path) -> Any:
    if isinstance(value, dict):
        return {k: normalized(v, root) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [normalized(v, root) for v in value]
    if isinstance(value, str) and value.startswith(str(root)):
        return "<a path of this run>"
    return value


def run_matrix(matrix: dict, config: Path, out: Path, tmp_path: Path) -> list[tuple[str, int, str]]:
    """Each entry as the matrix job would run it: its own process and work directory (its own runner),
    all at once, into one shared output directory."""
    procs = [(entry["shard"], cli_process(["--config", str(config), "--workdir", str(tmp_path / f"runner-{i}"),
                                           "build", "--shard", entry["shard"]], EDGEFORGE_OUTPUT_DIR=str(out)))
             for i, entry in enumerate(matrix["include"])]
    results = []
    for shard, proc in procs:
        _out, err = proc.communicate(timeout=240)
        results.append((shard, proc.returncode, err))
    return results


def test_a_generated_matrix_run_locally_gathers_to_the_summary_build_all_writes(
    docker_client, standin_earthly_image, canvos_repo, tmp_path, monkeypatch, capsys
):
    tag_with_knobs(canvos_repo)
    config = write_config(tmp_path / "conf" / "edgeforge.toml", canvos_repo.url, standin_earthly_image,
                          variants=VARIANTS)
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", "TestToken-9f8e7d6c5b4a")
    for name, value in (("CPUS", "1"), ("DISK_GB", "1"), ("MEMORY_GB", "1")):
        monkeypatch.setenv(f"EDGEFORGE_PREFLIGHT_MIN_{name}", value)
    base = ["--config", str(config)]

    # The reference: one host builds them all.
    all_out = tmp_path / "all-output"
    assert run([*base, "--workdir", str(tmp_path / "w-all"), "build", "--all", "--output", str(all_out)]) == 0, \
        capsys.readouterr().err[-3000:]
    capsys.readouterr()
    expected = json.loads((all_out / "edgeforge-summary.json").read_text())

    # The plan job: a matrix, ids and fingerprints.
    plan_args = [*base, "--workdir", str(tmp_path / "w-plan"), "plan", "--all", "--shards"]
    assert run([*plan_args, "--format", "github-matrix"]) == 0
    matrix = json.loads(capsys.readouterr().out)
    assert sorted(e["shard"] for e in matrix["include"]) == ["alpha", "beta", "gamma"]
    assert all(e["fingerprint"].startswith("sha256:") for e in matrix["include"])
    (tmp_path / "matrix.json").write_text(json.dumps(matrix))

    # The matrix jobs, in parallel, then the gather job.
    out = tmp_path / "shared-output"
    for shard, code, err in run_matrix(matrix, config, out, tmp_path):
        assert code == 0, f"{shard}: {err[-3000:]}"
    gathered_out = tmp_path / "gathered"
    assert run([*base, "gather", str(out), "--plan", str(tmp_path / "matrix.json"), "--output",
                str(gathered_out)]) == 0, capsys.readouterr().err[-3000:]
    gathered = json.loads((gathered_out / "edgeforge-summary.json").read_text())
    assert [b["variant"] for b in gathered["builds"]] == ["alpha", "beta", "gamma"]  # the config's order
    assert normalized(gathered, tmp_path) == normalized(expected, tmp_path)
    table = capsys.readouterr().err
    assert all(any(line.startswith(name + " ") and "success" in line for line in table.splitlines())
               for name in ("alpha", "beta", "gamma"))
    # Each shard built what its variant builds, and says with which inputs.
    for entry in matrix["include"]:
        record = json.loads((out / entry["shard"] / "edgeforge-shard.json").read_text())
        assert record["shard"]["fingerprint"] == entry["fingerprint"]
        assert (out / entry["shard"] / "latest" / "edgeforge-report.json").is_file()
    assert (out / "alpha" / "latest" / "palette-edge-installer.iso").is_file()
    assert not (out / "gamma" / "latest" / "palette-edge-installer.iso").exists()  # provider images only

    # The inputs as built, pinned (the lock's entries are the shard ids).
    assert run([*base, "--workdir", str(tmp_path / "w-plan"), "lock", "--all"]) == 0
    capsys.readouterr()

    # Next night: beta's inputs change; --changed-since leaves out exactly alpha and gamma.
    config.write_text(config.read_text().replace('custom_tag = "beta"', 'custom_tag = "beta2"'))
    assert run([*plan_args, "--changed-since", str(out), "--format", "json"]) == 0
    captured = capsys.readouterr()
    shard_plan = json.loads(captured.out)
    assert [s["id"] for s in shard_plan["shards"]] == ["beta"]
    assert sorted(o["id"] for o in shard_plan["left_out"]) == ["alpha", "gamma"]
    assert "beta: to build (the rendered user-data, .arg, targets or build args changed)" in captured.err
    # The same against edgeforge.lock, the outputs looked for in the output directory.
    lock = config.parent / "edgeforge.lock"
    assert run([*plan_args, "--changed-since", str(lock), "--output", str(out), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert [s["id"] for s in json.loads(captured.out)["shards"]] == ["beta"]
    assert "beta: to build (its inputs differ from edgeforge.lock)" in captured.err
    # ... and a shard whose outputs are gone is built again.
    (out / "alpha" / "latest" / "palette-edge-installer.iso").unlink()
    assert run([*plan_args, "--changed-since", str(out), "--format", "json"]) == 0
    assert sorted(s["id"] for s in json.loads(capsys.readouterr().out)["shards"]) == ["alpha", "beta"]


def test_gather_names_failed_and_missing_shards(docker_client, standin_earthly_image, canvos_repo, tmp_path,
                                                monkeypatch, capsys):
    tag_with_knobs(canvos_repo)
    variants = VARIANTS.replace('custom_tag = "beta"', 'custom_tag = "beta"\nextra_args = { STANDIN_FAIL = "1" }')
    config = write_config(tmp_path / "conf" / "edgeforge.toml", canvos_repo.url, standin_earthly_image,
                          variants=variants)
    base = ["--config", str(config)]
    assert run([*base, "--workdir", str(tmp_path / "w"), "plan", "--all", "--shards", "--format", "json"]) == 0
    (tmp_path / "shards.json").write_text(capsys.readouterr().out)
    out = tmp_path / "out"
    # alpha and beta run; gamma's runner never reports.
    matrix = {"include": [{"shard": "alpha"}, {"shard": "beta"}]}
    results = {shard: code for shard, code, _err in run_matrix(matrix, config, out, tmp_path)}
    assert results == {"alpha": 0, "beta": 7}
    code = run([*base, "gather", str(out), "--plan", str(tmp_path / "shards.json"), "--output", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 7  # the failed shard's own exit code
    assert "failed: beta (exit 7)" in captured.err and "missing: gamma" in captured.err
    summary = json.loads((out / "edgeforge-summary.json").read_text())
    assert json.loads(captured.out) == summary  # --json prints it on failure too
    assert [(b["variant"], b["status"]) for b in summary["builds"]] == [
        ("alpha", "success"), ("beta", "failed"), ("gamma", "not-run")]
    assert summary["status"] == "failed"
