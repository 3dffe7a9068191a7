"""Walk an Earthfile from one target, for given build args, and say which images the build pulls: each
`FROM`, `FROM DOCKERFILE` (the Dockerfile's own `FROM`), and `WITH DOCKER --pull`, in every target reached
through `FROM +t`, `BUILD +t`, `COPY +t/...` and `DO +FUNCTION`. Pure: text in, images out.

Earthly's rules, as far as images depend on them: build args from `.arg` and the command line override
every `ARG` of that name (CanvOS relies on it: `OS_DISTRIBUTION` and friends are declared in the base
target); args given with `+target --NAME=value` override that target's `ARG` (and the base target's, which
is evaluated again with them); `LET`/`SET` assign. `IF` conditions of the `[ "$X" = "v" ]` kinds (with
`&&`, `||`, `-n`, `-z`, `=~`, a bare `$FLAG`) are decided; one that looks at files in the build (`[ -f ... ]`)
is not, and then every branch counts. A `FOR` body is walked once.

Each image says where its registry comes from: the `ARG` whose value it starts with (following `$A` in
`ARG B=$A/...` down to the ARG that holds the literal registry, `SPECTRO_PUB_REPO` for most of CanvOS).
Overriding that ARG pulls the image from elsewhere; an image written literally (`FROM alpine:3.20`) has none.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from edgeforge_ext.canvos.earthfile import Earthfile

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_LEADING = re.compile(r"""^["']?\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?""")
_ASSIGN = re.compile(r"^(?:--\S+\s+)*([A-Za-z_][A-Za-z0-9_]*)(?:\s*=\s*(.*))?$")
_GROUP = re.compile(r"\((\+[^)]*)\)")
# A registry host (a dotted name with a letter, an IPv4 address, localhost, or host:port) and a path: not
# "22.04" or "v4.0.4".
_DOMAIN = re.compile(r"^(?:localhost|[a-zA-Z0-9.-]*[a-zA-Z][a-zA-Z0-9-]*\.[a-zA-Z0-9.-]+|\d{1,3}(?:\.\d{1,3}){3}"
                     r"|[a-zA-Z0-9.-]+:\d+)(?::\d+)?/")
# Earthly's platform ARGs, for a build of the chosen ARCH on an amd64 host.
_PLATFORM = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "NATIVEPLATFORM", "NATIVEOS", "NATIVEARCH",
             "NATIVEVARIANT", "USERPLATFORM", "USEROS", "USERARCH", "USERVARIANT")
BASE = "(base)"


@dataclass(frozen=True)
class Var:
    value: str
    root: str | None = None  # the ARG whose override redirects this value's registry


@dataclass(frozen=True)
class ImageUse:
    ref: str  # as evaluated
    target: str  # "+build-iso", or "(base)"
    how: str  # "FROM", "FROM DOCKERFILE (Dockerfile)", "WITH DOCKER --pull"
    text: str  # as written
    root: str | None  # the ARG that carries its registry; None: written literally
    root_value: str | None
    complete: bool  # False when a $VARIABLE stayed unknown


@dataclass(frozen=True)
class RunFetch:
    """A RUN step that uses a registry-valued ARG: it fetches from there itself (luet, curl), not BuildKit."""

    target: str
    variable: str
    value: str


@dataclass
class Evaluation:
    images: list[ImageUse] = field(default_factory=list)
    runs: list[RunFetch] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # reached, in order


def looks_like_registry(value: str) -> bool:
    """`us-docker.pkg.dev/palette-images`, `quay.io/kairos`, `10.0.0.1:5000/x`: a value that names a host."""
    return bool(_DOMAIN.match(value.strip("\"'")))


def expand(text: str, scope: Mapping[str, Var]) -> tuple[str, bool]:
    """(text with $NAME / ${NAME} replaced, whether every one was known)."""
    complete = "$(" not in text

    def sub(match: re.Match[str]) -> str:
        nonlocal complete
        name = match.group(1) or match.group(2)
        if name not in scope:
            complete = False
            return match.group(0)
        return scope[name].value

    return _VAR.sub(sub, text), complete


def value_of(text: str, scope: Mapping[str, Var], name: str | None = None) -> Var:
    """An ARG/LET value: expanded, with the root of the variable it starts with; a literal that names a
    registry is rooted at the ARG `name` it is the default of."""
    raw = _unquote(text)
    value, _complete = expand(raw, scope)
    leading = _LEADING.match(raw)
    if leading and leading.group(1) in scope:
        return Var(value, scope[leading.group(1)].root)
    return Var(value, name if name and looks_like_registry(value) else None)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


# --- IF conditions --------------------------------------------------------------------------------


def condition(text: str, scope: Mapping[str, Var]) -> bool | None:
    """Decide an IF condition: True, False, or None when it depends on something this reader cannot see.
    A variable not declared yet is empty, as in the shell the condition runs in."""
    scope = _Lenient(scope)
    parts = re.split(r"\s+(&&|\|\|)\s+", text.strip())
    result = _atom(parts[0], scope)
    for op, atom in zip(parts[1::2], parts[2::2], strict=False):
        right = _atom(atom, scope)
        if op == "&&":
            result = False if result is False or right is False else (None if None in (result, right) else True)
        else:
            result = True if result is True or right is True else (None if None in (result, right) else False)
    return result


class _Lenient(dict[str, Var]):
    def __init__(self, scope: Mapping[str, Var]) -> None:
        super().__init__(scope)

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> Var:
        return Var("")


def _atom(text: str, scope: Mapping[str, Var]) -> bool | None:
    text = text.strip()
    if text.startswith("! "):
        inner = _atom(text[2:], scope)
        return None if inner is None else not inner
    if text.startswith("[[") and text.endswith("]]"):
        body = text[2:-2].strip()
    elif text.startswith("[") and text.endswith("]"):
        body = text[1:-1].strip()
    else:  # a command: `$FIPS_ENABLED` runs `true` or `false`
        value, complete = expand(text, scope)
        if not complete:
            return None
        return {"true": True, "false": False}.get(value.strip().strip("\"'"))
    try:
        words = shlex.split(body)
    except ValueError:
        return None
    expanded = []
    for word in words:
        value, complete = expand(word, scope)
        if not complete:
            return None
        expanded.append(value)
    if len(expanded) == 2 and expanded[0] in ("-n", "-z"):
        return bool(expanded[1]) == (expanded[0] == "-n")
    if len(expanded) == 3 and expanded[1] in ("=", "==", "!="):
        return (expanded[0] == expanded[2]) == (expanded[1] != "!=")
    if len(expanded) == 3 and expanded[1] == "=~":
        return re.search(expanded[2], expanded[0]) is not None
    return None  # -f, -e, -d ...: the build's file system


# --- blocks ---------------------------------------------------------------------------------------


@dataclass
class _Branch:
    test: str | None  # None: ELSE
    body: list[_Node]


@dataclass
class _If:
    branches: list[_Branch]


@dataclass
class _Block:
    header: str  # "FOR ...", "WITH DOCKER ...", "TRY", "WAIT"
    body: list[_Node]


_Node = str | _If | _Block


def _tree(lines: tuple[str, ...] | list[str]) -> list[_Node]:
    root: list[_Node] = []
    stack: list[tuple[list[_Node], _If | _Block | None]] = [(root, None)]
    for line in lines:
        word = line.split(None, 1)[0].upper() if line.strip() else ""
        current, owner = stack[-1]
        if word == "IF":
            node = _If([_Branch(line[2:].strip(), [])])
            current.append(node)
            stack.append((node.branches[0].body, node))
        elif word == "ELSE" and isinstance(owner, _If):
            rest = line[4:].strip()
            test = rest[2:].strip() if rest.upper().startswith("IF") else None
            owner.branches.append(_Branch(test, []))
            stack[-1] = (owner.branches[-1].body, owner)
        elif word in ("FOR", "TRY", "WAIT") or line.upper().startswith("WITH DOCKER"):
            block = _Block(line, [])
            current.append(block)
            stack.append((block.body, block))
        elif word in ("CATCH", "FINALLY"):
            continue  # the same block goes on
        elif word == "END":
            if len(stack) > 1:
                stack.pop()
        else:
            current.append(line)
    return root


# --- the walk -------------------------------------------------------------------------------------


class _Walk:
    def __init__(self, earthfile: Earthfile, dockerfile: str | None, overrides: Mapping[str, str]) -> None:
        self.ef = earthfile
        self.dockerfile = dockerfile
        self.overrides = {k: Var(v, k if looks_like_registry(v) else None) for k, v in overrides.items()}
        arch = overrides.get("ARCH") or "amd64"
        self.builtins = {"TARGETPLATFORM": f"linux/{arch}", "TARGETOS": "linux", "TARGETARCH": arch,
                         "NATIVEPLATFORM": "linux/amd64", "NATIVEOS": "linux", "NATIVEARCH": "amd64",
                         "USERPLATFORM": "linux/amd64", "USEROS": "linux", "USERARCH": "amd64"}
        self.out = Evaluation()
        self._bases: dict[frozenset[tuple[str, Var]], tuple[dict[str, Var], tuple[str, Var, bool] | None]] = {}
        self._done: set[tuple[str, frozenset[tuple[str, Var]]]] = set()
        self._trees = {name: _tree(body) for name, body in earthfile.bodies.items()}
        self._base_tree = _tree(earthfile.base)

    # the base target, evaluated once per set of passed args
    def base(self, passed: Mapping[str, Var]) -> tuple[dict[str, Var], tuple[str, Var, bool] | None]:
        key = frozenset(passed.items())
        if key not in self._bases:
            scope = {name: Var(value) for name, value in self.builtins.items()}
            frame = _Frame(BASE, scope, dict(passed), from_=None)
            self._nodes(self._base_tree, frame)
            self._bases[key] = (scope, frame.from_)
        return self._bases[key]

    def target(self, name: str, passed: Mapping[str, Var], via: str) -> None:
        if name not in self._trees:
            self.out.warnings.append(f"{via}: target +{name} is not in this Earthfile (another directory's or a "
                                     "remote one): its images are not listed")
            return
        key = (name, frozenset(passed.items()))
        if key in self._done:
            return
        self._done.add(key)
        if name not in self.out.targets:
            self.out.targets.append(name)
        scope, base_from = self.base(passed)
        frame = _Frame(f"+{name}", dict(scope), dict(passed), from_=None)
        tree = self._trees[name]
        if base_from is not None and _needs_base_image(tree):
            text, var, complete = base_from  # no FROM of its own: the target starts from the base's image
            self._image(frame, var.value, "FROM", text, var, complete, target=BASE)
        self._nodes(tree, frame)

    def function(self, name: str, passed: Mapping[str, Var], frame: _Frame) -> None:
        if name not in self._trees:
            self.out.warnings.append(f"{frame.where}: DO +{name}: not in this Earthfile")
            return
        inner = _Frame(frame.where, frame.scope, dict(passed), from_=None)
        self._nodes(self._trees[name], inner)

    # nodes and commands
    def _nodes(self, nodes: list[_Node], frame: _Frame) -> None:
        for node in nodes:
            if isinstance(node, str):
                self._command(node, frame)
            elif isinstance(node, _If):
                self._if(node, frame)
            elif node.header.upper().startswith("FOR"):
                match = re.match(r"FOR\s+(?:--\S+\s+)*([A-Za-z_]\w*)\s+IN\s+", node.header, re.I)
                if match:
                    frame.scope[match.group(1)] = Var("")
                self._nodes(node.body, frame)
            elif node.header.upper().startswith("WITH DOCKER"):
                self._with_docker(node.header, frame)
                self._nodes(node.body, frame)
            else:
                self._nodes(node.body, frame)

    def _if(self, node: _If, frame: _Frame) -> None:
        """The branch taken; when a condition cannot be decided, that branch and the ones after it (any of
        them may be the one taken)."""
        for branch in node.branches:
            decided = True if branch.test is None else condition(branch.test, {**self.overrides, **frame.scope})
            if decided is False:
                continue
            self._nodes(branch.body, frame)
            if decided is True:
                return

    def _command(self, line: str, frame: _Frame) -> None:
        word, _, rest = line.partition(" ")
        word = word.upper()
        rest = rest.strip()
        if word == "ARG":
            self._arg(rest, frame)
        elif word in ("LET", "SET"):
            match = _ASSIGN.match(rest)
            if match and match.group(2) is not None:
                frame.scope[match.group(1)] = value_of(match.group(2), frame.scope)
        elif word == "FROM":
            self._from(rest, frame)
        elif word == "BUILD":
            self._call(rest, frame, "BUILD")
        elif word == "COPY":
            self._copy(rest, frame)
        elif word == "DO":
            name, args = self._target_args(_strip_flags(rest), frame)
            if name:
                self.function(name.lstrip("+"), args, frame)
        elif word == "RUN":
            for match in _VAR.finditer(rest):
                name = match.group(1) or match.group(2)
                var = frame.scope.get(name)
                if var is not None and var.root is not None and looks_like_registry(var.value):
                    fetch = RunFetch(frame.where, name, var.value)
                    if fetch not in self.out.runs:
                        self.out.runs.append(fetch)

    def _arg(self, rest: str, frame: _Frame) -> None:
        match = _ASSIGN.match(rest)
        if not match:
            return
        name, default = match.group(1), match.group(2)
        if name in _PLATFORM:
            frame.scope.setdefault(name, Var(self.builtins.get(name, "")))
        elif name in frame.passed:
            frame.scope[name] = frame.passed[name]
        elif name in self.overrides:
            frame.scope[name] = self.overrides[name]
        elif default is not None:
            frame.scope[name] = value_of(default, frame.scope, name)
        elif name not in frame.scope:
            frame.scope[name] = Var("")

    def _from(self, rest: str, frame: _Frame) -> None:
        words = _strip_flags(rest)
        if not words:
            return
        if words.split(None, 1)[0].upper() == "DOCKERFILE":
            self._dockerfile(words.split(None, 1)[1] if " " in words else "", frame)
            return
        if "+" in words.split(None, 1)[0]:
            self._call(words, frame, "FROM")
            return
        text = words.split()[0]
        var = value_of(text, frame.scope)
        ref, complete = expand(_unquote(text), frame.scope)
        if frame.where == BASE:
            frame.from_ = (text, Var(ref, var.root), complete)
            return
        self._image(frame, ref, "FROM", text, var, complete)

    def _image(self, frame: _Frame, ref: str, how: str, text: str, var: Var, complete: bool,
               target: str | None = None) -> None:
        if ref in ("scratch", ""):
            return
        root_value = frame.scope[var.root].value if var.root and var.root in frame.scope else None
        use = ImageUse(ref, target or frame.where, how, text, var.root, root_value, complete)
        if use not in self.out.images:
            self.out.images.append(use)

    def _call(self, rest: str, frame: _Frame, how: str) -> None:
        name, args = self._target_args(_strip_flags(rest), frame)
        if name:
            self.target(name.lstrip("+").split("/", 1)[0], args, f"{frame.where} {how}")

    def _copy(self, rest: str, frame: _Frame) -> None:
        for group in _GROUP.findall(rest):
            name, args = self._target_args(group, frame)
            self.target(name.lstrip("+").split("/", 1)[0], args, f"{frame.where} COPY")
        for word in _GROUP.sub(" ", rest).split():
            if word.startswith("+"):
                name, _ = expand(word, frame.scope)
                self.target(name.lstrip("+").split("/", 1)[0], {}, f"{frame.where} COPY")

    def _target_args(self, text: str, frame: _Frame) -> tuple[str, dict[str, Var]]:
        words = text.split()
        if not words or not words[0].startswith("+"):
            return "", {}
        name, _ = expand(words[0], frame.scope)
        args: dict[str, Var] = {}
        for word in words[1:]:
            match = re.match(r"^--([A-Za-z_]\w*)(?:=(.*))?$", word)
            if match:
                key = match.group(1)
                args[key] = value_of(match.group(2), frame.scope) if match.group(2) is not None \
                    else frame.scope.get(key, Var(""))
        return name, args

    def _with_docker(self, header: str, frame: _Frame) -> None:
        words = header.split()
        for i, word in enumerate(words):
            if (word == "--pull" and i + 1 < len(words)) or word.startswith("--pull="):
                text = words[i + 1] if word == "--pull" else word.split("=", 1)[1]
                var = value_of(text, frame.scope)
                ref, complete = expand(_unquote(text), frame.scope)
                self._image(frame, ref, "WITH DOCKER --pull", text, var, complete)
        for group in _GROUP.findall(header):
            name, args = self._target_args(group, frame)
            self.target(name.lstrip("+"), args, f"{frame.where} WITH DOCKER --load")

    def _dockerfile(self, rest: str, frame: _Frame) -> None:
        words = rest.split()
        build_args: dict[str, Var] = {}
        path = "Dockerfile"
        for i, word in enumerate(words):
            if word == "--build-arg" and i + 1 < len(words) and "=" in words[i + 1]:
                key, _, text = words[i + 1].partition("=")
                build_args[key] = value_of(text, frame.scope)
            elif word == "-f" and i + 1 < len(words):
                path = words[i + 1]
        if self.dockerfile is None or path.rstrip("/").split("/")[-1] != "Dockerfile":
            self.out.warnings.append(f"{frame.where}: FROM DOCKERFILE {path}: that Dockerfile was not read; its "
                                     "base images are not listed")
            return
        scope: dict[str, Var] = {}
        stages: set[str] = set()
        for line in _dockerfile_lines(self.dockerfile):
            word, _, arg = line.partition(" ")
            if word.upper() == "ARG":
                match = _ASSIGN.match(arg.strip())
                if match:
                    key = match.group(1)
                    scope[key] = build_args.get(key) or (value_of(match.group(2), scope, key)
                                                         if match.group(2) is not None else Var(""))
            elif word.upper() == "FROM":
                parts = [p for p in arg.split() if not p.startswith("--")]
                if not parts:
                    continue
                if len(parts) >= 3 and parts[1].upper() == "AS":
                    stages.add(parts[2])
                if parts[0] in stages:
                    continue
                var = value_of(parts[0], scope)
                ref, complete = expand(_unquote(parts[0]), scope)
                self._image(frame, ref, f"FROM DOCKERFILE ({path})", parts[0], var, complete)


@dataclass
class _Frame:
    where: str
    scope: dict[str, Var]
    passed: dict[str, Var]
    from_: tuple[str, Var, bool] | None


def _strip_flags(text: str) -> str:
    """A command's words without its leading --flags (--platform=..., --allow-privileged, --pass-args)."""
    words = text.split()
    while words and words[0].startswith("--"):
        words.pop(0)
    return " ".join(words)


def _flat(node: _Node) -> list[str]:
    if isinstance(node, str):
        return [node]
    bodies = [b.body for b in node.branches] if isinstance(node, _If) else [node.body]
    return [line for body in bodies for child in body for line in _flat(child)]


def _needs_base_image(tree: list[_Node]) -> bool:
    """A target without a FROM of its own starts from the base target's image, which BuildKit then pulls,
    unless it only declares ARGs and BUILDs other targets."""
    for node in tree:
        words = [line.split(None, 1)[0].upper() for line in _flat(node)]
        if "FROM" in words and isinstance(node, str):
            return False
        if any(w not in ("ARG", "LET", "SET", "BUILD") for w in words):
            return "FROM" not in words
    return False


def _dockerfile_lines(text: str) -> list[str]:
    out: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    return out


def evaluate(earthfile: Earthfile, dockerfile: str | None, entry: str, overrides: Mapping[str, str]) -> Evaluation:
    """The images the build of `+entry` pulls, with these build args (the .arg values and any others)."""
    walk = _Walk(earthfile, dockerfile, overrides)
    walk.target(entry.lstrip("+"), {}, "the build")
    return walk.out
