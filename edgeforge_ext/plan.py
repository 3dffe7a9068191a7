"""Pure planning: what a build will make, with which Earthly invocations, and where images go.

No I/O here: `make_plan` takes the resolved Config and the facts of the CanvOS source and returns a
frozen Plan that `--plan` prints, the pipeline executes, and the report records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeforge_ext.config import Config
from edgeforge_ext.errors import UsageError, ValidationError

EARTHLY_TARGETS = {"all": "build-all-images", "iso": "iso", "provider-images": "build-provider-images"}
PUSH_AUTO = "auto"


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


@dataclass(frozen=True)
class EarthlyRun:
    target: str  # Earthfile target name, without '+'
    build_args: Mapping[str, str]  # passed after the target as --KEY=value
    provider_versions: tuple[str, ...]  # the provider images this run leaves in the daemon
    makes_iso: bool


@dataclass(frozen=True)
class ProviderImage:
    k8s_version: str
    ref: str  # the local name Earthly gives it: IMAGE_REGISTRY/IMAGE_REPO:tag
    tag: str
    push_refs: tuple[str, ...]  # where it will be pushed


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

    @property
    def iso_file(self) -> str | None:
        return f"{self.iso_name}.iso" if self.iso_name else None


def image_tag(pe_version: str, custom_tag: str) -> str:
    """CanvOS: IMAGE_TAG is PE_VERSION-CUSTOM_TAG, or PE_VERSION when CUSTOM_TAG is empty."""
    return f"{pe_version}-{custom_tag}" if custom_tag else pe_version


def provider_ref(config: Config, k8s_version: str, tag: str) -> str:
    return (f"{config['build.image_registry']}/{config.image_repo}:"
            f"{config['build.k8s_distribution']}-{k8s_version}-{tag}")


def external_ref(domain: str, origin_ref: str) -> str:
    """Where the Edge host pulls an image from: the external registry prefixed to the original reference."""
    return f"{domain.rstrip('/')}/{origin_ref}"


def push_destinations(config: Config) -> tuple[str, ...]:
    chosen = tuple(config["push.to"])
    if chosen:
        return chosen
    return ("external",) if config["registry.domain"] else ("origin",)


def make_plan(config: Config, source: Source) -> Plan:
    warnings: list[str] = []
    target = str(config["build.target"])
    pe_version = str(config["build.pe_version"] or source.pe_version or "")
    if not pe_version:
        raise UsageError("PE_VERSION is unknown: check out CanvOS first (edgeforge-ext checkout) or set "
                         "build.pe_version")
    if source.tag and source.pe_version and source.tag != source.pe_version and not config["build.pe_version"]:
        warnings.append(f"CanvOS tag {source.tag} has PE_VERSION {source.pe_version} in its Earthfile; "
                        f"images are tagged with {source.pe_version}")
    versions = _k8s_versions(config, source, target)
    tag = image_tag(pe_version, str(config["build.custom_tag"]))
    runs = _runs(target, versions, pe_version, bool(config["build.all_k8s_versions"]))
    if source.targets is not None:
        missing = sorted({r.target for r in runs} - set(source.targets))
        if missing:
            raise ValidationError(f"the CanvOS Earthfile has no target {', '.join('+' + m for m in missing)}",
                                  hint="check --ref, or your fork's Earthfile (see Earthfile.sample)")
    push_to = push_destinations(config)
    if "external" in push_to and not config["registry.domain"]:
        raise UsageError("--push-to external needs an external registry (--registry DOMAIN)")
    images = []
    for v in versions if target != "iso" else ():
        ref = provider_ref(config, v, tag)
        push_refs = []
        if "origin" in push_to:
            push_refs.append(ref)
        if "external" in push_to:
            push_refs.append(external_ref(str(config["registry.domain"]), ref))
        images.append(ProviderImage(v, ref, tag, tuple(push_refs)))
    _check_refs_valid(images)
    return Plan(
        source=source,
        target=target,
        runs=runs,
        provider_images=tuple(images),
        iso_name=str(config["build.iso_name"]) if target in ("all", "iso") else None,
        pe_version=pe_version,
        image_tag=tag,
        push_enabled=bool(config["push.enabled"]),
        push_to=push_to,
        skip=tuple(config["build.skip"]),
        earthly_image=str(config["earthly.image"]),
        privileged=bool(config["earthly.privileged"]) and not config["earthly.buildkit_host"],
        buildkit_host=str(config["earthly.buildkit_host"]),
        os_pack=os_pack_values(config, pe_version, source),
        warnings=tuple(warnings),
    )


def _k8s_versions(config: Config, source: Source, target: str) -> tuple[str, ...]:
    if target == "iso":
        return tuple(config["build.k8s_versions"][:1])
    distribution = str(config["build.k8s_distribution"])
    if config["build.all_k8s_versions"]:
        if source.k8s_versions is None:
            raise UsageError("--all-k8s-versions needs the CanvOS checkout's k8s_version.json: run "
                             "edgeforge-ext checkout first")
        return tuple(source.k8s_versions.get(distribution, []))
    versions = tuple(dict.fromkeys(config["build.k8s_versions"]))
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
    no_versions = not config["build.k8s_versions"] and not config["build.all_k8s_versions"]
    if str(config["build.target"]) != "iso" and no_versions:
        raise _no_versions(str(config["build.k8s_distribution"]), None)
    if "external" in push_destinations(config) and not config["registry.domain"]:
        raise UsageError("--push-to external needs an external registry (--registry DOMAIN)")


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


def os_pack_values(config: Config, pe_version: str, source: Source) -> dict[str, Any]:
    """The Palette BYOOS layer values (what CanvOS's earthly.sh prints, computed ourselves).

    peVersion is the Earthfile's PE_VERSION, the one baked into the tag, so the URI matches the image."""
    system = {
        "registry": str(config["build.image_registry"]),
        "repo": config.image_repo,
        "k8sDistribution": str(config["build.k8s_distribution"]),
        "osName": str(config["build.os"]),
        "peVersion": pe_version,
        "customTag": str(config["build.custom_tag"]),
        "osVersion": str(config["build.os_version"]),
    }
    uri_tail = "-{{.spectro.pack.edge-native-byoi.options.system.customTag}}" if system["customTag"] else ""
    system["uri"] = ("{{.spectro.pack.edge-native-byoi.options.system.registry}}/"
                     "{{.spectro.pack.edge-native-byoi.options.system.repo}}:"
                     "{{.spectro.pack.edge-native-byoi.options.system.k8sDistribution}}-"
                     "{{.spectro.system.kubernetes.version}}-"
                     "{{.spectro.pack.edge-native-byoi.options.system.peVersion}}" + uri_tail)
    return {
        "pack": {"content": {"images": [{"image": "{{.spectro.pack.edge-native-byoi.options.system.uri}}"}]}},
        "options": {"system": system},
    }


def plan_as_json(plan: Plan, earthly_commands: list[list[str]]) -> dict[str, Any]:
    return {
        "canvos": {"url": plan.source.url, "ref": plan.source.ref, "tag": plan.source.tag,
                   "sha": plan.source.sha, "pe_version": plan.pe_version},
        "target": plan.target,
        "earthly": {"image": plan.earthly_image, "privileged": plan.privileged,
                    "buildkit_host": plan.buildkit_host or None,
                    "commands": [["earthly", *cmd] for cmd in earthly_commands]},
        "iso": plan.iso_file,
        "provider_images": [{"ref": i.ref, "k8s_version": i.k8s_version, "push": list(i.push_refs)}
                            for i in plan.provider_images],
        "push": {"enabled": plan.push_enabled, "to": list(plan.push_to)},
        "skip": list(plan.skip),
        "os_pack": plan.os_pack,
        "warnings": list(plan.warnings),
    }
