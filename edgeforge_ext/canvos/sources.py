"""The one way to get the CanvOS source a command works on: resolve the ref, read the commit's facts.

Two questions, asked by everyone (build, lock, checkout, plan, render, images --from-plan):
- `fetch`: bring the work directory's checkout to the ref (a git fetch; the caller holds the
  work-directory lock), or with `--skip checkout` use it as it is;
- `look`: the facts without changing anything: the work directory's checkout when it is a checkout of
  `canvos.url` at the ref (offline; for `latest` after asking the remote for its tags), else a temporary
  clone removed afterwards (said on the console, with why), or nothing when the caller can do without.
`to_source` turns the facts into what the pure planner reads.
"""

from __future__ import annotations

import contextlib
import contextvars
import tempfile
from collections.abc import Iterator
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


def _other_repository(config: Config) -> str | None:
    """The origin of the work directory's checkout when it is a checkout of another repository than
    `canvos.url` (the comparison `checkout` makes; it and `build` refuse such a checkout, exit 4), said
    for a message; None when it is of `canvos.url`. Reads .git/config in-process (no git call)."""
    from edgeforge_ext.canvos import repo as canvos

    origin = canvos.origin_url(config.checkout_dir)
    if canvos.same_url(origin, config.canvos.url):
        return None
    return canvos.checkout_of(origin)


def _at_ref(config: Config) -> tuple[CanvosFacts | None, str, bool]:
    """(facts, "", False) of the work directory's checkout when it is of `canvos.url` and at `canvos.ref`,
    else (None, why not, whether build would refuse the checkout). No network: for `latest` any commit
    counts here (only the remote knows which tag is the latest: look() asks it)."""
    from edgeforge_ext.canvos import repo as canvos

    path = config.checkout_dir
    ref = config.canvos.ref.strip() or canvos.LATEST
    if not (path / ".git").exists():
        return None, f"no checkout of {ref} in {path}", False
    other = _other_repository(config)
    if other is not None:
        return None, (f"{path} is {other}, not of canvos.url {canvos.scrub_url(config.canvos.url)} (checkout "
                      "and build refuse it, exit 4)"), True
    facts = canvos.read_facts(path, url=config.canvos.url, ref=ref)
    if ref in (canvos.LATEST, facts.tag, facts.sha) or facts.sha.startswith(ref):
        return facts, "", False
    return None, f"no checkout of {ref} in {path} (it holds {facts.tag or facts.sha[:12]})", False


def local(config: Config, *, any_ref: bool = False) -> CanvosFacts | None:
    """The work directory's checkout (no network): when it is a checkout of `canvos.url` at `canvos.ref`
    (for `latest`: at any commit; look() asks the remote), or with `any_ref` whatever it holds."""
    from edgeforge_ext import console
    from edgeforge_ext.canvos import repo as canvos

    path = config.checkout_dir
    if not (path / ".git").exists():
        return None
    if any_ref:
        # Whatever the checkout holds, also when it is of another repository than canvos.url (said in a
        # warning, since checkout and build refuse it). Its callers read no ref but the checkout itself:
        # render writes user-data and .arg into this very checkout, so its Earthfile is the one they must
        # pass (skipping it would write an unchecked .arg into it), and `images --from-plan` names the
        # images after the checkout offline, whatever ref it is at. Without it they would fall back to
        # no facts at all ("PE_VERSION is unknown"), which helps nobody; the warning says what is off.
        other = _other_repository(config)
        if other is not None:
            console.warn(f"{path} is {other}, not of canvos.url {canvos.scrub_url(config.canvos.url)} (checkout "
                         "and build refuse it, exit 4): reading it as it is")
        return canvos.read_facts(path)
    return _at_ref(config)[0]


def _not_latest(config: Config, facts: CanvosFacts) -> str:
    """"" when the checkout (`facts`, read for `latest`) holds the remote's latest tag, as `build` would
    fetch and check it out, else why not. Asks the remote for its tags only (`git ls-remote --tags`, the
    tag chosen by checkout's own rule); when the remote cannot say, warns and keeps the checkout."""
    from edgeforge_ext import console
    from edgeforge_ext.canvos import repo as canvos
    from edgeforge_ext.errors import CheckoutError

    held = f"tag {facts.tag}" if facts.tag else f"commit {facts.sha[:12]}"
    try:
        tag, sha = canvos.resolve_remote(config.canvos.url, canvos.LATEST)
    except CheckoutError as exc:
        console.warn(f"the latest CanvOS tag could not be learnt, so the plan uses the checkout's {held} (in "
                     f"{config.checkout_dir}): {exc.message}")
        return ""
    if (tag, sha) == (facts.tag, facts.sha):
        return ""
    moved = " (the tag moved)" if tag == facts.tag else ""
    return (f"the checkout in {config.checkout_dir} holds {held}, the latest tag of "
            f"{canvos.scrub_url(config.canvos.url)} is {tag}{moved}")


# While a command looks at several builds of one source (`plan --all`, the shard planner's variants), the
# first look's answer serves the rest: one temporary clone and one `ls-remote`, not one per variant.
_LOOKED: contextvars.ContextVar[dict[tuple[str, str, str, bool], tuple[CanvosFacts | None, Path | None]] | None] = \
    contextvars.ContextVar("edgeforge_looked", default=None)


@contextlib.contextmanager
def one_look_per_source() -> Iterator[None]:
    """Within this block, look() answers each (canvos.url, canvos.ref, checkout) once."""
    token = _LOOKED.set({})
    try:
        yield
    finally:
        _LOOKED.reset(token)


def look(config: Config, *, clone: bool = True) -> tuple[CanvosFacts | None, Path | None]:
    """See _look; answered once per source inside one_look_per_source()."""
    looked = _LOOKED.get()
    if looked is None:
        return _look(config, clone=clone)
    key = (config.canvos.url, config.canvos.ref, str(config.checkout_dir), clone)
    if key not in looked:
        looked[key] = _look(config, clone=clone)
    return looked[key]


def _look(config: Config, *, clone: bool = True) -> tuple[CanvosFacts | None, Path | None]:
    """(facts, the checkout they were read from): the work directory's checkout when it is of
    `canvos.url` at the ref (for `latest`: at the remote's latest tag, asked by `git ls-remote`; the
    checkout as it is, with a warning, when the remote cannot be asked), else with `clone` a temporary
    clone of the ref (facts, None; the console says why), else (None, None). The facts' warnings are
    printed (once per run). Nothing in the work directory changes."""
    from edgeforge_ext import console
    from edgeforge_ext.canvos import repo as canvos

    found, why, refused = _at_ref(config)
    if found is not None and (config.canvos.ref.strip() or canvos.LATEST) == canvos.LATEST:
        why = _not_latest(config, found)
        found = None if why else found
    if found is not None:
        _warn_all(found)
        return found, config.checkout_dir
    if not clone:
        return None, None
    said = f"{why}: reading CanvOS from a temporary clone (removed afterwards)"
    if refused:
        console.warn(said)  # build would stop here (exit 4): more than a note
    else:
        console.note(said)
    with tempfile.TemporaryDirectory(prefix="edgeforge-plan-") as tmp:
        facts = canvos.checkout(config.canvos.url, config.canvos.ref, Path(tmp) / "CanvOS")
    _warn_all(facts)
    return facts, None


def _warn_all(facts: CanvosFacts) -> None:
    """The facts' warnings (the Earthfile's PE_VERSION, k8s_version.json, earthly.sh; from canvos.checkout
    also a failed fetch), printed as `checkout` and `build` print them; console.warn says each once per run
    (`plan --all` looks once per variant)."""
    from edgeforge_ext import console

    for warning in facts.warnings:
        console.warn(warning)


def planned_provider_images(config: Config) -> list[str]:
    """The provider image names the current build plan gives (`images … --from-plan`): PE_VERSION and
    k8s_version.json from the work directory's checkout when there is one; no network."""
    from edgeforge_ext.build.plan import make_plan

    facts = local(config, any_ref=True)
    source = to_source(facts) if facts is not None else Source(url=config.canvos.url, ref=config.canvos.ref)
    return [image.ref for image in make_plan(config, source).provider_images]



def build_inputs(config: Config, facts: CanvosFacts | None = None) -> BuildInputs:
    """What the CanvOS build pulls for itself with the configured options (`--build-inputs`), read from the
    Earthfile of `facts` (a build's own checkout: `build --attest`), else as look() finds it: the work
    directory's checkout at `canvos.ref`, else a temporary clone of it."""
    from edgeforge_ext.argfile import entry_target, plan_args
    from edgeforge_ext.build.plan import earthly_image
    from edgeforge_ext.canvos.build_inputs import find_build_inputs

    if facts is None:
        facts, _path = look(config)
    if facts is None or facts.contract is None:
        raise UsageError(f"--build-inputs needs the CanvOS checkout at {config.canvos.ref}")
    args = plan_args(config, pe_version=facts.pe_version, k8s_versions=facts.k8s_versions, problems=[],
                     warnings=[], contract=facts.contract, redirect_inputs=False)
    image, _from = earthly_image(config, facts.contract)
    return find_build_inputs(facts.contract, args.values, entry_target(config), image)
