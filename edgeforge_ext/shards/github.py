"""`--format github-matrix`: the JSON a workflow feeds to `strategy.matrix` (`fromJSON(...)`): one job per
shard, each running `edgeforge-ext build --shard ${{ matrix.shard }}`."""

from __future__ import annotations

from typing import Any

from edgeforge_ext.errors import UsageError
from edgeforge_ext.shards.model import ShardPlan, matrix_entry

# "A matrix can generate a maximum of 256 jobs per workflow run" (GitHub Actions documentation).
MAX_JOBS = 256


def github_matrix(plan: ShardPlan) -> dict[str, Any]:
    """`{"include": [...]}`, longest shard first (GitHub starts jobs in matrix order). With no shard to
    build it is empty: the sample workflow skips its build job then (GitHub refuses an empty matrix)."""
    if len(plan.shards) > MAX_JOBS:
        raise UsageError(f"{len(plan.shards)} shards, but a GitHub Actions matrix holds at most {MAX_JOBS} jobs per "
                         "workflow run", hint="build fewer shards per run: --variant NAME (repeatable), "
                         "--changed-since, or --shard-by variant instead of k8s-version")
    return {"include": [matrix_entry(s) for s in plan.shards]}
