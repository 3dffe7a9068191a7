"""What `build --shard ID` leaves for `gather`: `OUTPUT/<id>/edgeforge-shard.json`, written at the end of
every attempt, failed ones too (a shard that failed before its dated directory existed still says why).
It holds the shard and its result exactly as `build --all` lists a build in edgeforge-summary.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeforge_ext.fsutil import atomic_write

RECORD_NAME = "edgeforge-shard.json"
FORMAT = 1


def write_record(root: Path, shard: Mapping[str, Any], result: Mapping[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "shard": dict(shard), "result": dict(result), "finished": time.time()}
    path = root / RECORD_NAME
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())
    return path


def read_records(places: list[Path]) -> dict[str, dict[str, Any]]:
    """Shard id -> its newest record found anywhere under `places` (artifacts of several attempts may
    hold the same shard: the one that finished last counts)."""
    newest: dict[str, dict[str, Any]] = {}
    for place in places:
        paths = [place] if place.is_file() else sorted(place.rglob(RECORD_NAME)) if place.is_dir() else []
        for path in paths:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                shard_id = str(data["shard"]["id"])
                finished = float(data.get("finished") or 0)
                if not isinstance(data["result"], dict):  # a record without a result is not one
                    continue
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if shard_id not in newest or finished > float(newest[shard_id].get("finished") or 0):
                newest[shard_id] = data
    return newest
