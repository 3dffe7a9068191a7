"""Pure planning: what a build will make, with which Earthly invocations, and where images go.

No I/O here: `make_plan` takes the resolved Config and the facts of the CanvOS source and returns a
frozen Plan that `--plan` prints, the pipeline executes, and the report records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeforge_ext.argfile import ArgPlan, plan_args
from edgeforge_ext.canvos.contract import BuildContract, applying_host_steps
from edgeforge_ext.config import Config
from edgeforge_ext.errors import PRIVILEGED_WAYS_OUT, EngineError, UsageError, ValidationError
from edgeforge_ext.registry.images import has_external_registry, pull_location
from edgeforge_ext.settings import DEFAULT_EARTHLY_IMAGE, EARTHLY_TARGETS


@dataclass(frozen=True)
class Source:
    """What is known about the CanvOS source (from a checkout, or from ls-remote for --plan)."""

    url: str
    ref: str
    tag: str | None = None
    sha: str | None = None
    pe_version: str | None = None  # the Earthfile's ARG PE_VERSION
    describe: str | None = None
    k8s_versions: Mapping[str, list[str]] | None = None
    targets: tuple[str, ...] | None = None
    contract: BuildContract | None = None  # the checkout's build contract (None: not read)


@dataclass(frozen=True)
class EarthlyRun:
    target: str  # Earthfile target name, without '+'
    build_args: Mapping[str, str]  # passed after the target as --KEY=value
    provider_versions: tuple[str, ...]  # the provider images this run leaves in the daemon
    makes_iso: bool


@dataclass(frozen=True)
class ProviderImage:
    k8s_version: str
    ref: str  # the user's name for it: IMAGE_REGISTRY/IMAGE_REPO:tag (what os-pack.yaml and `origin` say)
    tag: str
    push_refs: tuple[str, ...]  # where it will be pushed
    local_ref: str = ""  # the name this build's Earthly run saves it under (see local_image_registry)

    @property
    def saved_as(self) -> str:
        return self.local_ref or self.ref


@dataclass(frozen=True)
class Plan:
    source: Source
    target: str
    runs: tuple[EarthlyRun, ...]
    provider_images: tuple[ProviderImage, ...]
    iso_name: str | None
    pe_version: str
    image_tag: str
    push_enabled: bool
    push_to: tuple[str, ...]
    skip: tuple[str, ...]
    earthly_image: str
    privileged: bool
    buildkit_host: str
    os_pack: Mapping[str, Any]
    warnings: tuple[str, ...] = field(default=())
    earthly_image_from: str = ""  # where the image came from: "earthly.image", "earthly.sh", "default"
    args: ArgPlan = field(default_factory=lambda: ArgPlan({}))
    arg_problems: tuple[str, ...] = ()  # what render refuses (exit 5), all at once, with user-data's
    os_pack_text: str = ""  # os-pack.yaml as the tag's earthly.sh prints it
    # Build args given to every Earthly run after the target, over .arg: the work directory's own
    # IMAGE_REGISTRY (local_image_registry). Not part of the inputs' fingerprint: it names, never changes.
    local_args: Mapping[str, str] = field(default_factory=dict)
    buildkit_config: str = ""  # buildkitd.toml lines for BuildKit (registry mirrors of build.inputs_registry)

    @property
    def iso_file(self) -> str | None:
        return f"{self.iso_name}.iso" if self.iso_name else None


def image_tag(pe_version: str, custom_tag: str) -> str:
    """CanvOS: IMAGE_TAG is PE_VERSION-CUSTOM_TAG, or PE_VERSION when CUSTOM_TAG is empty."""
    return f"{pe_version}-{custom_tag}" if custom_tag else pe_version


def provider_ref(config: Config, k8s_version: str, tag: str) -> str:
    return (f"{config.build.image_registry}/{config.image_repo}:"
            f"{config.build.k8s_distribution}-{k8s_version}-{tag}")


# Where provider images live in the daemon between Earthly and the push. `.invalid` is reserved (RFC 2606):
# the name can never resolve, so an accidental `docker push` of it fails instead of going anywhere.
LOCAL_REGISTRY = "edgeforge.invalid"


def workdir_digest(workdir: Path) -> str:
    """Names what belongs to one work directory in a shared daemon (cache volume, containers, images)."""
    return hashlib.sha256(str(Path(workdir).resolve()).encode()).hexdigest()[:10]


def local_image_registry(workdir: Path) -> str:
    """The IMAGE_REGISTRY this work directory's Earthly runs save provider images under.

    Two builds on one daemon with the same IMAGE_REGISTRY/IMAGE_REPO would otherwise save the same names
    and could swap images. Only one build runs in a work directory at a time (its lock), so a name per
    work directory is unique among running builds; it is also the same from one build to the next there,
    so BuildKit's cache (which sees build args in the environment of RUN steps) stays warm."""
    return f"{LOCAL_REGISTRY}/{workdir_digest(workdir)}"


def names_only_images(contract: BuildContract | None) -> bool:
    """Whether the checkout's Earthfile uses IMAGE_REGISTRY for nothing but the names it saves images
    under (CanvOS at every tag: `ARG IMAGE_PATH=$IMAGE_REGISTRY/$IMAGE_REPO:...`, `SAVE IMAGE`), so
    giving each build its own value changes no byte of the images or the ISO. Unknown trees: no."""
    if contract is None:
        return False
    earthfile = contract.earthfile
    path = earthfile.base_default("IMAGE_PATH") or ""
    if "IMAGE_REGISTRY" not in earthfile.declared or not path.startswith("$IMAGE_REGISTRY/$IMAGE_REPO:"):
        return False
    for lines in earthfile.bodies.values():
        for line in lines:
            if "IMAGE_REGISTRY" in line and not line.startswith(("ARG ", "SAVE IMAGE")):
                return False  # used by a RUN, ENV, COPY...: it may end up inside what is built
    return True


def push_destinations(config: Config) -> tuple[str, ...]:
    """origin (the name Earthly gives the image) and/or external (where the Edge host pulls it from);
    by default external when user-data names an external registry, else origin."""
    chosen = tuple(config.push.to)
    if chosen:
        return chosen
    return ("external",) if has_external_registry(config) else ("origin",)


def earthly_image(config: Config, contract: BuildContract | None) -> tuple[str, str]:
    """(image, where it came from): --earthly-image wins, else the image the checked-out earthly.sh
    pins (it differs by tag: v0.8.5 from gcr.io at v4.4.x, v0.8.15 from us-docker.pkg.dev later)."""
    if config.earthly.image:
        return str(config.earthly.image), "earthly.image"
    if contract is not None and contract.earthly_image:
        return contract.earthly_image, "earthly.sh"
    return DEFAULT_EARTHLY_IMAGE, "default"


# The only two ways to build: Earthly's own BuildKit needs a privileged container (the image's
# entrypoint refuses otherwise), or BuildKit runs elsewhere and Earthly connects to it unprivileged.


def check_earthly_mode(config: Config) -> None:
    """Earthly's own BuildKit needs a privileged container: the image's entrypoint exits 1 ("Container
    appears to be running unprivileged", earthly-entrypoint.sh v0.8.15 ~28-34) unless a remote
    BuildKit is used. So `earthly.privileged = false` alone cannot build: refuse it up front."""
    if not config.earthly.privileged and not config.earthly.buildkit_host:
        raise EngineError(
            "earthly.privileged = false needs a remote BuildKit: Earthly's own BuildKit only runs in a "
            "privileged container (its entrypoint exits 1 otherwise)",
            hint=PRIVILEGED_WAYS_OUT)
    tls = config.earthly.buildkit_tls
    if any(tls) and not all(tls):
        raise UsageError("--buildkit-tls-ca, --buildkit-tls-cert and --buildkit-tls-key go together (mTLS)")
    if any(tls) and not str(config.earthly.buildkit_host).startswith("tcp://"):
        raise UsageError("--buildkit-tls-* apply to a tcp:// remote BuildKit (--buildkit-host tcp://HOST:8372)")


def make_plan(config: Config, source: Source) -> Plan:
    warnings: list[str] = []
    check_earthly_mode(config)
    target = str(config.build.target)
    pe_version = str(config.build.pe_version or source.pe_version or "")
    if not pe_version:
        raise UsageError("PE_VERSION is unknown: check out CanvOS first (edgeforge-ext checkout) or set "
                         "build.pe_version")
    if source.tag and source.pe_version and source.tag != source.pe_version and not config.build.pe_version:
        warnings.append(f"CanvOS tag {source.tag} has PE_VERSION {source.pe_version} in its Earthfile; "
                        f"images are tagged with {source.pe_version}")
    versions = _k8s_versions(config, source, target)
    tag = image_tag(pe_version, str(config.build.custom_tag))
    runs = _runs(target, versions, pe_version, bool(config.build.all_k8s_versions))
    if source.targets is not None:
        missing = sorted({r.target for r in runs} - set(source.targets))
        if missing:
            raise ValidationError(f"the CanvOS Earthfile has no target {', '.join('+' + m for m in missing)}",
                                  hint="check --ref, or your fork's Earthfile (see Earthfile.sample)")
    push_to = push_destinations(config)
    if "external" in push_to and not has_external_registry(config):
        raise UsageError("--push-to external needs an external registry (--registry DOMAIN)")
    unique = names_only_images(source.contract)
    local_registry = local_image_registry(config.workdir) if unique else ""
    images = []
    for v in versions if target != "iso" else ():
        ref = provider_ref(config, v, tag)
        local_ref = (f"{local_registry}/{config.image_repo}:{config.build.k8s_distribution}-{v}-{tag}"
                     if unique else ref)
        push_refs = []
        if "origin" in push_to:
            push_refs.append(ref)
        if "external" in push_to:
            # The same rule `images rewrite` applies (images.pull_location): one registry prefixes the
            # reference, mapping rules replace the matching prefix, an unmatched image stays at its source.
            pulled = pull_location(config, ref)
            if pulled not in push_refs:
                push_refs.append(pulled)
        images.append(ProviderImage(v, ref, tag, tuple(push_refs), local_ref))
    _check_refs_valid(images)
    arg_problems: list[str] = []
    args = plan_args(config, pe_version=pe_version, k8s_versions=source.k8s_versions, problems=arg_problems,
                     warnings=warnings, contract=source.contract)
    _check_host_steps(source.contract, runs, args, warnings)
    image, image_from = earthly_image(config, source.contract)
    if image_from == "default" and source.contract is not None:
        warnings.append(f"the checkout's earthly.sh names no Earthly image this tool understands: using {image}")
    buildkit_config = ""
    if config.build.inputs_registry:
        image, buildkit_config = _from_inputs_registry(config, source, args, image, image_from, warnings)
    privileged = bool(config.earthly.privileged) and not config.earthly.buildkit_host
    return Plan(
        source=source,
        target=target,
        runs=runs,
        provider_images=tuple(images),
        iso_name=str(config.build.iso_name) if target in ("all", "iso") else None,
        pe_version=pe_version,
        image_tag=tag,
        push_enabled=bool(config.push.enabled),
        push_to=push_to,
        skip=tuple(config.build.skip),
        earthly_image=image,
        privileged=privileged,
        buildkit_host=str(config.earthly.buildkit_host),
        os_pack=os_pack_values(config, pe_version, source),
        warnings=tuple(dict.fromkeys(warnings)),
        earthly_image_from=image_from,
        args=args,
        arg_problems=tuple(arg_problems),
        os_pack_text=os_pack_text(config, pe_version, source),
        local_args={"IMAGE_REGISTRY": local_registry} if unique else {},
        buildkit_config=buildkit_config,
    )


def _from_inputs_registry(config: Config, source: Source, args: ArgPlan, image: str, image_from: str,
                          warnings: list[str]) -> tuple[str, str]:
    """With build.inputs_registry: the Earthly image from there (unless --earthly-image names one), and the
    BuildKit registry mirrors for the images no Earthfile ARG moves (argfile.py set the ARGs)."""
    from edgeforge_ext.canvos.build_inputs import find_build_inputs
    from edgeforge_ext.registry.images import build_input_location

    if image_from != "earthly.image":
        image = build_input_location(config, image)
    if source.contract is None:
        warnings.append("build.inputs_registry: no checkout to read the Earthfile from: the build's own images "
                        "are not redirected")
        return image, ""
    inputs_registry = config.build.inputs_registry
    found = find_build_inputs(source.contract, args.values, EARTHLY_TARGETS[str(config.build.target)], None,
                              inputs_registry, insecure=_insecure(config, inputs_registry))
    warnings.extend(w for w in found.warnings if "fetches from" in w)
    if found.buildkit_config and config.earthly.buildkit_host:
        warnings.append("build.inputs_registry with a remote BuildKit: add to its buildkitd.toml: "
                        + found.buildkit_config.replace("\n", "; "))
    return image, found.buildkit_config


def _insecure(config: Config, registry: str) -> bool:
    """Plain HTTP for a registry: marked insecure in the config, or on loopback (as Docker does)."""
    from edgeforge_ext.registry.client import is_loopback, registry_host

    host = registry_host(registry)
    return is_loopback(host) or any(registry_host(e.domain) == host and e.insecure for e in config.all_registries())


def _check_host_steps(contract: BuildContract | None, runs: tuple[EarthlyRun, ...], args: ArgPlan,
                      warnings: list[str]) -> None:
    """Refuse options for which the tag's earthly.sh does work on the host that this tool does not do
    (main: the AMD GPU driver prebuild; the MAAS image): the build would silently differ."""
    if contract is None:
        return
    refused: list[str] = []
    for run in runs:
        values = {**args.values, **{k: v for k, v in run.build_args.items() if v}}
        certain, unknown = applying_host_steps(contract, run.target, values)
        for step in certain:
            refused.append(f"earthly.sh line {step.line}: {step.summary} (when {step.condition.text})")
        for step in unknown:
            warnings.append(f"earthly.sh line {step.line} may do host-side work edgeforge-ext does not do: "
                            f"{step.summary} (when {step.condition.text})")
    if refused:
        raise ValidationError(
            "the requested options need work CanvOS's earthly.sh does on the host around Earthly, which "
            "edgeforge-ext does not do", details=list(dict.fromkeys(refused)),
            hint="change the options that trigger it, or build this variant with CanvOS's earthly.sh")


def _k8s_versions(config: Config, source: Source, target: str) -> tuple[str, ...]:
    if target == "iso":
        return tuple(config.build.k8s_versions[:1])
    distribution = str(config.build.k8s_distribution)
    if config.build.all_k8s_versions:
        if source.k8s_versions is None:
            raise UsageError("--all-k8s-versions needs the CanvOS checkout's k8s_version.json: run "
                             "edgeforge-ext checkout first")
        return tuple(source.k8s_versions.get(distribution, []))
    versions = tuple(dict.fromkeys(config.build.k8s_versions))
    if not versions:
        count = len(source.k8s_versions.get(distribution, [])) if source.k8s_versions else None
        raise _no_versions(distribution, count)
    return versions


def _no_versions(distribution: str, count: int | None) -> UsageError:
    every = f"all {count} {distribution} versions" if count else f"every {distribution} version"
    return UsageError(
        f"no --k8s-version given: CanvOS would build {every} listed in "
        "k8s_version.json (2-5 GB each)",
        hint="pass --k8s-version X.Y.Z (repeatable), or --all-k8s-versions if you really want them all",
    )


def check_config(config: Config) -> None:
    """What make_plan refuses that the configuration alone decides, checked before any step runs (a
    missing flag is then not reported after a slow preflight, or as a preflight failure)."""
    check_earthly_mode(config)
    no_versions = not config.build.k8s_versions and not config.build.all_k8s_versions
    if str(config.build.target) != "iso" and no_versions:
        raise _no_versions(str(config.build.k8s_distribution), None)
    if "external" in push_destinations(config) and not has_external_registry(config):
        raise UsageError("--push-to external needs an external registry (--registry DOMAIN)")
    if config.attest.enabled:  # the key is there and its password right: known now, not after the build
        from edgeforge_ext.attest.keys import signer_from

        signer_from(config)


def _runs(target: str, versions: tuple[str, ...], pe_version: str, all_versions: bool) -> tuple[EarthlyRun, ...]:
    base = {"PE_VERSION": pe_version}
    if all_versions:
        # One invocation with K8S_VERSION empty: CanvOS itself loops over k8s_version.json.
        earthly_target = EARTHLY_TARGETS[target]
        return (EarthlyRun(earthly_target, {**base, "K8S_VERSION": ""}, versions, target == "all"),)
    if target == "iso":
        args = dict(base)
        if versions:
            args["K8S_VERSION"] = versions[0]
        return (EarthlyRun("iso", args, (), True),)
    runs = []
    for i, v in enumerate(versions):
        # The ISO is built once, with the first version; the others are provider images only.
        earthly_target = "build-all-images" if target == "all" and i == 0 else "build-provider-images"
        runs.append(EarthlyRun(earthly_target, {**base, "K8S_VERSION": v}, (v,), earthly_target == "build-all-images"))
    return tuple(runs)


def _check_refs_valid(images: list[ProviderImage]) -> None:
    problems = []
    for image in images:
        for ref in image.push_refs:
            name = ref.rsplit(":", 1)[0]
            path_parts = name.split("/")[1:]
            bad = [p for p in path_parts if ":" in p]
            if bad:
                problems.append(f"{ref}: the path component {bad[0]!r} holds a port, which is not a valid image "
                                "reference; use an IMAGE_REGISTRY without a port for external pushes, or "
                                "--push-to origin")
    if problems:
        raise ValidationError("provider image references would be invalid", details=problems)


def os_pack_text(config: Config, pe_version: str, source: Source) -> str:
    """os-pack.yaml: what the tag's earthly.sh prints after a provider-image build, for these values.

    peVersion is the Earthfile's PE_VERSION, the one baked into the tag, so the URI matches the image."""
    from edgeforge_ext.build.os_pack import os_pack_text as render_text

    values = {
        "IMAGE_REGISTRY": str(config.build.image_registry),
        "IMAGE_REPO": config.image_repo,
        "K8S_DISTRIBUTION": str(config.build.k8s_distribution),
        "OS_DISTRIBUTION": str(config.build.os),
        "PE_VERSION": pe_version,
        "CUSTOM_TAG": str(config.build.custom_tag),
        "OS_VERSION": str(config.build.os_version),
    }
    script = source.contract.script if source.contract is not None else None
    return render_text(values, script.os_pack_lines if script is not None else ())


def os_pack_values(config: Config, pe_version: str, source: Source) -> dict[str, Any]:
    """The same values as data (the report's `os_pack`): flat dotted keys under `options`."""
    from edgeforge_ext.build.os_pack import os_pack_values as parse

    return parse(os_pack_text(config, pe_version, source))


def plan_as_json(plan: Plan, earthly_commands: list[list[str]], earthly_inputs: Mapping[str, Any]) -> dict[str, Any]:
    contract = plan.source.contract
    return {
        "canvos": {"url": plan.source.url, "ref": plan.source.ref, "tag": plan.source.tag,
                   "sha": plan.source.sha, "pe_version": plan.pe_version},
        "target": plan.target,
        "earthly": {"image": plan.earthly_image, "image_from": plan.earthly_image_from,
                    "privileged": plan.privileged, "buildkit_host": plan.buildkit_host or None,
                    "buildkit_config": plan.buildkit_config,
                    "commands": [["earthly", *cmd] for cmd in earthly_commands], **{
                        k: v for k, v in earthly_inputs.items() if k not in ("image", "image_from")}},
        "arg_file": dict(plan.args.values),
        "private_args": list(plan.args.private),
        "left_to_earthfile_defaults": list(plan.args.defaulted),
        "contract": contract.as_json() if contract is not None else None,
        "iso": plan.iso_file,
        "provider_images": [{"ref": i.ref, "k8s_version": i.k8s_version, "push": list(i.push_refs),
                             "saved_as": i.saved_as}
                            for i in plan.provider_images],
        "push": {"enabled": plan.push_enabled, "to": list(plan.push_to)},
        "skip": list(plan.skip),
        "os_pack": plan.os_pack,
        "warnings": list(plan.warnings),
    }
