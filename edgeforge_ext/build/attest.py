"""`build --attest`: the attest step (the ISO's evidence beside it), the attested push of each provider
image (pushed by digest under a staging tag, signed and attested, verified, and only then given its
final tag), and the check before a nightly build's `latest` moves. The evidence itself is made by the
attest package; this module knows the build."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeforge_ext import __version__, console
from edgeforge_ext.attest.keys import signer_from
from edgeforge_ext.attest.statement import BuildFacts, Dependency
from edgeforge_ext.build.report import ImageRecord, Report
from edgeforge_ext.build.state import Build
from edgeforge_ext.config import Config
from edgeforge_ext.errors import ArtifactError
from edgeforge_ext.secrets import scrub_url

if TYPE_CHECKING:
    from edgeforge_ext.attest.keys import Signer, Verifier
    from edgeforge_ext.attest.rootfs import Contents
    from edgeforge_ext.canvos.build_inputs import BuildInputs
    from edgeforge_ext.canvos.repo import CanvosFacts
    from edgeforge_ext.registry.client import Clients, Credentials

# The one tag in a repository that an attested push moves before the evidence is verified (the Docker
# daemon pushes only by tag). Pull nothing from it: the final tag is the verified one.
STAGING_TAG = "edgeforge-unverified"


# --- the attest step ---------------------------------------------------------------------------------

def attest_step(build: Build) -> str | None:
    from edgeforge_ext.attest.evidence import facts_json

    signer = signer_from(build.config)
    facts = build_facts(build)
    record: dict[str, Any] = {"key_id": signer.verifier.keyid, "facts": facts_json(facts)}
    build.report.attestation = record
    if build.report.iso:
        record["iso"] = attest_iso(Path(build.report.iso["path"]), str(build.report.iso["sha256"]), facts, signer)
    elif build.the_plan().provider_images:
        console.info("no ISO in this build: each provider image is signed and attested when it is pushed")
    return None


def attest_iso(iso: Path, sha256: str, facts: BuildFacts, signer: Signer) -> dict[str, Any]:
    from edgeforge_ext.attest.evidence import write_iso_evidence
    from edgeforge_ext.attest.rootfs import iso_contents
    from edgeforge_ext.attest.verify import verify_iso

    contents = iso_contents(iso)
    if contents.note:
        console.warn(f"ISO SBOM: {contents.note}")
    files = write_iso_evidence(iso, sha256, facts, contents, signer)
    result = verify_iso(iso, signer.verifier)  # what `verify` will check, checked before anyone relies on it
    if not result.ok:
        raise ArtifactError(f"the evidence just written for {iso.name} does not verify", details=result.problems)
    console.info(f"signed {files.provenance.name} and {files.sbom.name} ({len(contents.packages)} packages) "
                 f"with key {signer.verifier.keyid[:19]}…")
    return {"provenance": str(files.provenance), "sbom": str(files.sbom),
            "envelopes": [str(files.provenance_envelope), str(files.sbom_envelope)],
            "packages": len(contents.packages), "packages_from": contents.read_from or contents.note}


def build_facts(build: Build) -> BuildFacts:
    """What the provenance says: the parameters (no secret: URLs without credentials, no .arg values),
    and every input by digest."""
    from edgeforge_ext.attest.evidence import rfc3339

    config, plan, canvos = build.config, build.the_plan(), build.report.canvos
    url = scrub_url(str(canvos.get("url") or config.canvos.url))
    parameters: dict[str, Any] = {
        "canvos": {"url": url, "ref": canvos.get("ref", ""), "tag": canvos.get("tag", "")},
        "target": plan.target, "earthlyTargets": [run.target for run in plan.runs], "isoName": plan.iso_name or "",
        "peVersion": plan.pe_version, "imageTag": plan.image_tag, "arch": config.build.arch, "os": config.build.os,
        "osVersion": config.build.os_version, "k8sDistribution": config.build.k8s_distribution,
        "k8sVersions": [i.k8s_version for i in plan.provider_images], "uki": bool(config.build.uki),
        "fips": bool(config.build.fips_enabled),
    }
    deps = [Dependency("CanvOS", {"gitCommit": str(canvos.get("sha", ""))},
                       f"git+{url}@{canvos.get('tag') or canvos.get('ref') or ''}")]
    deps.append(_earthly_dependency(plan.earthly_image))
    base = str(config.build.base_image)
    if base:
        pinned = base.partition("@sha256:")[2]
        deps.append(Dependency("BASE_IMAGE", {"sha256": pinned} if pinned else {}, base,
                               {} if pinned else {"digest": "not pinned: resolved by BuildKit inside Earthly"}))
    deps.extend(_build_inputs(config, build.facts))
    deps.append(Dependency(".arg", {"sha256": hashlib.sha256(_arg_text(build).encode()).hexdigest()}, "",
                           {"content": "omitted: hash only"}))
    if build.user_data:
        # user-data holds the registry password and the registration token: its hash, never its content.
        deps.append(Dependency("user-data", {"sha256": hashlib.sha256(build.user_data).hexdigest()}, "",
                               {"content": "omitted: holds credentials"}))
    started = build.earthly_started or time.time()
    return BuildFacts(parameters, tuple(deps), build.run_id, rfc3339(started), rfc3339(time.time()), __version__)


def _build_inputs(config: Config, facts: CanvosFacts | None) -> list[Dependency]:
    """The images the CanvOS build pulled for itself: the list `images list --build-inputs` gives (read from
    the Earthfile of the commit this build checked out, `facts`, for these options), by the same function."""
    from edgeforge_ext.canvos.sources import build_inputs
    from edgeforge_ext.registry.client import Clients, credentials_for

    inputs = build_inputs(config, facts)
    if not config.build.inputs_registry:
        return build_input_dependencies(config, inputs, None)
    with Clients(lambda host: credentials_for(config, host)) as clients:
        return build_input_dependencies(config, inputs, clients)


def build_input_dependencies(config: Config, inputs: BuildInputs, clients: Clients | None) -> list[Dependency]:
    """Each build input as a dependency. With `build.inputs_registry` the build pulled them from there (the
    air-gap list): each by the digest that registry holds (`clients` asks it). Without it BuildKit resolved
    them from their sources inside Earthly, where this tool cannot see the digest it got: by reference,
    and the provenance says so rather than guess. The Earthly image itself is the `earthly` dependency."""
    from edgeforge_ext.canvos.build_inputs import EARTHLY_CONTAINER
    from edgeforge_ext.errors import RegistryError
    from edgeforge_ext.registry.images import build_input_location, parse_ref

    deps: list[Dependency] = []
    unresolved: list[str] = []
    for image in inputs.images:
        if image.uses == (EARTHLY_CONTAINER,):
            continue
        uses = {"uses": "; ".join(image.uses)}
        if clients is None:
            deps.append(Dependency(image.ref, {}, image.ref, {
                **uses, "digest": "not pinned: resolved by BuildKit inside Earthly from its source "
                "(build.inputs_registry pins the build to the digests of a registry you fill)"}))
            continue
        pulled_from = build_input_location(config, image.ref)
        ref = parse_ref(pulled_from)
        try:
            digest = clients.get(ref.domain).manifest_digest(ref)
            why = "" if digest else f"not in {ref.domain}"
        except RegistryError as exc:
            digest, why = None, exc.message
        if digest is None:
            unresolved.append(f"{pulled_from}: {why}")
            deps.append(Dependency(image.ref, {}, pulled_from, {**uses, "digest": f"not resolved: {why}"}))
        else:
            deps.append(Dependency(image.ref, {"sha256": digest.removeprefix("sha256:")}, pulled_from,
                                   {**uses, "digestOf": "manifest, as the inputs registry holds it"}))
    if unresolved:
        console.warn(f"the provenance names {len(unresolved)} build input(s) without a digest: "
                     + "; ".join(unresolved))
    return deps


def _earthly_dependency(image: str) -> Dependency:
    """The Earthly image by its manifest digest (a repo digest) when the daemon knows one, else by its id
    (the digest of its configuration): one of them always, the image ran."""
    from edgeforge_ext import engine

    image_id, repo_digests = engine.local_images([image]).get(image, (None, ()))
    repository = image.rsplit("@", 1)[0].rsplit(":", 1)[0] if "/" in image or ":" in image else image
    manifest = next((d.split("@", 1)[1] for d in repo_digests if d.split("@", 1)[0] == repository), None)
    manifest = manifest or next((d.split("@", 1)[1] for d in repo_digests if "@" in d), None)
    if manifest:
        return Dependency("earthly", {"sha256": manifest.removeprefix("sha256:")}, image, {"digestOf": "manifest"})
    if image_id:
        return Dependency("earthly", {"sha256": image_id.removeprefix("sha256:")}, image,
                          {"digestOf": "image configuration (the image id; it has no registry digest)"})
    return Dependency("earthly", {}, image, {"digest": "the image is no longer in the Docker daemon"})


def _arg_text(build: Build) -> str:
    """The public .arg Earthly read (the rendered one; with --skip render the checkout's own)."""
    if build.rendered is not None and "render" not in build.skip:
        return str(build.rendered.arg_text)
    try:
        return (build.config.checkout_dir / ".arg").read_text(encoding="utf-8")
    except OSError:
        return ""


# --- the attested push ---------------------------------------------------------------------------

def staging_ref(target: str) -> str:
    from edgeforge_ext.registry.images import parse_ref

    ref = parse_ref(target)
    return f"{ref.domain}/{ref.path}:{STAGING_TAG}"


class ImageAttester:
    """Signs, attests and verifies each pushed image, then gives it its final tag. The SBOM of an image is
    read once from the Docker daemon (by the image's id), whatever the number of targets."""

    def __init__(self, config: Config, report: Report) -> None:
        from edgeforge_ext.attest.evidence import facts_from_json

        self.signer = signer_from(config)
        attestation = report.attestation or {}
        facts = attestation.get("facts")
        if not facts:  # a build made without --attest, pushed now with it: what its report says
            canvos = report.canvos
            facts = {"parameters": {"canvos": {k: canvos.get(k, "") for k in ("ref", "tag")}},
                     "dependencies": [{"name": "CanvOS", "digest": {"gitCommit": canvos.get("sha", "")}}],
                     "builder_version": __version__}
        self.facts = facts_from_json(facts)
        self._contents: dict[str, Contents] = {}

    def contents(self, docker: Any, image: ImageRecord) -> Contents:
        from edgeforge_ext.attest.rootfs import image_contents

        key = image.image_id or image.ref
        if key not in self._contents:
            found = image_contents(docker, key, image.ref)
            if found.note:
                console.warn(f"SBOM of {image.ref}: {found.note}")
            self._contents[key] = found
        return self._contents[key]

    def promote(self, docker: Any, image: ImageRecord, target: str, digest: str, creds: Credentials) -> None:
        """Attach the signature and attestations of `digest` (pushed under the staging tag), verify them from
        the registry, and only then put the image under `target`'s tag."""
        from edgeforge_ext.attest import cosign
        from edgeforge_ext.attest.evidence import image_layers
        from edgeforge_ext.attest.verify import verify_image
        from edgeforge_ext.registry.client import RegistryClient
        from edgeforge_ext.registry.images import parse_ref

        ref = parse_ref(target)
        repository = f"{ref.domain}/{ref.path}"
        contents = self.contents(docker, image)
        client = RegistryClient(ref.domain, creds)
        try:
            manifest = client.get_manifest(ref.path, digest)
            if manifest is None:
                raise ArtifactError(f"{repository}@{digest} is not in the registry after its push")
            sig, att = image_layers(repository, digest, self.facts, contents, self.signer, image.k8s_version)
            cosign.attach(client, ref.path, cosign.tag_for(digest, "sig"), sig)
            cosign.attach(client, ref.path, cosign.tag_for(digest, "att"), att)
            result = verify_image(client, ref, self.signer.verifier, digest)
            if not result.ok:
                raise ArtifactError(f"the evidence of {repository}@{digest} does not verify: {ref.tag} not moved",
                                    details=result.problems)
            client.put_manifest(ref.path, str(ref.tag), manifest[0], manifest[1])
        finally:
            client.close()
        console.info(f"signed and attested {repository}@{digest[:19]}… ({len(contents.packages)} packages), "
                     f"verified, tagged {ref.tag}")


# --- before promotion ---------------------------------------------------------------------------------

def verify_for_promotion(config: Config, report: Report) -> None:
    """A nightly build's `latest` moves only when its evidence verifies: the ISO's files beside it, and each
    attested push's .sig/.att in its registry (exit 8 naming what failed)."""
    if not config.attest.enabled:
        return
    from edgeforge_ext.attest.verify import verify_iso

    verifier = signer_from(config).verifier
    problems: list[str] = []
    if report.iso:
        result = verify_iso(Path(report.iso["path"]), verifier)
        problems += [f"{Path(result.target).name}: {p}" for p in result.problems]
    for image in report.provider_images:
        for pushed in image.pushed:
            if pushed.attested:
                problems += [f"{pushed.ref}: {p}" for p in _verify_pushed(config, pushed.ref, pushed.digest, verifier)]
    if problems:
        raise ArtifactError("the build's evidence does not verify: not promoted", details=problems)


def _verify_pushed(config: Config, target: str, digest: str, verifier: Verifier) -> list[str]:
    from edgeforge_ext.attest.verify import verify_image
    from edgeforge_ext.registry.client import RegistryClient, credentials_for
    from edgeforge_ext.registry.images import parse_ref

    ref = parse_ref(target)
    client = RegistryClient(ref.domain, credentials_for(config, ref.domain))
    try:
        return verify_image(client, ref, verifier, digest).problems
    finally:
        client.close()
