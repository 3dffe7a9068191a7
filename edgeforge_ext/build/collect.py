"""The collect step: verify what Earthly built and bring it out of the checkout. The ISO is checked
(sha256, user-data inside) and moved into the output directory (0600); each provider image's id is
recorded (Earthly saved it under this work directory's own name), so the push sends exactly the image
this build's Earthly run produced.
"""

from __future__ import annotations

from typing import Any

from edgeforge_ext import console
from edgeforge_ext.build.plan import Plan
from edgeforge_ext.build.report import LOG_NAME
from edgeforge_ext.build.state import Build
from edgeforge_ext.errors import ArtifactError


def collect_step(build: Build) -> None:
    from edgeforge_ext import engine

    plan = build.the_plan()
    if plan.iso_file:
        collect_iso(build, plan)
    if plan.provider_images:
        client = engine.client()
        try:
            collect_images(build, client, plan)
        finally:
            client.close()


def collect_images(build: Build, client: Any, plan: Plan) -> None:
    """Record the id of each provider image this build's Earthly run left in the daemon; the push
    pushes exactly those. Earthly saved them under this work directory's own names (plan.local_ref),
    so another build with the same IMAGE_REGISTRY/IMAGE_REPO cannot have replaced them; the user's
    names are then pointed at them too (in a shared daemon they name the newest build's image).

    Where the names could not be made unique (an Earthfile that uses IMAGE_REGISTRY for more than
    names), another build saving the same names meanwhile makes "which image is ours" unknowable:
    refuse rather than push someone else's image."""
    from edgeforge_ext import engine

    saved = {i.ref: i.saved_as for i in plan.provider_images}
    ids = {ref: engine.image_id(client, name) for ref, name in saved.items()}
    if "earthly" in build.skip:  # --skip earthly: an earlier build's images, maybe under the user's names
        ids = {ref: found or engine.image_id(client, ref) for ref, found in ids.items()}
    missing = [saved[ref] for ref, found in ids.items() if found is None]
    if missing:
        raise ArtifactError("provider images the plan expects are not in the Docker daemon", details=missing)
    if build.earthly_started is not None:
        others = engine.other_builds_of(client, list(saved.values()), since=build.earthly_started - 1,
                                        workdir=str(build.config.workdir))
        if others:
            raise ArtifactError(
                "another build saved provider images with the same names while this one ran, so which "
                "image in the Docker daemon is this build's cannot be told", details=[f"other build: {w}"
                                                                                     for w in others],
                hint="this checkout's Earthfile uses IMAGE_REGISTRY for more than image names, so edgeforge-ext "
                "cannot give each build its own: give concurrent builds different names (--custom-tag, "
                "--image-repo) or run them one after the other, then build again")
    for ref, name in saved.items():
        image_id = ids[ref]
        assert image_id is not None
        if name != ref:
            engine.tag_image(client, image_id, ref)  # the user's name, as `docker images` shows it
    for record in build.report.provider_images:
        record.image_id = ids.get(record.ref)
    for image in plan.provider_images:
        console.info(f"provider image {image.ref} ({str(ids[image.ref])[:19]})")


def collect_iso(build: Build, plan: Plan) -> None:
    """Verify the ISO in the checkout's build/ and move it (mode 0600: it holds the credentials of
    user-data) with its .sha256 into the output directory."""
    from edgeforge_ext.fsutil import artifact_errors, move_into, write_sha256_file
    from edgeforge_ext.iso.step import inspect_collected_iso
    from edgeforge_ext.iso.verify import verify_iso

    assert plan.iso_file is not None
    built = build.config.checkout_dir / "build" / plan.iso_file
    if not built.exists():
        raise ArtifactError(f"the build did not produce {built}",
                            hint=f"the Earthly step writes it: see its log ({build.output_dir / LOG_NAME}); "
                            "with --skip earthly, build/ in the checkout must already hold it")
    sha_file = built.with_name(built.name + ".sha256")
    if not sha_file.exists() and not expects_checksum(plan, bool(build.config.build.uki)):
        # CanvOS's +build-uki-iso writes no .sha256 (its +build-iso does): make it, as sha256sum would.
        with artifact_errors("writing the checksum of", built):
            write_sha256_file(built, sha_file)
        console.note(f"the build wrote no {sha_file.name} (UKI ISOs have none): computed it")
    check = verify_iso(built, build.user_data)
    with artifact_errors("moving the ISO to the output directory", build.output_dir):
        iso = move_into(built, build.output_dir, mode=0o600)
        move_into(sha_file, build.output_dir)
    build.report.iso = {"path": str(iso), "size": check.size, "sha256": check.sha256,
                        "user_data_path": check.user_data_path}
    inspect_collected_iso(build.config, iso, build.user_data, build.report.iso)
    console.info(f"ISO {iso} ({check.size / 1024**2:.1f} MiB, sha256 {check.sha256[:16]}…), "
                 f"user-data inside at {check.user_data_path}")


def expects_checksum(plan: Plan, uki: bool) -> bool:
    """Whether the checkout's ISO target writes `<ISO>.sha256` itself (`RUN sha256sum` in +build-iso;
    none in +build-uki-iso at every CanvOS tag). Unknown trees are expected to."""
    contract = plan.source.contract
    if contract is None:
        return True
    body = contract.earthfile.bodies.get("build-uki-iso" if uki else "build-iso")
    return body is None or any("sha256sum" in line for line in body)
