"""`plan --shards` and `build --shard` as a user types them: ids, the lock's fingerprints, --shard-by
k8s-version, longest first, --from, the shard a Kubernetes pod picks. Real git (the CanvOS fixture); no
build runs here (tests/engine/test_shards.py runs them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeforge_ext import edgeforge_lock
from edgeforge_ext.cli import run
from edgeforge_ext.config import load_config
from edgeforge_ext.shards.model import read_plan
from edgeforge_ext.shards.planner import find_shard
from edgeforge_ext.shards.runner import ShardRun, chosen

VARIANTS = """
[[variants]]
name = "alpha"
custom_tag = "alpha"
k8s_versions = ["1.31.6", "1.32.3"]

[[variants]]
name = "beta"
custom_tag = "beta"
k8s_distribution = "rke2"
k8s_versions = ["1.31.5"]
"""


@pytest.fixture
def conf(canvos_repo, tmp_path, monkeypatch) -> Path:
    # A plan host without the Earthly image (or a daemon) plans all the same: its id is simply unknown.
    monkeypatch.setattr(edgeforge_lock, "earthly_identity", lambda image: (None, ()))
    path = tmp_path / "edgeforge.toml"
    path.write_text(f'[canvos]\nurl = "{canvos_repo.url}"\nref = "v4.10.0"\n[build]\nk8s_versions = ["1.32.3"]\n'
                    f'[site]\npalette_endpoint = "api.spectrocloud.com"\nproject_name = "Default"\n{VARIANTS}')
    return path


def plan_json(conf: Path, tmp_path: Path, capsys, *extra: str) -> dict:
    code = run(["--config", str(conf), "--workdir", str(tmp_path / "w"), "plan", "--all", "--shards", *extra,
                "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return dict(json.loads(captured.out))


def test_shards_are_the_variants_with_the_fingerprints_the_lock_records(conf, tmp_path, capsys):
    plan = plan_json(conf, tmp_path, capsys)
    assert [(s["id"], s["variant"], s["k8s_version"]) for s in plan["shards"]] == [
        ("alpha", "alpha", None), ("beta", "beta", None)]
    config = load_config(conf, env={}, flags={"workdir": str(tmp_path / "w")}, cwd=tmp_path)
    for shard in plan["shards"]:
        locked = edgeforge_lock.resolve(config.with_variant(shard["variant"])).inputs
        assert shard["fingerprint"] == locked.fingerprint
        assert shard["canvos_sha"] == locked.canvos_sha
    again = plan_json(conf, tmp_path, capsys)
    assert again["shards"] == plan["shards"]  # stable: the same inputs, the same ids and fingerprints
    assert again["created"] > plan["created"]


def test_shard_by_k8s_version_builds_the_iso_once(conf, tmp_path, capsys):
    plan = plan_json(conf, tmp_path, capsys, "--shard-by", "k8s-version")
    assert [s["id"] for s in plan["shards"]] == ["alpha-1.31.6", "alpha-1.32.3", "beta-1.31.5"]
    config = load_config(conf, env={}, flags={"workdir": str(tmp_path / "w")}, cwd=tmp_path)
    first, second = find_shard(config, "alpha-1.31.6"), find_shard(config, "alpha-1.32.3")
    assert first.config.build.k8s_versions == ("1.31.6",) and first.config.build.target == "all"
    assert second.config.build.k8s_versions == ("1.32.3",) and second.config.build.target == "provider-images"
    assert second.config.build.custom_tag == "alpha"  # the variant's own settings stay
    assert len({s["fingerprint"] for s in plan["shards"]}) == 3
    # A shard planned alone sorts where the plan put it.
    assert [find_shard(config, s["id"]).shard.order for s in plan["shards"]] == [s["order"] for s in plan["shards"]]


def test_longest_first_from_earlier_durations(conf, tmp_path, capsys):
    earlier = tmp_path / "w" / "output"
    earlier.mkdir(parents=True)
    (earlier / "edgeforge-summary.json").write_text(json.dumps({"status": "success", "builds": [
        {"variant": "alpha", "status": "success", "seconds": 300.0},
        {"variant": "beta", "status": "success", "seconds": 2400.0}]}))
    plan = plan_json(conf, tmp_path, capsys)
    assert [(s["id"], s["estimate_seconds"]) for s in plan["shards"]] == [("beta", 2400), ("alpha", 300)]
    # A shard never built counts as the longest known (here another build's 1000 s): not left to the end.
    (earlier / "edgeforge-summary.json").write_text(json.dumps({"status": "success", "builds": [
        {"variant": "alpha", "status": "success", "seconds": 300.0},
        {"variant": "retired", "status": "success", "seconds": 1000.0}]}))
    plan = plan_json(conf, tmp_path, capsys)
    assert [(s["id"], s["estimate_seconds"]) for s in plan["shards"]] == [("beta", None), ("alpha", 300)]


def test_from_a_saved_list_and_the_entry_an_indexed_job_pod_builds(conf, tmp_path, capsys):
    plan = plan_json(conf, tmp_path, capsys)
    saved = tmp_path / "shards.json"
    saved.write_text(json.dumps(plan))
    assert run(["--config", str(conf), "plan", "--from", str(saved), "--format", "github-matrix"]) == 0
    matrix = json.loads(capsys.readouterr().out)
    assert [e["shard"] for e in matrix["include"]] == ["alpha", "beta"]
    assert [(s.id, s.fingerprint) for s in read_plan(saved).shards] == [(s["id"], s["fingerprint"])
                                                                         for s in plan["shards"]]
    assert chosen(ShardRun(shard_list=saved), env={"JOB_COMPLETION_INDEX": "1"})[0] == "beta"
    assert chosen(ShardRun(shard_id="alpha", shard_list=saved))[0] == "alpha"
    with pytest.raises(Exception, match="lists 2 shard"):
        chosen(ShardRun(shard_list=saved), env={"JOB_COMPLETION_INDEX": "2"})


def test_build_shard_refuses_an_unknown_id_before_anything_runs(conf, tmp_path, capsys):
    workdir = tmp_path / "w"
    assert run(["--config", str(conf), "--workdir", str(workdir), "build", "--shard", "gamma"]) == 2
    err = capsys.readouterr().err
    assert "no shard 'gamma'" in err and "alpha, beta" in err
    assert run(["--config", str(conf), "--workdir", str(workdir), "build", "--shard", "alpha", "--all"]) == 2
    assert not workdir.exists()


def test_lock_by_k8s_version_pins_each_shard(conf, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(edgeforge_lock, "earthly_identity", lambda image: ("sha256:" + "e" * 64, ()))
    plan = plan_json(conf, tmp_path, capsys, "--shard-by", "k8s-version")
    assert run(["--config", str(conf), "--workdir", str(tmp_path / "w"), "lock", "--all", "--shard-by",
                "k8s-version", "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert {name: b["fingerprint"] for name, b in written["builds"].items()} == {
        s["id"]: s["fingerprint"] for s in plan["shards"]}


def test_k8s_job_refuses_more_shards_than_an_indexed_job_allows_and_prints_nothing(conf, tmp_path, capsys):
    # The shard count of a k8s-job comes from the shard list: `plan --shards` resolves one per variant (or
    # per Kubernetes version), `--from FILE` takes a saved list as it is. A list one past the limit goes in
    # by --from (resolving 100001 variants would take hours).
    from edgeforge_ext.shards.kubernetes import MAX_COMPLETIONS

    workdir = tmp_path / "w"

    def k8s_job_from_list_of(count: int) -> tuple[int, str, str]:
        saved = tmp_path / "shards.json"
        saved.write_text(json.dumps({"format": 1, "created": None, "shard_by": "variant",
                                     "shards": [{"id": f"s{i}", "order": i} for i in range(count)]}))
        code = run(["--config", str(conf), "--workdir", str(workdir), "plan", "--from", str(saved),
                    "--format", "k8s-job"])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, err = k8s_job_from_list_of(MAX_COMPLETIONS + 1)
    assert code == 2, err  # a usage error (errors.UsageError, README: exit codes)
    assert "error: 100001 shards, but an Indexed Job has at most 100000 completions" in err
    assert out == ""  # no manifest, not even the header: `> job.yaml` holds nothing to apply
    assert not workdir.exists()
    # At the limit itself the count passes; such a list is then refused by the ConfigMap's 1 MiB instead.
    code, out, err = k8s_job_from_list_of(MAX_COMPLETIONS)
    assert code == 2 and "a ConfigMap holds at most 1048576" in err and "completions" not in err, err
    assert out == ""
