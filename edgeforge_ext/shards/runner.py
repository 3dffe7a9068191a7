"""`build --shard ID`: exactly one shard of the configuration, as an ordinary dated build into
`OUTPUT/<id>/`, then its record for `gather` (also when it failed).

The id comes from the matrix entry (GitHub Actions, Argo) or, with `--shard-list FILE`, from the entry
at `$JOB_COMPLETION_INDEX` of the list a Kubernetes Indexed Job mounts from its ConfigMap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgeforge_ext import console
from edgeforge_ext.build.state import BuildOptions
from edgeforge_ext.config import Config
from edgeforge_ext.errors import UsageError
from edgeforge_ext.shards.model import Shard

if TYPE_CHECKING:
    from edgeforge_ext.build.report import Report

INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by Kubernetes in each pod of an Indexed Job


@dataclass(frozen=True)
class ShardRun:
    shard_id: str | None = None
    shard_list: Path | None = None
    index: int | None = None  # the entry of shard_list; default $JOB_COMPLETION_INDEX
    locked: bool = False
    keep_last: int | None = None


def chosen(run: ShardRun, env: dict[str, str] | None = None) -> tuple[str, Shard | None]:
    """(the shard id, the shard as the plan listed it, when a list was given)."""
    from edgeforge_ext.shards.model import read_plan

    if run.shard_list is None:
        if not run.shard_id:
            raise UsageError("--shard ID (or --shard-list FILE in a Kubernetes Indexed Job)")
        return run.shard_id, None
    plan = read_plan(run.shard_list)
    if run.shard_id:
        return run.shard_id, plan.find(run.shard_id)
    environ = os.environ if env is None else env
    raw = str(run.index) if run.index is not None else environ.get(INDEX_ENV, "")
    if not raw.isdigit():
        raise UsageError(f"--shard-list needs the entry to build: ${INDEX_ENV} (set in an Indexed Job) or "
                         "--shard ID")
    index = int(raw)
    if index >= len(plan.shards):
        raise UsageError(f"{INDEX_ENV}={index}, but {run.shard_list} lists {len(plan.shards)} shard(s)")
    return plan.shards[index].id, plan.shards[index]


def run_shard(config: Config, run: ShardRun, build: BuildOptions) -> Report | None:
    """Build the shard; write OUTPUT/<id>/edgeforge-shard.json; its report, or the build's error."""
    from dataclasses import replace

    from edgeforge_ext.nightly import NightlyOptions, Planned, raise_for, read_inputs, run_planned
    from edgeforge_ext.outputs import variant_root
    from edgeforge_ext.shards.planner import find_shard
    from edgeforge_ext.shards.record import write_record

    shard_id, listed = chosen(run)
    planned = find_shard(config, shard_id)
    shard = replace(planned.shard, order=listed.order) if listed is not None else planned.shard
    console.info(f"shard {shard.id}" + (f" (Kubernetes {shard.k8s_version})" if shard.k8s_version else ""))
    options = NightlyOptions(sharded=True, locked=run.locked, keep_last=run.keep_last)
    summary, error = run_planned(config, [Planned(shard.id, planned.config)], options, build, summary_file=False)
    result = summary.results[0]
    recorded = read_inputs(result.output_dir) if result.output_dir is not None else None
    if recorded is not None:
        inputs = recorded[0]
        shard = replace(shard, fingerprint=inputs.fingerprint, canvos_sha=inputs.canvos_sha,
                        earthly_image=inputs.earthly_image, earthly_id=inputs.earthly_id)
        if listed is not None and listed.fingerprint and listed.fingerprint != inputs.fingerprint:
            console.warn(f"shard {shard.id}: its inputs differ from the plan's (fingerprint {listed.fingerprint[:19]}… "
                         f"planned, {inputs.fingerprint[:19]}… built): the configuration changed since the plan")
    path = write_record(variant_root(config.output_dir, shard.id), shard.as_json(), result.as_json())
    console.note(f"shard record {path}")
    raise_for(summary, error)
    return result.report
