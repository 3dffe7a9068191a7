"""Which shards a configuration has, what each one builds, their fingerprints and the order to start them.

A shard is a whole build: CanvOS needs the host's Docker daemon (socket mounts, SAVE IMAGE into the
daemon, WITH DOCKER), so a remote BuildKit cannot carry one; engines users already run spread whole
builds over hosts. `--shard-by variant` gives one shard per variant (the same builds `build --all`
runs); `--shard-by k8s-version` one per Kubernetes version of each variant: the first version's shard
builds the ISO as well (as a single build's first Earthly run does), the others provider images only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgeforge_ext import console
from edgeforge_ext.config import Config
from edgeforge_ext.errors import EngineError, UsageError
from edgeforge_ext.shards.model import BY_K8S_VERSION, BY_VARIANT, SHARD_BY, Shard, ShardPlan, check_ids

# Orders k8s-version shards within the configuration: variant * this + version (CanvOS lists < 100 a
# distribution), so `order` sorts like `build --all` builds even when shards are planned one at a time.
_PER_VARIANT = 1000


@dataclass(frozen=True)
class PlanOptions:
    variants: tuple[str, ...] = ()
    all_variants: bool = False
    shard_by: str = BY_VARIANT
    changed_since: Path | None = None  # a previous output directory, or an edgeforge.lock
    history: tuple[Path, ...] = ()  # where earlier results are (durations); the output dir is always read
    discard_changes: bool = False
    wait: bool = True


@dataclass(frozen=True)
class Planned:
    shard: Shard
    config: Config  # what `build --shard <id>` builds


def _variant_configs(config: Config, names: Sequence[str | None]) -> list[tuple[int, str, str | None, Config]]:
    from edgeforge_ext.outputs import DEFAULT_VARIANT

    # The variant's place in the file, whichever of them are planned: a shard sorts the same everywhere.
    position = {v.name: i for i, v in enumerate(config.variants)}
    return [(position.get(name, 0) if name else 0, name or DEFAULT_VARIANT, name,
             config.with_variant(name) if name else config) for name in names]


def versions_of(config: Config, listed: dict[str, list[str]] | None) -> list[str]:
    """The Kubernetes versions a variant builds provider images for (empty: an ISO-only build)."""
    if str(config.build.target) == "iso":
        return []
    if config.build.all_k8s_versions:
        if listed is None:
            raise UsageError("--all-k8s-versions with --shard-by k8s-version needs the checkout's k8s_version.json")
        return list(listed.get(str(config.build.k8s_distribution), []))
    return list(dict.fromkeys(config.build.k8s_versions))


def for_version(config: Config, version: str, first: bool) -> Config:
    """One Kubernetes version of a variant. The first builds what the variant's first Earthly run builds
    (the ISO too, with --target all); the others provider images only, so the ISO is built once."""
    target = str(config.build.target)
    return config.with_layer(f"shard {version}", {
        "build.k8s_versions": [version], "build.all_k8s_versions": False,
        "build.target": target if first or target != "all" else "provider-images"})


def planned_shards(config: Config, names: Sequence[str | None], by: str,
                   listed: dict[str, list[str]] | None = None) -> list[Planned]:
    """Every shard of these builds, in the configuration's order, with its config; no I/O."""
    if by not in SHARD_BY:
        raise UsageError(f"--shard-by takes {BY_VARIANT} or {BY_K8S_VERSION}, not {by!r}")
    out: list[Planned] = []
    for i, label, name, variant_config in _variant_configs(config, names):
        versions = versions_of(variant_config, listed) if by == BY_K8S_VERSION else []
        if not versions:
            out.append(Planned(Shard(label, i * _PER_VARIANT if by == BY_K8S_VERSION else i, name, None),
                               variant_config))
            continue
        for j, version in enumerate(versions):
            out.append(Planned(Shard(f"{label}-{version}", i * _PER_VARIANT + j, name, version),
                               for_version(variant_config, version, j == 0)))
    check_ids([p.shard for p in out])
    return out


def find_shard(config: Config, shard_id: str) -> Planned:
    """The shard `build --shard ID` builds: a variant's name (or `default`), or `<variant>-<k8s version>`.
    Only the configuration is read, except for a variant with all_k8s_versions (its checkout's list)."""
    names: list[str | None] = [v.name for v in config.variants] or [None]
    by_variant = planned_shards(config, names, BY_VARIANT)
    for planned in by_variant:
        if planned.shard.id == shard_id:
            return planned
    for planned in by_variant:
        prefix = planned.shard.id + "-"
        if not shard_id.startswith(prefix) or not re.match(r"^\d", shard_id[len(prefix):]):
            continue
        listed = _listed_versions(planned.config) if planned.config.build.all_k8s_versions else None
        for candidate in planned_shards(config, [planned.shard.variant], BY_K8S_VERSION, listed):
            if candidate.shard.id == shard_id:
                order = planned.shard.order * _PER_VARIANT + candidate.shard.order % _PER_VARIANT
                return replace(candidate, shard=replace(candidate.shard, order=order))
    known = ", ".join(p.shard.id for p in by_variant)
    raise UsageError(f"this configuration has no shard {shard_id!r}",
                     hint=f"shards are variants ({known}) or, with --shard-by k8s-version, <variant>-<version>; "
                     "build with the configuration `plan --shards` used")


def _listed_versions(config: Config) -> dict[str, list[str]] | None:
    from edgeforge_ext.canvos import sources

    facts, _where = sources.look(config)
    return dict(facts.k8s_versions) if facts is not None and facts.k8s_versions else None


# ------------------------------------------------------------------------------------------ the plan


def plan_shards(config: Config, options: PlanOptions) -> ShardPlan:
    """Resolve the ref as `lock` does (a git fetch into the work directory's checkout: the fingerprint is
    the lock's), fingerprint every shard, leave out the unchanged ones (--changed-since), order the rest
    longest first (earlier durations)."""
    import time

    from edgeforge_ext.canvos import sources
    from edgeforge_ext.nightly import NightlyOptions, selected
    from edgeforge_ext.shards import changed, history
    from edgeforge_ext.workdir_lock import workdir_lock

    created = time.time()
    names = selected(config, NightlyOptions(variants=options.variants, all_variants=options.all_variants))
    with workdir_lock(config.workdir, wait=options.wait, what="plan"):
        facts = sources.fetch(config, discard_changes=options.discard_changes)
        listed = dict(facts.k8s_versions) if facts.k8s_versions else None
        planned = planned_shards(config, names, options.shard_by, listed)
        identities: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        shards = [_fingerprinted(p, facts, identities) for p in planned]
    durations = history.durations([*options.history, config.output_dir,
                                   *([options.changed_since] if options.changed_since else [])])
    shards = history.estimated(shards, durations)
    left_out: list[Any] = []
    if options.changed_since is not None:
        shards, left_out = changed.split(config, shards, options.changed_since)
    return ShardPlan(options.shard_by, tuple(history.longest_first(shards, durations)), tuple(left_out),
                     config_text=config_text(config), created=created)


def lock_shards(config: Config, names: Sequence[str | None], by: str, *, discard_changes: bool = False,
                wait: bool = True) -> tuple[Path, Any]:
    """`lock --shard-by k8s-version`: edgeforge.lock with one entry per shard id, so `build --locked --shard`
    and `--changed-since edgeforge.lock` find theirs (by variant the entries are the variants' already)."""
    from edgeforge_ext import edgeforge_lock
    from edgeforge_ext.canvos import sources
    from edgeforge_ext.workdir_lock import workdir_lock

    with workdir_lock(config.workdir, wait=wait, what="lock"):
        facts = sources.fetch(config, discard_changes=discard_changes)
        listed = dict(facts.k8s_versions) if facts.k8s_versions else None
        inputs = {p.shard.id: edgeforge_lock.resolve(p.config, facts=facts).inputs
                  for p in planned_shards(config, names, by, listed)}
    lock = edgeforge_lock.make_lock(inputs)
    return edgeforge_lock.write_lock(lock, edgeforge_lock.lock_path(config)), lock


def _fingerprinted(planned: Planned, facts: Any, identities: dict[str, tuple[str | None, tuple[str, ...]]]) -> Shard:
    """The shard with the inputs edgeforge.lock would record for it (same functions, same fingerprint)."""
    from edgeforge_ext import edgeforge_lock
    from edgeforge_ext.build.plan import make_plan
    from edgeforge_ext.canvos import sources
    from edgeforge_ext.render import render_all

    config = planned.config
    plan = make_plan(config, sources.to_source(facts))
    rendered = render_all(config, pe_version=plan.pe_version, k8s_versions=facts.k8s_versions,
                          contract=facts.contract)
    if plan.earthly_image not in identities:
        identities[plan.earthly_image] = _earthly_identity(plan.earthly_image)
    inputs = edgeforge_lock.inputs_of(config, facts, plan, rendered, identities[plan.earthly_image])
    return replace(planned.shard, fingerprint=inputs.fingerprint, canvos_sha=inputs.canvos_sha,
                   earthly_image=inputs.earthly_image, earthly_id=inputs.earthly_id)


def _earthly_identity(image: str) -> tuple[str | None, tuple[str, ...]]:
    """The local Earthly image's id when this host has a daemon; a plan host without one plans all the same
    (the fingerprint does not need it; --changed-since then compares the image's name only)."""
    from edgeforge_ext import edgeforge_lock

    try:
        return edgeforge_lock.earthly_identity(image)
    except EngineError as exc:
        console.note(f"the Earthly image's id is unknown here ({exc.message})")
        return None, ()


def config_text(config: Config) -> str:
    """The configuration file's text, for the pods (k8s-job, argo); '' without a file."""
    if config.config_file is None:
        return ""
    try:
        return config.config_file.read_text(encoding="utf-8")
    except OSError:
        return ""
