"""`--changed-since DIR|edgeforge.lock`: leave out the shards whose inputs did not change and whose
outputs still exist, so a nightly rerun schedules only changed or failed shards.

Unchanged: the same CanvOS commit, the same Earthly image (its id too when both sides know it) and the
same fingerprint as the shard's last successful build in DIR (`DIR/<id>/latest`, with the inputs it
recorded), or as edgeforge.lock pins (then its outputs are looked for in the output directory).
Outputs exist: the ISO is there with its recorded size, and every provider image is where the build
pushed it, under the digest it pushed (asked of the registry: the builders may be other hosts), or,
for a build that pushed nothing, in this daemon by its id.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgeforge_ext.config import Config
from edgeforge_ext.errors import EdgeforgeError
from edgeforge_ext.shards.model import LeftOut, Shard

if TYPE_CHECKING:
    from edgeforge_ext.build.report import Report
    from edgeforge_ext.edgeforge_lock import Lock


def split(config: Config, shards: Sequence[Shard], since: Path) -> tuple[list[Shard], list[LeftOut]]:
    """(shards to build, shards left out with why)."""
    from edgeforge_ext import console

    lock = None
    if since.is_file():
        from edgeforge_ext.edgeforge_lock import read_lock

        lock = read_lock(since)
        outputs_root = config.output_dir
    else:
        outputs_root = since
    build: list[Shard] = []
    left: list[LeftOut] = []
    for shard in shards:
        where, why = _unchanged(config, shard, outputs_root, lock)
        if where is None:
            console.info(f"{shard.id}: to build ({why})")
            build.append(shard)
        else:
            console.info(f"{shard.id}: left out ({why})")
            left.append(LeftOut(shard, why, str(where)))
    return build, left


def _unchanged(config: Config, shard: Shard, root: Path, lock: Lock | None) -> tuple[Path | None, str]:
    from edgeforge_ext.nightly import last_success

    last = last_success(root / shard.id)
    if isinstance(last, str):
        return None, last
    previous, report, before, image_ids = last.directory, last.report, last.inputs, last.image_ids
    if lock is not None:
        pinned = lock.fingerprints.get(shard.id)
        if pinned is None:
            return None, "edgeforge.lock has no entry for it"
        if (lock.canvos_sha, pinned) != (shard.canvos_sha, shard.fingerprint):
            return None, "its inputs differ from edgeforge.lock"
        if shard.earthly_id and lock.earthly_id != shard.earthly_id:
            return None, "the Earthly image differs from edgeforge.lock"
    if before.canvos_sha != shard.canvos_sha:
        return None, f"CanvOS moved from {before.canvos_sha[:12]} to {shard.canvos_sha[:12]}"
    if before.earthly_image != shard.earthly_image or (shard.earthly_id and before.earthly_id
                                                       and before.earthly_id != shard.earthly_id):
        return None, "the Earthly image changed"
    if before.fingerprint != shard.fingerprint:
        return None, "the rendered user-data, .arg, targets or build args changed"
    if report.iso:
        iso = previous / Path(report.iso["path"]).name
        if not iso.is_file() or iso.stat().st_size != int(report.iso.get("size", -1)):
            return None, f"the ISO {iso} is gone or not the one built"
    gone = _images_gone(config, report, image_ids)
    if gone:
        return None, gone
    return previous, f"unchanged since {previous}"


def _images_gone(config: Config, report: Report, image_ids: dict[str, str]) -> str:
    """Why a provider image is no longer where the build left it ('' when every one is)."""
    from edgeforge_ext.registry.client import credentials_for, manifest_digest

    for image in report.provider_images:
        if image.unpushed and image.pushed:
            return f"{image.ref} was not pushed everywhere"
        for pushed in image.pushed:
            try:
                now = manifest_digest(pushed.ref, credentials_for(config, pushed.ref))
            except EdgeforgeError as exc:
                return f"cannot tell whether {pushed.ref} is still pushed ({exc.message})"
            if now != pushed.digest:
                return f"{pushed.ref} is {'gone' if now is None else 'now another image'} in its registry"
        if not image.pushed:
            from edgeforge_ext.nightly import images_gone

            if images_gone(report, image_ids):
                return f"provider image {image.ref} is no longer in the Docker daemon"
    return ""
