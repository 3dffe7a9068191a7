"""`edgeforge-ext gather DIR...`: the shards' records merged into one run, as `build --all` reports one:
`edgeforge-summary.json` of the same shape, the same table, the same GitHub step summary.

Which shards to expect comes from the plan (`--plan FILE`: the shard list, a GitHub matrix or Argo's
parameter) or, without one, from the records found. With the shard list, a record older than the plan
is an earlier run's (shared output storage keeps them) and does not count. A shard of the plan with no
record is listed as `not-run` (missing); a shard --changed-since left out as `up-to-date`, with its
earlier report. Any failed or missing shard makes gather fail, naming each.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from edgeforge_ext import console
from edgeforge_ext.errors import EdgeforgeError, UsageError
from edgeforge_ext.fsutil import atomic_write, ensure_dir
from edgeforge_ext.nightly import SUMMARY_NAME, BuildResult, Summary, markdown, print_table
from edgeforge_ext.shards.model import Shard, read_plan
from edgeforge_ext.shards.record import RECORD_NAME, read_records

MISSING_EXIT = 8  # no report from a shard: what it should have produced is not there


class ShardsFailed(EdgeforgeError):
    """Some shards failed or reported nothing; the exit code is the first failure's."""

    def __init__(self, message: str, exit_code: int, details: list[str]) -> None:
        super().__init__(message, details=details,
                         hint="each shard's report is in its output directory (OUTPUT/<shard>/); rebuild one with "
                         "`edgeforge-ext build --shard ID`")
        self.exit_code = exit_code


def gather(places: list[Path], output_dir: Path, plan_file: Path | None = None) -> Summary:
    """Merge, write OUTPUT/edgeforge-summary.json, show it; raise ShardsFailed naming what failed."""
    missing_places = [str(p) for p in places if not p.exists()]
    if missing_places:
        raise UsageError(f"no such directory: {', '.join(missing_places)}")
    records = read_records(places)
    summary = Summary(output_dir)
    stale: dict[str, float] = {}
    if plan_file is not None:
        plan = read_plan(plan_file)
        if plan.created is not None:  # an earlier run's record of a shard is not this run's result
            stale = {i: float(r.get("finished") or 0) for i, r in records.items()
                     if float(r.get("finished") or 0) < plan.created}
            records = {i: r for i, r in records.items() if i not in stale}
        expected: list[tuple[Shard, str | None]] = [(s, None) for s in plan.shards]
        expected += [(o.shard, o.reason) for o in plan.left_out]
        left_out_dirs = {o.shard.id: o.output_dir for o in plan.left_out}
        extra = sorted(set(records) - {s.id for s, _ in expected})
        if extra:
            console.note(f"not in the plan, left out of the summary: {', '.join(extra)}")
    else:
        if not records:
            raise UsageError(f"no shard records ({RECORD_NAME}) under {', '.join(map(str, places))}",
                             hint="give the directories the shards' outputs were collected into, and --plan FILE "
                             "to name the shards expected")
        expected = [(Shard.from_json(r["shard"]), None) for r in records.values()]
        left_out_dirs = {}
    for shard, left_out_reason in sorted(expected, key=lambda e: (e[0].order, e[0].id)):
        if left_out_reason is not None:
            summary.results.append(_up_to_date(shard, left_out_reason, left_out_dirs.get(shard.id)))
        elif shard.id in records:
            summary.results.append(BuildResult.from_json(records[shard.id]["result"]))
        elif shard.id in stale:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stale[shard.id]))
            summary.results.append(BuildResult(shard.id, "not-run", reason=f"missing: no record since the plan "
                                               f"(the newest is of an earlier run, {when})"))
        else:
            summary.results.append(BuildResult(shard.id, "not-run", reason="missing: no record from this shard"))
    ensure_dir(output_dir, "output directory", "choose another --output (output.dir)")
    atomic_write(output_dir / SUMMARY_NAME, (json.dumps(summary.as_json(), indent=2) + "\n").encode())
    print_table(summary)
    console.step_summary(markdown(summary))
    _raise_for(summary)
    return summary


def _up_to_date(shard: Shard, reason: str, output_dir: str | None) -> BuildResult:
    from edgeforge_ext.build.report import read_report

    report = None
    if output_dir and Path(output_dir).is_dir():
        try:
            report = read_report(Path(output_dir))
        except EdgeforgeError:
            report = None
    return BuildResult(shard.id, "up-to-date", output_dir=Path(output_dir) if output_dir else None, report=report,
                       reason=reason)


def _raise_for(summary: Summary) -> None:
    failed = [r for r in summary.results if r.status in ("failed", "interrupted")]
    missing = [r for r in summary.results if r.status == "not-run"]
    if not failed and not missing:
        return
    parts = []
    if failed:
        parts.append("failed: " + ", ".join(f"{r.name} (exit {r.exit_code})" for r in failed))
    if missing:
        parts.append("missing: " + ", ".join(r.name for r in missing))
    details = [line for r in failed for line in (f"{r.name}: {r.error}", *(f"  {d}" for d in r.details[-10:]))]
    details += [f"{r.name}: {r.reason}" for r in missing]
    error = ShardsFailed(f"{len(failed) + len(missing)} of {len(summary.results)} shard(s) did not succeed; "
                         + "; ".join(parts), exit_code=failed[0].exit_code if failed else MISSING_EXIT,
                         details=details)
    error.result = summary.as_json()
    for r in [*failed, *missing]:  # one annotation each on GitHub Actions (the CLI adds one for the run)
        console.error(f"shard {r.name}: {r.error or r.reason}")
    raise error
