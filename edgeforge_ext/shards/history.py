"""How long each shard took before, so the slowest starts first: an engine with fewer slots than shards
otherwise may start a 40-minute build last, and the whole run waits for it.

Read from what builds leave: shard records (`OUTPUT/<id>/edgeforge-shard.json`) and run summaries
(`edgeforge-summary.json`, by `build --all` or `gather`), anywhere under the directories given. The
newest result of a shard counts; a shard never built is estimated as long as the longest known one
(it may well be), so it is not left to the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgeforge_ext.shards.model import Shard
from edgeforge_ext.shards.record import RECORD_NAME

SUMMARY_NAME = "edgeforge-summary.json"  # nightly.SUMMARY_NAME (not imported: nightly is heavy)


def durations(places: Iterable[Path]) -> dict[str, float]:
    """Shard id (or variant name) -> seconds of its newest finished build found under `places`."""
    found: dict[str, tuple[float, float]] = {}  # id -> (when, seconds)

    def keep(name: str, when: float, seconds: float) -> None:
        if seconds > 0 and (name not in found or when > found[name][0]):
            found[name] = (when, seconds)

    for place in places:
        if not Path(place).is_dir():
            continue
        for path in sorted(Path(place).rglob(RECORD_NAME)):
            data = _json(path)
            result = data.get("result") or {}
            if data.get("shard", {}).get("id") and result.get("status") in ("success", "failed"):
                keep(str(data["shard"]["id"]), float(data.get("finished") or path.stat().st_mtime),
                     float(result.get("seconds") or 0))
        for path in sorted(Path(place).rglob(SUMMARY_NAME)):
            when = path.stat().st_mtime
            for build in _json(path).get("builds", []):
                if isinstance(build, dict) and build.get("status") in ("success", "failed"):
                    keep(str(build.get("variant")), when, float(build.get("seconds") or 0))
    return {name: seconds for name, (_when, seconds) in found.items()}


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def estimated(shards: Sequence[Shard], known: dict[str, float]) -> list[Shard]:
    return [replace(s, estimate=known[s.id]) if s.id in known else s for s in shards]


def longest_first(shards: Sequence[Shard], known: dict[str, float] | None = None) -> list[Shard]:
    """By estimate, longest first; never-built shards count as the longest build known (of any shard
    found, these or others); ties in config order."""
    longest = max([*(known or {}).values(), *(s.estimate for s in shards if s.estimate is not None)], default=0.0)
    return sorted(shards, key=lambda s: (-(s.estimate if s.estimate is not None else longest), s.order))
