"""`gather` from records alone (no build): the order, up-to-date shards, a stale record of an earlier run,
and what it says when it finds nothing."""

from __future__ import annotations

import json
import time

import pytest

from edgeforge_ext.errors import UsageError
from edgeforge_ext.shards.gather import ShardsFailed, gather
from edgeforge_ext.shards.model import LeftOut, Shard, ShardPlan
from edgeforge_ext.shards.record import write_record


def record(root, shard: Shard, status: str = "success", exit_code: int = 0) -> None:
    write_record(root / shard.id, shard.as_json(), {"variant": shard.id, "status": status, "exit_code": exit_code,
                                                    "seconds": 12.0, "output_dir": None, "reason": "",
                                                    "error": "boom" if exit_code else None, "details": [],
                                                    "report": None})


def test_a_record_older_than_the_plan_is_an_earlier_runs(tmp_path):
    alpha, beta, gamma = (Shard(n, i, n, None) for i, n in enumerate(("alpha", "beta", "gamma")))
    out = tmp_path / "out"
    record(out, beta)  # last night's beta, still on the shared storage
    time.sleep(0.01)
    plan = ShardPlan("variant", (beta, alpha), (LeftOut(gamma, "unchanged since 20261129-021700-3d2b82ee"),),
                     created=time.time())
    (tmp_path / "shards.json").write_text(json.dumps(plan.as_json()))
    record(out, alpha)
    with pytest.raises(ShardsFailed) as failed:
        gather([out], tmp_path / "summary", tmp_path / "shards.json")
    assert "missing: beta" in failed.value.message and failed.value.exit_code == 8
    summary = json.loads((tmp_path / "summary" / "edgeforge-summary.json").read_text())
    assert [(b["variant"], b["status"]) for b in summary["builds"]] == [
        ("alpha", "success"), ("beta", "not-run"), ("gamma", "up-to-date")]  # the configuration's order
    assert "earlier run" in summary["builds"][1]["reason"]
    # Beta reports tonight: all well.
    record(out, beta)
    assert gather([out], tmp_path / "summary", tmp_path / "shards.json").status == "success"


def test_nothing_to_gather_says_where_it_looked(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no shard records"):
        gather([tmp_path / "empty"], tmp_path / "summary")
    with pytest.raises(UsageError, match="no such directory"):
        gather([tmp_path / "nowhere"], tmp_path / "summary")
