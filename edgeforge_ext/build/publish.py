"""Pushing provider images: what `build` does in its push step and `edgeforge-ext push` does again.

Resumable: the report records each (image, target) pushed; a later push does only the rest. Each build
pushes the image its own Earthly run produced (the id recorded at collect), under the names plan.py gave
it (images.pull_location: where the Edge host pulls it from). With `--attest` an image is pushed under a
staging tag first and gets its final tag only after its signature and attestations verify (build/attest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeforge_ext import console
from edgeforge_ext.build.report import ImageRecord, PushRecord, Report
from edgeforge_ext.config import Config
from edgeforge_ext.errors import ArtifactError, RegistryError


def push_images(config: Config, report: Report) -> None:
    """Push every image of the report that is not pushed yet; the report records what was (resumable)."""
    from edgeforge_ext import engine

    pending = [(image, target) for image in report.provider_images for target in image.unpushed]
    if not pending:
        console.info("nothing to push: every provider image is already pushed")
        return
    from edgeforge_ext.registry.client import credentials_for

    attester = None
    if config.attest.enabled:
        from edgeforge_ext.build.attest import ImageAttester

        attester = ImageAttester(config, report)
    client = engine.client()
    failures: list[str] = []
    unverified: list[str] = []
    try:
        for image, target in pending:
            creds = credentials_for(config, target)
            try:
                if attester is None:
                    digest = _push(client, image, target, creds)
                else:
                    from edgeforge_ext.build.attest import staging_ref

                    digest = _push(client, image, staging_ref(target), creds)
                    attester.promote(client, image, target, digest, creds)
            except RegistryError as exc:
                failures.append(f"{target}: {exc.message}")
                continue
            except ArtifactError as exc:
                unverified.extend(f"{target}: {line}" for line in [exc.message, *exc.details])
                continue
            image.pushed.append(PushRecord(target, digest, attested=attester is not None))
            console.info(f"pushed {target} ({digest})")
    finally:
        client.close()
    if unverified:
        report.status = "push-failed"
        raise ArtifactError("some provider images were pushed but their evidence did not verify: their final tags "
                            "were not moved", details=[*unverified, *failures])
    if failures:
        report.status = "push-failed"
        raise RegistryError(
            "some provider images were not pushed", details=failures,
            hint="edgeforge-ext push resumes; give it the same registry options as the build (--registry, "
            "--registry-username and the password) so it has the credentials")


# A push names a tag, not an image: another build on the daemon may move the name between our tag and
# the daemon reading it. The digest the daemon records on our image tells; so many tries, then give up.
PUSH_TRIES = 3


def _push(client: Any, image: ImageRecord, name: str, creds: Any) -> str:
    """Push this build's image under `name` and return its digest; verified, not assumed."""
    from edgeforge_ext import engine

    try:
        for attempt in range(1, PUSH_TRIES + 1):
            _point_at_this_build(client, image, name)
            try:
                digest = engine.push_image(client, name, username=creds.username or None, password=creds.password,
                                           on_progress=_push_progress(name))
            except RegistryError:
                if attempt == PUSH_TRIES or engine.image_present(client, name):
                    raise
                continue  # another build removed the name after its own push: name ours again
            if image.image_id is None or engine.has_repo_digest(client, image.image_id, digest):
                return digest
            console.warn(f"{name}: another build moved the name while it was pushed; pushing this build's image "
                         "again")
        raise RegistryError(f"{name} kept being moved to another build's image during the push ({PUSH_TRIES} tries)",
                            hint="edgeforge-ext push tries again; the registry's tag may now hold the other build's "
                            "image")
    finally:
        # The name existed only to push (Earthly's own stays). Another build may have taken it for its own
        # push since: leave it then (that build removes it).
        if name != image.ref and (image.image_id is None or engine.image_id(client, name) == image.image_id):
            engine.untag(client, name)


def _point_at_this_build(client: Any, image: ImageRecord, target: str) -> None:
    """Make `target` name the image this build produced (its id from collect), not whatever now carries
    Earthly's name in a shared daemon; builds recorded before ids were kept push by name."""
    from edgeforge_ext import engine

    source = image.image_id or image.ref
    if target == image.ref and (image.image_id is None or engine.image_id(client, image.ref) == image.image_id):
        return
    if image.image_id is not None and engine.image_info(client, image.image_id) is None:
        raise RegistryError(f"the image {image.ref} this build produced ({image.image_id[:19]}) is no longer in "
                            "the Docker daemon", hint="build again")
    engine.tag_image(client, source, target)


def _push_progress(target: str) -> Callable[[str], None] | None:
    """Per-layer push progress on a terminal, or everywhere with -v."""
    if not (console.is_interactive() or console.verbose()):
        return None

    def show(line: str) -> None:
        console.note(f"{target}: {line}")

    return show


def push_again(config: Config) -> tuple[Report, Path]:
    """`edgeforge-ext push`: push what the last build (of config.variant) did not, and complete its
    report: the push step ok, a push-failed build a success, a dated build promoted to `latest`."""
    from edgeforge_ext.build.report import read_report, write_report
    from edgeforge_ext.outputs import last_report_dir, promote

    report_dir = last_report_dir(config.output_dir, config.variant)
    console.note(f"pushing the images of the build in {report_dir}")
    report = read_report(report_dir)
    try:
        push_images(config, report)
        step = next((s for s in report.steps if s.name == "push"), None)
        if step is not None and step.status in ("failed", "not-run", "skipped"):
            step.status = "ok"  # completed by `edgeforge-ext push`; the report says so
            report.skipped = [name for name in report.skipped if name != "push"]
        if report.status == "push-failed":
            report.status = "success"
            report.error = None
            if report_dir != config.output_dir:  # a dated run: now complete, so `latest` may point at it
                from edgeforge_ext.build.attest import verify_for_promotion

                verify_for_promotion(config, report)
                promote(report_dir.parent, report_dir)
    finally:
        write_report(report, report_dir)
    return report, report_dir
