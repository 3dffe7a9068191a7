"""Image references: parse and normalise them like container runtimes do, and work out where an Edge host
pulls each one from (the external-registry prefix rule or the mapping rules). Pure: no network.

Reference grammar after distribution/reference (what Docker, containerd and CRI-O accept):
``[domain[:port]/]path[:tag][@digest]``; a first component is a domain when it has a ``.`` or ``:``
or is ``localhost``; otherwise the image lives on Docker Hub (``docker.io``, ``library/`` for one-word names).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeforge_ext.errors import UsageError, ValidationError
from edgeforge_ext.secrets import quoted

if TYPE_CHECKING:
    from edgeforge_ext.config import Config

DEFAULT_DOMAIN = "docker.io"
_LEGACY_DOMAINS = {"index.docker.io", "registry-1.docker.io"}

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(
    r"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_NAME_MAX = 255


@dataclass(frozen=True)
class ImageRef:
    """A fully qualified reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``domain/path``: the repository, fully qualified."""
        return f"{self.domain}/{self.path}"

    @property
    def reference(self) -> str:
        """What the manifest API is asked for: the digest when there is one (runtimes pull by it), else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_ref(text: str, where: str = "") -> ImageRef:
    """Parse and normalise one reference (``nginx`` -> ``docker.io/library/nginx:latest``).

    A malformed reference is a ValidationError (exit 5) naming ``where`` (a file line or profile path).
    """
    try:
        return _parse(text.strip())
    except ValueError as exc:
        prefix = f"{where}: " if where else ""
        raise ValidationError(f"{prefix}invalid image reference {quoted(text.strip())}: {exc}") from None


def _parse(text: str) -> ImageRef:
    if not text:
        raise ValueError("empty")
    if any(c.isspace() for c in text):
        raise ValueError("contains white space")
    if "://" in text:
        raise ValueError("a reference has no scheme (drop 'http://' / 'https://')")
    digest: str | None = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise ValueError(f"malformed digest {quoted(digest)}")
        algo, hexpart = digest.split(":", 1)
        if algo == "sha256" and not re.fullmatch(r"[0-9a-f]{64}", hexpart):
            raise ValueError("a sha256 digest has 64 lower-case hex digits")
    tag: str | None = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1:]
        if not _TAG.match(tag):
            raise ValueError(f"malformed tag {quoted(tag)}")
    if not text:
        raise ValueError("no repository name")
    first, _, rest = text.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
        if not _DOMAIN.match(domain):
            raise ValueError(f"malformed registry host {quoted(domain)}")
        if domain in _LEGACY_DOMAINS:
            domain = DEFAULT_DOMAIN
    else:
        domain, path = DEFAULT_DOMAIN, text
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            raise ValueError(f"malformed path component {quoted(component)} "
                             "(lower-case letters, digits, '.', '_', '-')")
    if len(f"{domain}/{path}") > _NAME_MAX:
        raise ValueError(f"name longer than {_NAME_MAX} characters")
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(domain=domain, path=path, tag=tag, digest=digest)


# --- where the Edge host pulls from ---------------------------------------------------------------


def _clean_prefix(value: str) -> str:
    """Registry prefixes as users write them: no scheme, no trailing slash; Docker Hub aliases unified."""
    value = value.strip()
    for scheme in ("https://", "http://"):
        if value.startswith(scheme):
            value = value[len(scheme):]
    value = value.rstrip("/")
    head, sep, tail = value.partition("/")
    if head in _LEGACY_DOMAINS:
        head = DEFAULT_DOMAIN
    return head + sep + tail


@dataclass(frozen=True)
class Rewrite:
    source: ImageRef
    target: str  # the reference the Edge host pulls
    rule: str  # "prefix", "mapping <key>", "unmatched", "none"

    @property
    def target_ref(self) -> ImageRef:
        try:
            return _parse(self.target)
        except ValueError as exc:
            # e.g. a source host with a port put inside the path by the prefix rule: nothing can pull that.
            raise ValidationError(f"{self.source} is rewritten to {quoted(self.target)}, which is not a valid image "
                                  f"reference ({exc})",
                                  hint="use mapping rules (--registry-mapping SRC=DST) for this source") from None


@dataclass(frozen=True)
class RewriteRules:
    """One registry (`prefix`) or mapping rules (`mapping`, longest key first); neither = pull from source."""

    prefix: str | None = None
    mapping: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def make(cls, prefix: str | None = None, mapping: Mapping[str, str] | None = None,
             notes: Iterable[str] = ()) -> RewriteRules:
        rules = [(_clean_prefix(k), _clean_prefix(v)) for k, v in (mapping or {}).items()]
        rules.sort(key=lambda kv: len(kv[0]), reverse=True)
        return cls(prefix=_clean_prefix(prefix) if prefix else None, mapping=tuple(rules), notes=tuple(notes))

    def rewrite(self, ref: ImageRef) -> Rewrite:
        suffix = str(ref)[len(ref.name):]  # ":tag", "@digest" or both
        if self.mapping:
            for key, value in self.mapping:
                # A key matches on a path boundary only: "quay.io/kairos" is not a prefix of "quay.io/kairosx".
                if ref.name == key or ref.name.startswith(key + "/"):
                    return Rewrite(ref, value + ref.name[len(key):] + suffix, f"mapping {key}")
            return Rewrite(ref, str(ref), "unmatched")
        if self.prefix:
            # Already under the external registry (an image list of rewritten references): not prefixed twice.
            if ref.name.startswith(self.prefix + "/"):
                return Rewrite(ref, str(ref), "prefix")
            return Rewrite(ref, f"{self.prefix}/{ref}", "prefix")
        return Rewrite(ref, str(ref), "none")


def rules_from_config(config: Config) -> RewriteRules:
    """The rewrite the Edge host applies, from the same keys that render user-data from:
    mapping rules (stylus.externalRegistries) win; else one registry prefixes every image."""
    mapping = dict(config.registry.mapping_rules or {})
    if mapping:
        return RewriteRules.make(mapping=mapping)
    domain = config.registry.domain
    notes: list[str] = []
    if not domain and config.registries:
        domain = config.registries[0].domain
        if len(config.registries) > 1:
            notes.append(f"several registries and no mapping rules: images are shown under the first, {domain}")
    return RewriteRules.make(prefix=domain or None, notes=notes)


def pull_location(config: Config, ref: str) -> str:
    """Where the Edge host pulls `ref` from, by the rules the config writes into user-data: the one
    function build, push, plan, `images rewrite|verify|mirror` and the lock all use."""
    return rules_from_config(config).rewrite(parse_ref(ref)).target


def build_input_location(config: Config, ref: str) -> str:
    """Where the build pulls one of its own inputs from: `build.inputs_registry` in front of the full
    reference (the layout `images mirror --build-inputs` writes), or the source without it. The build host
    is not the Edge host: its registry and credentials are its own."""
    prefix = _clean_prefix(config.build.inputs_registry) if config.build.inputs_registry else ""
    image = parse_ref(ref)
    if not prefix or image.name.startswith(prefix + "/"):
        return str(image)
    return f"{prefix}/{image}"


def has_external_registry(config: Config) -> bool:
    """Whether user-data sends the Edge host anywhere but the images' sources."""
    rules = rules_from_config(config)
    return bool(rules.prefix or rules.mapping)


# --- image sources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceImage:
    ref: ImageRef
    origin: str  # "images.txt:3", "profile.json: spec.packs[1].values > image", "plan"
    build_input: bool = False  # pulled by the CanvOS build itself (goes to build.inputs_registry when set)


def dedupe(images: Iterable[SourceImage]) -> list[SourceImage]:
    """First occurrence wins; order kept."""
    seen: set[str] = set()
    out: list[SourceImage] = []
    for image in images:
        key = str(image.ref)
        if key not in seen:
            seen.add(key)
            out.append(image)
    return out


def images_from_list(path: Path) -> list[SourceImage]:
    """One reference a line; blank lines and ``#`` comments (whole-line or trailing) ignored."""
    text = _read(path)
    out: list[SourceImage] = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if content:
            where = f"{path}:{number}"
            out.append(SourceImage(parse_ref(content, where), where))
    return out


def images_from_refs(refs: Iterable[str], origin: str = "plan") -> list[SourceImage]:
    return [SourceImage(parse_ref(r, origin), origin) for r in refs]


def images_from_profile(path: Path) -> list[SourceImage]:
    """Every image of a cluster profile export (JSON or YAML): `image:` values and `pack.content.images`
    entries anywhere, also inside values held as YAML strings. Palette macros (``{{ ... }}``) are skipped."""
    text = _read(path)
    data = _load_document(text, str(path))
    found: list[SourceImage] = []
    for ref_text, where in _walk(data, ""):
        origin = f"{path}: {where}"
        found.append(SourceImage(parse_ref(ref_text, origin), origin))
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from None


def _load_document(text: str, where: str) -> Any:
    import yaml

    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{where}: malformed JSON at line {exc.lineno}, column {exc.colno}: "
                                  f"{exc.msg}") from None
    try:
        docs = [d for d in yaml.safe_load_all(_quote_macros(text)) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationError(f"{where}: malformed YAML{at}: {problem}") from None
    return docs[0] if len(docs) == 1 else docs


def _join(where: str, key: str) -> str:
    if not where:
        return key
    return f"{where} {key}" if where.endswith(">") else f"{where}.{key}"


def _walk(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = _join(where, str(key))
            if key == "image":
                yield from _image_value(value, here)
            elif key == "images" and where.endswith("content") and isinstance(value, list):
                for i, item in enumerate(value):  # pack.content.images: strings or {image: ...}
                    item_where = f"{here}[{i}]"
                    if isinstance(item, str):
                        yield from _image_value(item, item_where)
                    else:
                        yield from _walk(item, item_where)
            else:
                yield from _walk(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, f"{where}[{i}]")
    elif isinstance(node, str) and "\n" in node and ":" in node:
        yield from _nested_yaml(node, where)


# A Palette macro that starts a plain value (`name: {{ .spectro.system.cluster.name }}`) reads as a YAML
# flow mapping and breaks the parse; quoted, it is the string Palette substitutes later (images skip it).
_BARE_MACRO = re.compile(r"^(\s*(?:- |[^\s#][^:#]*:\s+))(\{\{[^\n]*\}\}[^\n#]*?)\s*$", re.M)


def _quote_macros(text: str) -> str:
    return _BARE_MACRO.sub(lambda m: m.group(1) + json.dumps(m.group(2)), text) if "{{" in text else text


def _nested_yaml(text: str, where: str) -> Iterator[tuple[str, str]]:
    """Pack values are YAML held in a string; other multi-line strings (scripts, certificates) may not be."""
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(_quote_macros(text)) if d is not None]
    except yaml.YAMLError as exc:
        if where.rsplit(".", 1)[-1] in ("values", "config"):
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise ValidationError(f"{where}: malformed YAML in the values string{at}: "
                                  f"{getattr(exc, 'problem', None) or exc}") from None
        return
    for doc in docs:
        if isinstance(doc, Mapping | list):
            yield from _walk(doc, f"{where} >" if where else "")


def _image_value(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        if value.strip() and "{{" not in value:
            yield value.strip(), where
    elif isinstance(value, Mapping):
        # Helm style: image: {registry, repository, tag}
        repo = value.get("repository")
        if isinstance(repo, str) and repo and "{{" not in repo:
            registry = value.get("registry")
            full = f"{registry}/{repo}" if isinstance(registry, str) and registry else repo
            tag = value.get("tag")
            digest = value.get("digest")
            if isinstance(tag, str | int | float) and str(tag) and "{{" not in str(tag):
                full += f":{tag}"
            if isinstance(digest, str) and digest:
                full += f"@{digest}"
            yield full, where
        else:
            yield from _walk(value, where)


