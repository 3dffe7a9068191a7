"""`edgeforge.lock`: the CanvOS commit, the Earthly image and a fingerprint of everything else that
decides a build's output, so a nightly job can refuse drift (`build --locked`) or skip a build whose
inputs did not change (`build --skip-unchanged`).

The fingerprint is a sha256 over the rendered user-data and .arg, the Earthly targets and build args,
and the plan. The rendered user-data holds secrets, so its input is hashed in memory and never written,
logged or kept; only the digest leaves this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeforge_ext.config import Config
from edgeforge_ext.errors import ConfigError, UsageError, ValidationError
from edgeforge_ext.fsutil import atomic_write
from edgeforge_ext.secrets import quoted

LOCK_NAME = "edgeforge.lock"
FORMAT = 1  # bump when the meaning of a field changes; readers refuse newer formats
DEFAULT_BUILD = "default"
# Skipping these changes what a build leaves behind; skipping preflight or registry-check does not.
_OUTPUT_STEPS = {"render", "earthly", "collect", "push"}


@dataclass(frozen=True)
class Inputs:
    """What decides one build's output: the three things the lock pins."""

    canvos_url: str
    canvos_ref: str
    canvos_sha: str
    earthly_image: str
    earthly_id: str | None  # the local image id (sha256:...), None when the image is not present
    earthly_repo_digests: tuple[str, ...]
    fingerprint: str

    def as_json(self) -> dict[str, Any]:
        return {"canvos": {"url": self.canvos_url, "ref": self.canvos_ref, "sha": self.canvos_sha},
                "earthly": {"image": self.earthly_image, "id": self.earthly_id,
                            "repo_digests": list(self.earthly_repo_digests)},
                "fingerprint": self.fingerprint}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Inputs:
        canvos, earthly = data["canvos"], data["earthly"]
        return Inputs(str(canvos["url"]), str(canvos["ref"]), str(canvos["sha"]), str(earthly["image"]),
                      earthly.get("id"), tuple(earthly.get("repo_digests", ())), str(data["fingerprint"]))


# ------------------------------------------------------------------------------------------ fingerprint


def _without_secrets(text: str, secrets: Sequence[str]) -> str:
    """The text with each secret replaced by a slow (scrypt) hash of it: a changed password still changes
    the fingerprint, but a lock file checked into git is no cheap oracle for guessing the password."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and secret in text:
            digest = hashlib.scrypt(secret.encode("utf-8"), salt=b"edgeforge-ext fingerprint", n=2**12, r=8, p=1,
                                    dklen=16).hex()
            text = text.replace(secret, f"<secret:{digest}>")
    return text


def fingerprint(*, user_data: str, arg_text: str, plan: Any, modified: Mapping[str, str] | None = None,
                secrets: Sequence[str] = ()) -> str:
    """sha256 of the canonical form of the build's inputs (the CanvOS SHA and the Earthly image are
    pinned separately, so drift can say which one moved). Secrets in user-data enter only slow-hashed."""
    canonical = {
        "format": FORMAT,
        "user_data": hashlib.sha256(_without_secrets(user_data, secrets).encode("utf-8")).hexdigest(),
        "arg": arg_text,
        "target": plan.target,
        "runs": [{"target": r.target, "args": dict(sorted(r.build_args.items()))} for r in plan.runs],
        "iso_name": plan.iso_name,
        "pe_version": plan.pe_version,
        "image_tag": plan.image_tag,
        "provider_images": [{"ref": i.ref, "push": list(i.push_refs)} for i in plan.provider_images],
        "push_enabled": plan.push_enabled,
        "skip": sorted(set(plan.skip) & _OUTPUT_STEPS),
        "os_pack": plan.os_pack,
        "canvos_local_edits": dict(sorted((modified or {}).items())),
    }
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _local_edits(checkout: Path, modified: tuple[str, ...]) -> dict[str, str]:
    """Local edits in the checkout are not in its SHA: fingerprint their contents too."""
    out: dict[str, str] = {}
    for name in modified:
        path = checkout / name
        try:
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        except OSError:
            out[name] = "unreadable"
    return out


def inputs_of(config: Config, facts: Any, plan: Any, rendered: Any, earthly: tuple[str | None, tuple[str, ...]]
              ) -> Inputs:
    return Inputs(
        canvos_url=str(facts.url), canvos_ref=str(config.canvos.ref), canvos_sha=str(facts.sha),
        earthly_image=str(plan.earthly_image), earthly_id=earthly[0], earthly_repo_digests=earthly[1],
        fingerprint=fingerprint(user_data=rendered.user_data, arg_text=rendered.arg_text, plan=plan,
                                modified=_local_edits(Path(facts.path), tuple(facts.modified)),
                                secrets=[secret.reveal() for secret in config.secrets]),
    )


def earthly_identity(image: str) -> tuple[str | None, tuple[str, ...]]:
    """(image id, repo digests) of the local Earthly image; (None, ()) when it is not present."""
    return local_images([image])[image]


def local_images(refs: list[str]) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """(image id, repo digests) of local images, None for the absent ones (see engine.local_images)."""
    from edgeforge_ext import engine

    return engine.local_images(refs)


@dataclass(frozen=True)
class Resolved:
    inputs: Inputs
    facts: Any
    plan: Any


def resolve(config: Config, *, discard_changes: bool = False, facts: Any = None) -> Resolved:
    """Resolve the ref (a git fetch), plan and render in memory: the inputs a build would have now.

    Starts no container and writes nothing but the checkout itself (the caller holds the workdir
    lock). `facts` reuses a checkout already made in this run (variants share one)."""
    from edgeforge_ext.build.plan import make_plan
    from edgeforge_ext.canvos import sources
    from edgeforge_ext.render import render_all

    if facts is None:
        facts = sources.fetch(config, discard_changes=discard_changes)
    plan = make_plan(config, sources.to_source(facts))
    rendered = render_all(config, pe_version=plan.pe_version, k8s_versions=facts.k8s_versions,
                          contract=facts.contract)
    earthly = earthly_identity(plan.earthly_image)
    return Resolved(inputs_of(config, facts, plan, rendered, earthly), facts, plan)


# ------------------------------------------------------------------------------------------ the lock file


def lock_path(config: Config) -> Path:
    """edgeforge.lock lives next to the config file, or in the current directory without one."""
    return (config.config_file.parent if config.config_file else Path.cwd()) / LOCK_NAME


@dataclass(frozen=True)
class Lock:
    canvos_url: str
    canvos_ref: str
    canvos_sha: str
    earthly_image: str
    earthly_id: str
    earthly_repo_digests: tuple[str, ...]
    fingerprints: Mapping[str, str]  # build name ("default" or a variant) -> fingerprint

    def as_json(self) -> dict[str, Any]:
        from edgeforge_ext import __version__

        return {
            "format": FORMAT,
            "written_by": f"edgeforge-ext {__version__}",
            "canvos": {"url": self.canvos_url, "ref": self.canvos_ref, "sha": self.canvos_sha},
            "earthly": {"image": self.earthly_image, "id": self.earthly_id,
                        "repo_digests": list(self.earthly_repo_digests)},
            "builds": {name: {"fingerprint": fp} for name, fp in sorted(self.fingerprints.items())},
        }


def make_lock(inputs: Mapping[str, Inputs]) -> Lock:
    """One lock from the inputs of each build; they must agree on the CanvOS SHA and the Earthly image."""
    if not inputs:
        raise UsageError("nothing to lock")
    first = next(iter(inputs.values()))
    if first.earthly_id is None:
        raise UsageError(f"the Earthly image {first.earthly_image} is not present locally, so its digest "
                         "cannot be locked", hint=f"pull it (docker pull {first.earthly_image}) and run "
                         "edgeforge-ext lock again")
    for name, i in inputs.items():
        if (i.canvos_sha, i.earthly_id) != (first.canvos_sha, first.earthly_id):
            raise UsageError(f"build {name} resolves to another CanvOS commit or Earthly image than the others; "
                             "one lock holds one of each")
    return Lock(first.canvos_url, first.canvos_ref, first.canvos_sha, first.earthly_image, first.earthly_id,
                first.earthly_repo_digests, {name: i.fingerprint for name, i in inputs.items()})


def write_lock(lock: Lock, path: Path) -> Path:
    data = lock.as_json()
    images = _existing_images(path)
    if images:
        data[IMAGES] = images  # what `images save --update-lock` recorded stays
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())
    return path


# ------------------------------------------------------------------------------------------ saved images

IMAGES = "images"  # reference -> manifest digest of the images last saved (`images save --update-lock`)


def _existing_images(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    images = data.get(IMAGES) if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in images.items()} if isinstance(images, dict) else {}


def record_images(path: Path, images: Mapping[str, str]) -> Path:
    """Record the images a bundle holds (reference -> manifest digest) in edgeforge.lock, keeping the rest of
    the file; `images save --since edgeforge.lock` then leaves out what they cover."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {"format": FORMAT}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot update {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"cannot update {path}: not a JSON object")
    data[IMAGES] = dict(sorted(images.items()))
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())
    return path


def read_images(path: Path) -> dict[str, str]:
    """The images an edgeforge.lock records (exit 2 when it records none)."""
    images = _existing_images(path)
    if not images:
        raise ConfigError(f"{path} records no images", hint="write them with `edgeforge-ext images save ... "
                          "--update-lock`, or give the earlier bundle to --since")
    return images


def read_lock(path: Path) -> Lock:
    """Read edgeforge.lock; missing, malformed or newer-format files are configuration errors (exit 2)."""
    again = "run `edgeforge-ext lock` to write it again"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--locked: there is no {path}", hint="run `edgeforge-ext lock` first") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", hint=again) from None
    try:
        data = json.loads(text)
        version = data["format"]
    except (ValueError, TypeError, KeyError):
        raise ConfigError(f"{path} is not a valid edgeforge.lock (not JSON with a format field)",
                          hint=again) from None
    if not isinstance(version, int) or version < 1:
        raise ConfigError(f"{path}: format {quoted(version)} is not a lock format version", hint=again)
    if version > FORMAT:
        raise ConfigError(f"{path} was written by a newer edgeforge-ext (lock format {version}; this one reads "
                          f"up to {FORMAT})", hint="upgrade edgeforge-ext, or " + again + " with this version")
    try:
        canvos, earthly, builds = data["canvos"], data["earthly"], data["builds"]
        return Lock(
            canvos_url=str(canvos["url"]), canvos_ref=str(canvos["ref"]), canvos_sha=_text(canvos["sha"]),
            earthly_image=_text(earthly["image"]), earthly_id=_text(earthly["id"]),
            earthly_repo_digests=tuple(str(d) for d in earthly.get("repo_digests", [])),
            fingerprints={str(name): _text(b["fingerprint"]) for name, b in builds.items()},
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a valid edgeforge.lock (missing or wrong field: {exc})",
                          hint=again) from None


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected text, got {value!r}")
    return value


def drift(lock: Lock, name: str, now: Inputs) -> list[str]:
    """What differs between the lock and the inputs a build has now (empty: nothing drifted)."""
    out: list[str] = []
    if now.canvos_sha != lock.canvos_sha:
        out.append(f"CanvOS SHA: locked {lock.canvos_sha[:12]} ({lock.canvos_ref}), now {now.canvos_sha[:12]} "
                   f"({now.canvos_ref})")
    if now.earthly_id != lock.earthly_id:
        now_id = now.earthly_id or "not present locally"
        out.append(f"Earthly image digest: locked {lock.earthly_id} ({lock.earthly_image}), now {now_id} "
                   f"({now.earthly_image})")
    locked_fp = lock.fingerprints.get(name)
    if locked_fp is None:
        known = ", ".join(sorted(lock.fingerprints)) or "none"
        out.append(f"fingerprint: the lock has no entry for build {name!r} (it has: {known})")
    elif locked_fp != now.fingerprint:
        out.append(f"fingerprint of {name} (rendered user-data and .arg, targets, build args, plan): "
                   f"locked {locked_fp[:19]}…, now {now.fingerprint[:19]}…")
    return out


def check_locked(lock: Lock, name: str, now: Inputs, path: Path) -> None:
    """ValidationError (exit 5) naming every drifted input."""
    problems = drift(lock, name, now)
    if problems:
        raise ValidationError(f"--locked: the inputs of build {name} differ from {path}", details=problems,
                              hint="run `edgeforge-ext lock` to accept the new inputs, or build without --locked")


def lock_builds(config: Config, names: list[str | None], *, discard_changes: bool = False,
                wait: bool = True) -> tuple[Path, Lock]:
    """Resolve every named build (None: the top-level config) and write edgeforge.lock for them."""
    from edgeforge_ext.workdir_lock import workdir_lock

    inputs: dict[str, Inputs] = {}
    facts: Any = None
    with workdir_lock(config.workdir, wait=wait, what="lock"):
        for name in names:
            resolved = resolve(config.with_variant(name) if name else config, discard_changes=discard_changes,
                               facts=facts)
            facts = resolved.facts
            inputs[name or DEFAULT_BUILD] = resolved.inputs
    lock = make_lock(inputs)
    return write_lock(lock, lock_path(config)), lock
