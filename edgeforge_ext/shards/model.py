"""A shard (one whole build: a variant, or one Kubernetes version of it) and a shard plan, with the JSON
they travel as between the plan job, the builders and `gather`.

A shard's `id` is stable (the variant's name, `<variant>-<version>` with --shard-by k8s-version): it
names its output directory and its summary row, so a rerun finds what an earlier run of it left. Its
`fingerprint` is the one edgeforge.lock records for the same inputs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgeforge_ext.errors import UsageError

FORMAT = 1
BY_VARIANT = "variant"
BY_K8S_VERSION = "k8s-version"
SHARD_BY = (BY_VARIANT, BY_K8S_VERSION)
# A shard id is a directory name, a GitHub artifact name and a Kubernetes label value: keep it to those.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class Shard:
    id: str
    order: int  # sorts it in the configuration's order (the order `build --all` builds and lists them)
    variant: str | None  # None: the top-level configuration
    k8s_version: str | None  # with --shard-by k8s-version; None: every version the variant builds
    fingerprint: str = ""
    canvos_sha: str = ""
    earthly_image: str = ""
    earthly_id: str | None = None
    estimate: float | None = None  # seconds, from earlier builds of it (history.py); None: never built

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "order": self.order, "variant": self.variant, "k8s_version": self.k8s_version,
                "fingerprint": self.fingerprint, "canvos_sha": self.canvos_sha,
                "earthly_image": self.earthly_image, "earthly_id": self.earthly_id,
                "estimate_seconds": round(self.estimate) if self.estimate is not None else None}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Shard:
        estimate = data.get("estimate_seconds")
        return Shard(id=str(data["id"]), order=int(data.get("order", 0)), variant=data.get("variant"),
                     k8s_version=data.get("k8s_version"), fingerprint=str(data.get("fingerprint", "")),
                     canvos_sha=str(data.get("canvos_sha", "")), earthly_image=str(data.get("earthly_image", "")),
                     earthly_id=data.get("earthly_id"), estimate=float(estimate) if estimate is not None else None)


@dataclass(frozen=True)
class LeftOut:
    shard: Shard
    reason: str  # why it needs no build (--changed-since)
    output_dir: str | None = None  # where its earlier, still valid, outputs are


@dataclass(frozen=True)
class ShardPlan:
    shard_by: str
    shards: tuple[Shard, ...]  # to build, in the order to start them (longest first)
    left_out: tuple[LeftOut, ...] = ()
    config_text: str = ""  # the edgeforge.toml the builders read (k8s-job and argo carry it)
    # When it was planned (epoch seconds): `gather` takes no record older than that (shared storage
    # still holds each shard's record of the night before).
    created: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "created": self.created, "shard_by": self.shard_by,
                "shards": [s.as_json() for s in self.shards],
                "left_out": [{**o.shard.as_json(), "reason": o.reason, "output_dir": o.output_dir}
                             for o in self.left_out]}

    def find(self, shard_id: str) -> Shard:
        for shard in self.shards:
            if shard.id == shard_id:
                return shard
        known = ", ".join(s.id for s in self.shards) or "none"
        raise UsageError(f"no shard {shard_id!r} in this plan (shards: {known})")

    def with_config_text(self, text: str) -> ShardPlan:
        return replace(self, config_text=text)


def check_ids(shards: Sequence[Shard]) -> None:
    """Every id usable as a directory, artifact and label name, and no two alike."""
    bad = [s.id for s in shards if not _ID.match(s.id)]
    if bad:
        raise UsageError(f"shard id(s) {', '.join(map(repr, bad))} are not usable as directory and artifact "
                         "names", hint="name variants with letters, digits, '.', '_' and '-' (at most 63)")
    ids = [s.id for s in shards]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise UsageError(f"two shards would have the id {', '.join(twice)}",
                         hint="rename the variant whose name ends like another's '-<k8s version>'")


def read_plan(path: Path) -> ShardPlan:
    """A shard list as any format carries it: `plan --shards --format json`, a GitHub matrix
    (`{"include": [...]}`) or Argo's parameter (`[...]`); `-` reads stdin."""
    import sys

    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the shard plan {path}: {exc}") from None
    try:
        if isinstance(data, dict) and "shards" in data:
            created = data.get("created")
            return ShardPlan(str(data.get("shard_by", BY_VARIANT)), tuple(Shard.from_json(s) for s in data["shards"]),
                             tuple(LeftOut(Shard.from_json(o), str(o.get("reason", "")), o.get("output_dir"))
                                   for o in data.get("left_out", [])),
                             created=float(created) if created is not None else None)
        entries = data["include"] if isinstance(data, dict) else data
        return ShardPlan(BY_VARIANT, tuple(Shard.from_json(matrix_entry_as_shard(e)) for e in entries))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{path} is not a shard plan (plan --shards --format json, a GitHub matrix or "
                         f"Argo's shard list): {exc}") from None


def matrix_entry(shard: Shard) -> dict[str, Any]:
    """One shard as a matrix or withParam item: flat strings, what a runner passes to `build --shard`."""
    return {"shard": shard.id, "order": shard.order, "variant": shard.variant or "",
            "k8s_version": shard.k8s_version or "", "fingerprint": shard.fingerprint}


def matrix_entry_as_shard(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": entry["shard"], "order": entry.get("order", 0), "variant": entry.get("variant") or None,
            "k8s_version": entry.get("k8s_version") or None, "fingerprint": entry.get("fingerprint", "")}
