"""`profile patch`: edit a Kubernetes layer's values for an external registry, keeping the user's file as it is.

Users paste the result back into Palette, so comments, key order, quoting and block style survive
(ruamel.yaml round-trip). `cluster.config` may be a mapping (K3s/RKE2 packs) or a YAML document held in a
block string (PXK-E: `config: |`); both are handled, the string kept a block string.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from edgeforge_ext.errors import ValidationError

PLUGIN = "AlwaysPullImages"
ADMISSION = "enable-admission-plugins"
KUBEADM = "PXK-E/kubeadm"
K3S_RKE2 = "K3s/RKE2"


@dataclass
class PatchResult:
    original: str
    text: str
    flavour: str  # KUBEADM or K3S_RKE2
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def diff(self, name: str) -> str:
        return "".join(difflib.unified_diff(self.original.splitlines(keepends=True),
                                            self.text.splitlines(keepends=True),
                                            fromfile=f"a/{name}", tofile=f"b/{name}"))


@dataclass(frozen=True)
class _Edit:
    """A line-local change: replace columns [start, end) of `line`, or insert/delete a whole line."""

    line: int
    start: int = 0
    end: int = 0
    text: str = ""
    kind: str = "replace"  # replace | insert | delete


def _compose(text: str, where: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="rt").compose(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValidationError(f"{where}: malformed YAML{at}: {getattr(exc, 'problem', None) or exc}") from None


def _get(node: Any, key: str) -> tuple[Any, Any] | None:
    """(key node, value node) of a mapping node, or None."""
    if node is None or node.id != "mapping":
        return None
    for k, v in node.value:
        if k.id == "scalar" and k.value == key:
            return k, v
    return None


def patch_values(text: str, *, image_repository: str | None = None, where: str = "values") -> PatchResult:
    """Remove AlwaysPullImages from the API server's admission plugins and, with `image_repository`,
    point kubeadm's core images at it. Raises ValidationError when this is not a Kubernetes layer.

    Edits are made on the text itself, at the places the YAML parser reports, so everything else of the
    user's file (comments, order, quoting, indentation, block strings) stays byte for byte.
    """
    root = _compose(text, where)
    cluster = _get(root, "cluster")
    config = _get(cluster[1], "config") if cluster else None
    if config is None:
        raise ValidationError(f"{where}: no cluster.config: is this a Kubernetes layer's values?")
    changes: list[str] = []
    notes: list[str] = []
    node = config[1]
    if node.id == "scalar":
        inner_text = node.value
        inner = _compose(inner_text, f"{where}: cluster.config")
        if inner is None or inner.id != "mapping":
            raise ValidationError(f"{where}: cluster.config holds no mapping")
        flavour, edits = _patch_config(inner, inner_text, image_repository, changes, notes)
        if edits:
            if node.style != "|":
                raise ValidationError(f"{where}: cluster.config is a YAML string in a quoted or folded style; "
                                      "make it a literal block (config: |) or edit it by hand")
            edits = _shift(edits, text, node.start_mark.line + 1)
    elif node.id == "mapping":
        flavour, edits = _patch_config(node, text, image_repository, changes, notes)
    else:
        raise ValidationError(f"{where}: cluster.config is neither a mapping nor a YAML string")
    new_text = _apply(text, edits) if edits else text
    if edits:
        _check(new_text, image_repository if flavour == KUBEADM else None, where)
    return PatchResult(original=text, text=new_text, flavour=flavour, changes=changes, notes=notes)


def _shift(edits: list[_Edit], text: str, first_line: int) -> list[_Edit]:
    """Edits made in a literal block's content, moved to the enclosing file (lines and indentation)."""
    lines = text.splitlines()
    indent = next((len(ln) - len(ln.lstrip(" ")) for ln in lines[first_line:] if ln.strip()), 0)
    pad = " " * indent
    return [_Edit(e.line + first_line, e.start + indent, e.end + indent,
                  pad + e.text if e.kind == "insert" else e.text, e.kind) for e in edits]


def _apply(text: str, edits: list[_Edit]) -> str:
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"
    # Bottom-up, so earlier line numbers stay valid.
    for e in sorted(edits, key=lambda e: (e.line, e.kind != "insert"), reverse=True):
        if e.kind == "insert":
            lines.insert(e.line, e.text + newline)
        elif e.kind == "delete":
            del lines[e.line]
        else:
            ln = lines[e.line]
            lines[e.line] = ln[:e.start] + e.text + ln[e.end:]
    return "".join(lines)


def _check(text: str, image_repository: str | None, where: str) -> None:
    """The edited file must parse and say what we meant; anything else is a bug, not a user error."""
    import yaml

    data = yaml.safe_load(text)
    config = data["cluster"]["config"]
    if isinstance(config, str):
        config = yaml.safe_load(config)
    conf = config.get("clusterConfiguration") if isinstance(config, dict) else None
    if isinstance(conf, dict):
        value = ((conf.get("apiServer") or {}).get("extraArgs") or {}).get(ADMISSION) or ""
        left = _has_plugin(str(value))
        if image_repository and conf.get("imageRepository") != image_repository:
            raise RuntimeError(f"{where}: imageRepository not set after patching")
    else:
        args = config.get("kube-apiserver-arg") or [] if isinstance(config, dict) else []
        left = any(str(a).startswith(ADMISSION + "=") and _has_plugin(str(a)[len(ADMISSION) + 1:]) for a in args)
    if left:
        raise RuntimeError(f"{where}: {PLUGIN} still present after patching")


def _scalar_text(node: Any, value: str) -> str:
    """`value` written in the node's own quoting style."""
    if node.style == '"':
        import json

        return json.dumps(value)
    if node.style == "'":
        return "'" + value.replace("'", "''") + "'"
    return value


def _replace(node: Any, value: str) -> _Edit:
    if node.start_mark.line != node.end_mark.line:
        raise ValidationError(f"the value at line {node.start_mark.line + 1} spans several lines; edit it by hand")
    return _Edit(node.start_mark.line, node.start_mark.column, node.end_mark.column, _scalar_text(node, value))


def _patch_config(config: Any, text: str, image_repository: str | None, changes: list[str],
                  notes: list[str]) -> tuple[str, list[_Edit]]:
    edits: list[_Edit] = []
    where = "cluster.config"
    cluster_conf = _get(config, "clusterConfiguration")
    if cluster_conf is not None:
        _patch_kubeadm(cluster_conf, text, image_repository, changes, notes, edits, f"{where}.clusterConfiguration")
        return KUBEADM, edits
    args = _get(config, "kube-apiserver-arg")
    if args is not None and args[1].id == "sequence":
        _patch_arg_list(args[1], text, changes, notes, edits, f"{where}.kube-apiserver-arg")
    else:
        notes.append(f"no {where}.kube-apiserver-arg and no clusterConfiguration: no admission plugins set here")
    if image_repository:
        notes.append("K3s/RKE2 take core images from a registries.yaml, not from these values: write it with an "
                     "initramfs stage of user-data (files: /etc/rancher/k3s/registries.yaml for K3s, "
                     "/etc/rancher/rke2/registries.yaml for RKE2; owner 0, group 0, permissions 0644); "
                     "nothing changed here for --image-repository")
    return K3S_RKE2, edits


def _without_plugin(value: str) -> str:
    return ",".join(p.strip() for p in value.split(",") if p.strip() and p.strip() != PLUGIN)


def _has_plugin(value: str) -> bool:
    return PLUGIN in [p.strip() for p in value.split(",")]


def _whole_line(text: str, line: int, first: str) -> bool:
    """True when `line` holds nothing but this entry (and maybe a comment): safe to delete."""
    return text.splitlines()[line].lstrip().startswith(first)


def _patch_kubeadm(conf: tuple[Any, Any], text: str, image_repository: str | None, changes: list[str],
                   notes: list[str], edits: list[_Edit], where: str) -> None:
    key_node, node = conf
    api = _get(node, "apiServer")
    extra = _get(api[1], "extraArgs") if api else None
    found = _get(extra[1], ADMISSION) if extra else None
    path = f"{where}.apiServer.extraArgs.{ADMISSION}"
    if found is not None and found[1].id == "scalar" and _has_plugin(found[1].value):
        rest = _without_plugin(found[1].value)
        if rest:
            edits.append(_replace(found[1], rest))
        elif _whole_line(text, found[0].start_mark.line, ADMISSION):
            edits.append(_Edit(found[0].start_mark.line, kind="delete"))
        else:
            edits.append(_replace(found[1], ""))
        changes.append(f"removed {PLUGIN} from {path}")
    else:
        notes.append(f"{PLUGIN} is not in {path}")
    if not image_repository:
        return
    current = _get(node, "imageRepository")
    if current is not None and current[1].id == "scalar":
        if current[1].value == image_repository:
            notes.append(f"{where}.imageRepository is already {image_repository}")
            return
        edits.append(_replace(current[1], image_repository))
    elif node.id == "mapping" and node.value and not node.flow_style:
        first_key = node.value[0][0]
        value = image_repository if re.fullmatch(r"[A-Za-z0-9][\w.:/-]*", image_repository) else \
            _json(image_repository)
        edits.append(_Edit(key_node.start_mark.line + 1, text=" " * first_key.start_mark.column
                           + f"imageRepository: {value}", kind="insert"))
    else:
        raise ValidationError(f"{where} is not a block mapping; set imageRepository by hand")
    changes.append(f"set {where}.imageRepository to {image_repository}")


def _json(value: str) -> str:
    import json

    return json.dumps(value)


def _patch_arg_list(args: Any, text: str, changes: list[str], notes: list[str], edits: list[_Edit],
                    where: str) -> None:
    for item in args.value:
        if item.id != "scalar" or not item.value.startswith(ADMISSION + "="):
            continue
        value = item.value[len(ADMISSION) + 1:]
        if not _has_plugin(value):
            continue
        rest = _without_plugin(value)
        if rest:
            edits.append(_replace(item, f"{ADMISSION}={rest}"))
        elif not args.flow_style and _whole_line(text, item.start_mark.line, "-"):
            edits.append(_Edit(item.start_mark.line, kind="delete"))
        else:
            edits.append(_replace(item, f"{ADMISSION}="))
        changes.append(f"removed {PLUGIN} from the {ADMISSION}= item of {where}")
        return
    notes.append(f"{PLUGIN} is not in an {ADMISSION}= item of {where}")
