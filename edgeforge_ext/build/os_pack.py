"""The values for the Palette BYOOS (edge-native-byoi) OS layer, as CanvOS's earthly.sh prints them.

After a provider-image build `earthly.sh` prints `pack:` and `options:` with flat dotted keys
(`system.uri: "…"`, `system.registry: …`); users paste that text into the cluster profile. The tool
writes the same text, taken from the checked-out `earthly.sh` (`print_os_pack`) with the build's
values filled in, so it pastes unchanged; a tree without `print_os_pack` gets the same shape from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeforge_ext.canvos.earthly_script import expand

_MACRO = "{{ .spectro.pack.edge-native-byoi.options.system.%s }}"
# The shape earthly.sh prints (CanvOS v4.4.12 .. main, print_os_pack), used when the tree has none.
FALLBACK_LINES: tuple[str, ...] = (
    "pack:",
    "  content:",
    "    images:",
    '      - image: "{{.spectro.pack.edge-native-byoi.options.system.uri}}"',
    "options:",
    '  system.uri: "' + "/".join((_MACRO % "registry", _MACRO % "repo")) + ":" + "-".join((
        _MACRO % "k8sDistribution", "{{ .spectro.system.kubernetes.version }}", _MACRO % "peVersion",
        _MACRO % "customTag")) + '"',
    "",
    "  system.registry: $IMAGE_REGISTRY",
    "  system.repo: $IMAGE_REPO",
    "  system.k8sDistribution: $K8S_DISTRIBUTION",
    "  system.osName: $OS_DISTRIBUTION",
    "  system.peVersion: $PE_VERSION",
    "  system.customTag: $CUSTOM_TAG",
    "  system.osVersion: $OS_VERSION",
)


def os_pack_text(values: Mapping[str, str], lines: tuple[str, ...] = ()) -> str:
    """The text earthly.sh would print for these build values (`$IMAGE_REGISTRY`, … expanded)."""
    body = "\n".join(expand(line, values).rstrip() for line in (lines or FALLBACK_LINES))
    return body.rstrip("\n") + "\n"


def os_pack_values(text: str) -> dict[str, Any]:
    """The text as data for the JSON report; every scalar stays a string (`22.04` is a version)."""
    import yaml

    data = yaml.load(text, Loader=yaml.BaseLoader)
    return data if isinstance(data, dict) else {}


def system_values(os_pack: Mapping[str, Any]) -> dict[str, str]:
    """The `system.*` options (flat dotted keys, as earthly.sh prints them) without the prefix."""
    options = os_pack.get("options") or {}
    if not isinstance(options, Mapping):
        return {}
    nested = options.get("system")
    if isinstance(nested, Mapping):  # reports written before the flat shape
        return {str(k): str(v) for k, v in nested.items()}
    return {str(k)[len("system."):]: str(v) for k, v in options.items() if str(k).startswith("system.")}
