"""The images a CanvOS build pulls for itself, read from the checked-out Earthfile (earthfile_eval.py) for the
chosen options, and how to make the build pull them from an internal registry instead (`build.inputs_registry`):

- through the Earthfile's own ARGs: each image's registry comes from an ARG (`SPECTRO_PUB_REPO` for most,
  `OSBUILDER_IMAGE`, `SPECTRO_THIRD_PARTY_IMAGE`); that ARG is given `HOST/PREFIX/<its value>`, which puts
  every image derived from it where `images mirror --build-inputs` copies it (the prefix rule of
  images.build_input_location). The Earthfile is then walked again with those values, to check that every
  image moved;
- through BuildKit's registry mirrors for images no ARG can move (written literally in a `FROM`):
  `[registry."docker.io"] mirrors = ["HOST/PREFIX/docker.io"]` makes BuildKit ask
  `HOST/v2/PREFIX/docker.io/<repository>/…` (BuildKit's resolver joins the mirror's path under /v2), which
  is the same layout.
Pure: the contract and values in, the list and the settings out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from edgeforge_ext.canvos.contract import BuildContract
from edgeforge_ext.canvos.earthfile_eval import Evaluation, evaluate

EARTHLY_CONTAINER = "the Earthly container (pulled by edgeforge-ext through the Docker daemon)"


@dataclass(frozen=True)
class BuildInput:
    ref: str  # normalised: domain/path:tag
    uses: tuple[str, ...]  # "+build-iso FROM $OSBUILDER_IMAGE"
    carried_by: str | None  # the ARG whose value holds its registry; None: no ARG can move it

    def as_json(self) -> dict[str, object]:
        return {"ref": self.ref, "uses": list(self.uses), "carried_by": self.carried_by}


@dataclass(frozen=True)
class BuildInputs:
    images: tuple[BuildInput, ...]
    overrides: Mapping[str, str] = field(default_factory=dict)  # build args that move the pulls
    mirrors: Mapping[str, str] = field(default_factory=dict)  # registry host -> BuildKit mirror
    buildkit_config: str = ""  # buildkitd.toml lines (EARTHLY_ADDITIONAL_BUILDKIT_CONFIG)
    warnings: tuple[str, ...] = ()


def _normalise(ref: str) -> str | None:
    from edgeforge_ext.errors import ValidationError
    from edgeforge_ext.registry.images import parse_ref

    try:
        return str(parse_ref(ref))
    except ValidationError:
        return None


def _collect(evaluation: Evaluation, warnings: list[str]) -> dict[str, BuildInput]:
    found: dict[str, BuildInput] = {}
    for use in evaluation.images:
        where = f"{use.target} {use.how} {use.text}"
        ref = _normalise(use.ref) if use.complete else None
        if ref is None:
            warnings.append(f"{where}: evaluates to {use.ref!r}, which is not an image reference this reader can "
                            "complete; it is not listed")
            continue
        known = found.get(ref)
        uses = (*known.uses, where) if known else (where,)
        found[ref] = BuildInput(ref, tuple(dict.fromkeys(uses)), use.root if known is None else known.carried_by)
    for image in found.values():
        if image.carried_by is None:
            warnings.append(f"{image.ref} is named literally ({image.uses[0]}): no ARG of the Earthfile can send "
                            "its pull elsewhere, only BuildKit's registry mirrors can (set with --inputs-registry)")
    for fetch in evaluation.runs:
        warnings.append(f"{fetch.target} has a RUN step that fetches from ${fetch.variable} ({fetch.value}) itself "
                        "(not through BuildKit): that content is not an image list; mirror it separately and set "
                        f"{fetch.variable} (--build-arg) for a build without a route to it")
    return found


def find_build_inputs(contract: BuildContract, values: Mapping[str, str], target: str, earthly_image: str | None,
                      inputs_registry: str = "", insecure: bool = False) -> BuildInputs:
    """The images the build of `+target` pulls with these build args (the .arg values), and with
    `inputs_registry` the build args and BuildKit mirrors that send those pulls there."""
    warnings: list[str] = []
    evaluation = evaluate(contract.earthfile, contract.dockerfile, target, values)
    warnings.extend(evaluation.warnings)
    found = _collect(evaluation, warnings)
    images = list(found.values())
    if earthly_image:
        images.append(BuildInput(_normalise(earthly_image) or earthly_image, (EARTHLY_CONTAINER,), None))
    if not inputs_registry:
        return BuildInputs(tuple(images), warnings=tuple(dict.fromkeys(warnings)))
    prefix = inputs_registry.strip().rstrip("/")
    for scheme in ("https://", "http://"):
        prefix = prefix.removeprefix(scheme)
    overrides: dict[str, str] = {}
    for use in evaluation.images:
        if use.root is None or use.root_value is None or use.root_value.startswith(prefix + "/"):
            continue
        moved = f"{prefix}/{use.root_value}"
        if overrides.setdefault(use.root, moved) != moved:
            warnings.append(f"{use.root} has two values where images are pulled ({use.root_value} in {use.target}): "
                            f"only {overrides[use.root]} is redirected")
    again = evaluate(contract.earthfile, contract.dockerfile, target, {**values, **overrides})
    mirrors: dict[str, str] = {}
    for use in again.images:
        ref = _normalise(use.ref) if use.complete else None
        if ref is None or ref.startswith(prefix + "/"):
            continue
        host = ref.split("/", 1)[0]
        mirrors[host] = f"{prefix}/{host}"
    return BuildInputs(tuple(images), overrides, mirrors, buildkit_config(prefix, mirrors, insecure),
                       tuple(dict.fromkeys(warnings)))


def buildkit_config(prefix: str, mirrors: Mapping[str, str], insecure: bool) -> str:
    """buildkitd.toml for the mirrors, and plain HTTP / unverified TLS for the inputs registry when insecure."""
    lines: list[str] = []
    for host, mirror in sorted(mirrors.items()):
        lines += [f'[registry."{host}"]', f'  mirrors = ["{mirror}"]']
    if insecure:
        lines += [f'[registry."{prefix.split("/", 1)[0]}"]', "  http = true", "  insecure = true"]
    return "\n".join(lines)
