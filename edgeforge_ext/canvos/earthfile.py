"""Read an Earthfile's build contract: the ARGs it declares (with their defaults), its targets, and the
secrets and privileges its RUN steps ask for. Pure text parsing; no I/O.

Why: Earthly turns every `.arg` entry and every `--NAME=value` after the target into an *overriding*
build arg, and an override beats an `ARG NAME=default` even when it is empty (Earthly v0.8.15
`variables/collection.go` ~233-264). So the tool must know which ARGs the checked-out Earthfile
declares and which have defaults: it never writes an empty value for those, and refuses keys the
Earthfile does not declare (a typo would otherwise be silently ignored by the build).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Earthly's builtin ARGs (docs: earthfile/builtin-args): always declared, never set by a user.
BUILTIN_ARGS = frozenset({
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "NATIVEPLATFORM", "NATIVEOS", "NATIVEARCH",
    "NATIVEVARIANT", "USERPLATFORM", "USEROS", "USERARCH", "USERVARIANT", "EARTHLY_TARGET", "EARTHLY_TARGET_NAME",
    "EARTHLY_TARGET_PROJECT", "EARTHLY_TARGET_TAG", "EARTHLY_GIT_HASH", "EARTHLY_GIT_BRANCH", "EARTHLY_CI",
})

_TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*):\s*(?:#.*)?$")
_ARG = re.compile(r"^ARG\s+(?:--\w[\w-]*\s+)*([A-Za-z_][A-Za-z0-9_]*)(?:\s*=\s*(.*))?$")
_RUN_SECRET = re.compile(r"--secret[=\s]+([A-Za-z_][A-Za-z0-9_]*)")
_OPENS = ("IF ", "FOR ", "WITH DOCKER", "TRY")
_FUNCTION_BODY = ("COMMAND", "FUNCTION")


@dataclass(frozen=True)
class ArgDecl:
    """One `ARG` line."""

    name: str
    default: str | None  # the text after '=' (outer quotes removed), None without '='
    target: str | None  # None: the base target (top of the file), inherited by every target
    conditional: bool  # inside IF/FOR/...: the default only applies on that branch
    line: int


@dataclass(frozen=True)
class Earthfile:
    version: str
    args: tuple[ArgDecl, ...]
    targets: tuple[str, ...]  # invokable targets (functions/UDCs excluded), in file order
    run_secrets: tuple[str, ...] = ()  # names used by `RUN --secret NAME`
    privileged_runs: tuple[str, ...] = ()  # targets with a `RUN --privileged` step
    bodies: dict[str, tuple[str, ...]] = field(default_factory=dict)  # target -> its logical lines
    base: tuple[str, ...] = ()  # the base target's logical lines (before the first target)

    @property
    def declared(self) -> frozenset[str]:
        return frozenset(a.name for a in self.args) | BUILTIN_ARGS

    def declarations(self, name: str) -> tuple[ArgDecl, ...]:
        return tuple(a for a in self.args if a.name == name)

    def has_default(self, name: str) -> bool:
        """Some declaration gives `name` a default, so an empty override would erase it."""
        return any(a.default is not None for a in self.declarations(name))

    def base_default(self, name: str) -> str | None:
        """The unconditional default of the base target, when there is exactly one such declaration."""
        found = [a for a in self.declarations(name) if a.target is None and not a.conditional
                 and a.default is not None]
        return found[0].default if len(found) == 1 else None

    def defaults(self) -> dict[str, str]:
        """Every declared ARG with a default, as written (the first default of each, for display)."""
        out: dict[str, str] = {}
        for decl in self.args:
            if decl.default is not None and decl.name not in out:
                out[decl.name] = decl.default
        return out

    def derived(self) -> tuple[str, ...]:
        """ARGs whose only defaults are set inside IF blocks (CanvOS's BASE_IMAGE): the Earthfile
        derives them from other values, so `.arg` must not carry them unless the user set them."""
        names = []
        for name in dict.fromkeys(a.name for a in self.args):
            decls = self.declarations(name)
            if any(d.default is not None for d in decls) and all(d.conditional for d in decls
                                                                  if d.default is not None):
                names.append(name)
        return tuple(names)


def logical_lines(text: str, *, comments: bool = False) -> list[tuple[int, str]]:
    """(1-based line number, text) of each logical line: `\\` continuations joined; comment and blank
    lines dropped unless `comments` (earthly.sh's reader keeps them). The text keeps its leading
    whitespace (it tells targets from commands)."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        is_comment = not line.strip() or line.lstrip().startswith("#")
        if is_comment and not comments and (not pending or line.strip()):
            continue  # a comment line, also inside a continued command
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def _strip_comment(command: str) -> str:
    """The command without a trailing ` # comment` (a `#` after whitespace, outside quotes)."""
    quote = ""
    for i, ch in enumerate(command):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and i > 0 and command[i - 1].isspace():
            return command[:i].rstrip()
    return command


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    # A trailing comment after whitespace is not part of an unquoted value.
    return re.split(r"\s+#", value, maxsplit=1)[0].strip()


def parse_earthfile(text: str) -> Earthfile:
    version = ""
    args: list[ArgDecl] = []
    targets: list[str] = []
    functions: set[str] = set()
    bodies: dict[str, list[str]] = {}
    base: list[str] = []
    secrets: list[str] = []
    privileged: list[str] = []
    target: str | None = None
    depth = 0
    first_command = False
    for number, line in logical_lines(text):
        header = _TARGET.match(line)
        if header and not line[0].isspace():
            target = header.group(1)
            targets.append(target)
            bodies[target] = []
            depth = 0
            first_command = True
            continue
        command = _strip_comment(line.strip())
        word = command.split(None, 1)[0].upper() if command else ""
        if target is not None:
            if first_command and word in _FUNCTION_BODY:
                functions.add(target)
            first_command = False
            bodies[target].append(command)
        elif command:
            base.append(command)
        if word == "VERSION" and target is None:
            version = command
            continue
        if word == "END":
            depth = max(0, depth - 1)
            continue
        if command.upper().startswith(_OPENS) or word == "TRY":
            depth += 1
            continue
        if word == "ARG":
            match = _ARG.match(command)
            if match:
                default = None if match.group(2) is None else _unquote(match.group(2))
                args.append(ArgDecl(match.group(1), default, target, depth > 0, number))
        elif word == "RUN":
            secrets.extend(_RUN_SECRET.findall(command))
            if re.search(r"^RUN\s+(?:--\S+\s+)*--privileged\b", command) and target is not None:
                privileged.append(target)
    return Earthfile(
        version=version,
        args=tuple(args),
        targets=tuple(t for t in targets if t not in functions),
        run_secrets=tuple(dict.fromkeys(secrets)),
        privileged_runs=tuple(dict.fromkeys(privileged)),
        bodies={t: tuple(lines) for t, lines in bodies.items()},
        base=tuple(base),
    )


def copy_sources(earthfile: Earthfile, target: str) -> tuple[str, ...]:
    """The local paths a target's plain `COPY` steps need from the build context (not `--if-exists`,
    not artifacts of other targets): a missing one fails the build."""
    found: list[str] = []
    for command in earthfile.bodies.get(target, ()):
        if not command.upper().startswith("COPY "):
            continue
        parts = command.split()[1:]
        if any(p.startswith("--if-exists") for p in parts):
            continue
        words = [p for p in parts if not p.startswith("--")]
        for source in words[:-1]:
            if not source.startswith(("+", "(", "$")) and "$" not in source:
                found.append(source)
    return tuple(found)
