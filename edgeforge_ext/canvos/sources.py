"""The one way to get the CanvOS source a command works on: resolve the ref, read the commit's facts.

Two questions, asked by everyone (build, lock, checkout, plan, render, images --from-plan):
- `fetch`: bring the work directory's checkout to the ref (a git fetch; the caller holds the
  work-directory lock), or with `--skip checkout` use it as it is;
- `look`: the facts without changing anything: the work directory's checkout when it is at the ref
  (offline), else a temporary clone removed afterwards (said on the console), or nothing when the
  caller can do without.
`to_source` turns the facts into what the pure planner reads.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from edgeforge_ext.build.plan import Source
from edgeforge_ext.config import Config
from edgeforge_ext.errors import UsageError

if TYPE_CHECKING:
    from edgeforge_ext.canvos.build_inputs import BuildInputs
    from edgeforge_ext.canvos.repo import CanvosFacts


def to_source(facts: CanvosFacts) -> Source:
    return Source(url=facts.url, ref=facts.ref, tag=facts.tag, sha=facts.sha, pe_version=facts.pe_version,
                  describe=facts.describe, k8s_versions=facts.k8s_versions, targets=tuple(facts.targets),
                  contract=facts.contract)


def fetch(config: Config, *, discard_changes: bool = False, honour_skip: bool = True) -> CanvosFacts:
    """Clone or update the work directory's checkout to `canvos.ref` (a build's `--skip checkout`: use it
    as it is; the `checkout` command itself always fetches)."""
    from edgeforge_ext.canvos import repo as canvos

    path = config.checkout_dir
    if honour_skip and "checkout" in config.build.skip:
        if not path.exists():
            raise UsageError(f"--skip checkout needs an existing checkout at {path}")
        return canvos.read_facts(path, url=config.canvos.url, ref=config.canvos.ref)
    return canvos.checkout(config.canvos.url, config.canvos.ref, path, discard_changes=discard_changes)


def local(config: Config, *, any_ref: bool = False) -> CanvosFacts | None:
    """The work directory's checkout (no network): when it is at `canvos.ref`, or with `any_ref` at
    whatever it holds (render writes into it, so its commit is the one that counts)."""
    from edgeforge_ext.canvos import repo as canvos

    path = config.checkout_dir
    if not (path / ".git").exists():
        return None
    if any_ref:
        return canvos.read_facts(path)
    facts = canvos.read_facts(path, url=config.canvos.url, ref=config.canvos.ref)
    ref = config.canvos.ref
    return facts if ref in ("latest", facts.tag, facts.sha) or facts.sha.startswith(ref) else None


def look(config: Config, *, clone: bool = True) -> tuple[CanvosFacts | None, Path | None]:
    """(facts, the checkout they were read from): the work directory's checkout at the ref, else with
    `clone` a temporary clone of the ref (facts, None), else (None, None). Nothing in the work directory
    changes."""
    from edgeforge_ext import console
    from edgeforge_ext.canvos import repo as canvos

    found = local(config)
    if found is not None:
        return found, config.checkout_dir
    if not clone:
        return None, None
    console.note(f"no checkout of {config.canvos.ref} in {config.checkout_dir}: reading CanvOS from a temporary "
                 "clone (removed afterwards)")
    with tempfile.TemporaryDirectory(prefix="edgeforge-plan-") as tmp:
        return canvos.checkout(config.canvos.url, config.canvos.ref, Path(tmp) / "CanvOS"), None


def planned_provider_images(config: Config) -> list[str]:
    """The provider image names the current build plan gives (`images … --from-plan`): PE_VERSION and
    k8s_version.json from the work directory's checkout when there is one; no network."""
    from edgeforge_ext.build.plan import make_plan

    facts = local(config, any_ref=True)
    source = to_source(facts) if facts is not None else Source(url=config.canvos.url, ref=config.canvos.ref)
    return [image.ref for image in make_plan(config, source).provider_images]



def build_inputs(config: Config) -> BuildInputs:
    """What the CanvOS build pulls for itself with the configured options (`--build-inputs`), read from the
    Earthfile of the work directory's checkout at `canvos.ref` (else a temporary clone of it)."""
    from edgeforge_ext.argfile import entry_target, plan_args
    from edgeforge_ext.build.plan import earthly_image
    from edgeforge_ext.canvos.build_inputs import find_build_inputs

    facts, _path = look(config)
    if facts is None or facts.contract is None:
        raise UsageError(f"--build-inputs needs the CanvOS checkout at {config.canvos.ref}")
    args = plan_args(config, pe_version=facts.pe_version, k8s_versions=facts.k8s_versions, problems=[],
                     warnings=[], contract=facts.contract, redirect_inputs=False)
    image, _from = earthly_image(config, facts.contract)
    return find_build_inputs(facts.contract, args.values, entry_target(config), image)
