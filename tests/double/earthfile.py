"""Parse an Earthfile into statements: the subset of the grammar CanvOS uses.

The real parser is ANTLR (ast/parser/*.g4); this one is line based with the same shape:

- `VERSION [flags] 0.N` first; then the base recipe (statements before the first target);
- a target is `name:` at column 0 followed by indented statements; a user-defined command (`NAME:` whose
  first statement is `COMMAND`, or `FUNCTION`) is a target called with `DO`;
- a backslash at the end of a line continues it; `#` lines are comments;
- blocks: `IF`/`ELSE IF`/`ELSE`/`END`, `FOR ... IN ...`/`END`;
- arguments split at white space, quotes and `( ... )` groups kept whole (quotes stay in the word and go
  when it is expanded, ast/parser/EarthLexer.g4 Atom); `RUN ["a", "b"]` is exec mode;
- source locations are the line (1-based) and column (0-based) of the command, as Earthly prints
  them: `Earthfile:12:4` (earthfile2llb/interpretererror.go:51-63).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

TWO_WORD = ("SAVE ARTIFACT", "SAVE IMAGE", "FROM DOCKERFILE", "ELSE IF", "WITH DOCKER", "GIT CLONE")
_TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*):\s*(#.*)?$")
_CONTINUED = re.compile(r"\\[ \t]*$")


class ParseError(Exception):
    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{path}:{line}:{column} {message}")
        self.line = line


@dataclass
class Command:
    name: str
    args: list[str]
    line: int
    column: int
    exec_mode: bool = False
    text: str = ""  # the command as written (continuations joined), for log headers


@dataclass
class IfStatement:
    branches: list[tuple[Command, list[Statement]]]  # the IF and each ELSE IF: (condition, body)
    else_body: list[Statement] | None
    line: int
    column: int


@dataclass
class ForStatement:
    command: Command  # FOR var IN expression
    body: list[Statement]
    line: int
    column: int


Statement = Command | IfStatement | ForStatement


@dataclass
class Target:
    name: str
    body: list[Statement]
    line: int
    is_function: bool = False


@dataclass
class Earthfile:
    path: str
    version: Command | None
    base: list[Statement] = field(default_factory=list)
    targets: dict[str, Target] = field(default_factory=dict)


def split_args(text: str) -> list[str]:
    """White-space separated words; quotes, backslash escapes and ( ) groups stay inside one word."""
    words: list[str] = []
    cur: list[str] = []
    i, depth, quote = 0, 0, ""
    while i < len(text):
        ch = text[i]
        if quote:
            cur.append(ch)
            if ch == "\\" and quote == '"' and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == "\\" and i + 1 < len(text):
            cur.extend((ch, text[i + 1]))
            i += 1
        elif ch == "(" and not cur:
            depth = 1
            cur.append(ch)
        elif ch == "(" and depth:
            depth += 1
            cur.append(ch)
        elif ch == ")" and depth:
            depth -= 1
            cur.append(ch)
        elif ch.isspace() and not depth:
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if cur:
        words.append("".join(cur))
    return words


@dataclass
class _Line:
    number: int
    column: int
    text: str  # without the indentation


def _logical_lines(source: str) -> list[_Line]:
    out: list[_Line] = []
    pending: _Line | None = None
    for number, raw in enumerate(source.splitlines(), start=1):
        stripped = raw.strip()
        if pending is None:
            if not stripped or stripped.startswith("#"):
                continue
            pending = _Line(number, len(raw) - len(raw.lstrip()), raw.strip())
        else:
            if stripped.startswith("#"):  # a comment line inside a continued command
                continue
            pending.text += " " + stripped
        if _CONTINUED.search(pending.text):
            pending.text = _CONTINUED.sub("", pending.text).rstrip()
            continue
        out.append(pending)
        pending = None
    if pending is not None:
        out.append(pending)
    return out


def _command(line: _Line) -> Command:
    text = line.text
    words = text.split(None, 2)
    name = words[0]
    rest = text[len(name):].strip()
    if len(words) > 1 and f"{name} {words[1]}" in TWO_WORD:
        name = f"{name} {words[1]}"
        rest = text.split(None, 2)[2] if len(words) > 2 else ""
    exec_mode = False
    args: list[str]
    if name == "RUN" and rest.rstrip().endswith("]"):
        # Exec form: flags, then a JSON array.
        bracket = rest.find("[")
        flags = split_args(rest[:bracket]) if bracket >= 0 else []
        try:
            parsed = json.loads(rest[bracket:]) if bracket >= 0 else None
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return Command(name, [*flags, *parsed], line.number, line.column, True, text)
    args = split_args(rest)
    if name in ("ARG", "LET", "SET", "ENV") and args and "=" in args[0] and not args[0].startswith("-"):
        # `ARG K=V` is the three words K = V (ast: the = is its own token).
        key, _, value = args[0].partition("=")
        args = [key, "=", " ".join([value, *args[1:]]).strip() if len(args) > 1 else value]
    elif name in ("ARG", "LET", "SET", "ENV"):
        flags = [a for a in args if a.startswith("--")]
        plain = [a for a in args if not a.startswith("--")]
        if plain and "=" in plain[0]:
            key, _, value = plain[0].partition("=")
            args = [*flags, key, "=", " ".join([value, *plain[1:]]).strip() if len(plain) > 1 else value]
    return Command(name, args, line.number, line.column, exec_mode, text)


def parse(source: str, path: str = "Earthfile") -> Earthfile:
    lines = _logical_lines(source)
    ef = Earthfile(path, None)
    idx = 0
    if lines and lines[0].text.split()[0] == "VERSION":
        ef.version = _command(lines[0])
        idx = 1
    # Split into the base recipe and target sections by `name:` lines at column 0.
    sections: list[tuple[_Line | None, list[_Line]]] = [(None, [])]
    for line in lines[idx:]:
        m = _TARGET.match(line.text)
        if line.column == 0 and m:
            sections.append((line, []))
        else:
            if line.column == 0 and sections[-1][0] is not None:
                raise ParseError(path, line.number, 0, "syntax error: commands of a target must be indented")
            sections[-1][1].append(line)
    for header, body_lines in sections:
        body = _block(path, body_lines, 0, ())[0]
        if header is None:
            ef.base = body
            continue
        name = _TARGET.match(header.text).group(1)  # type: ignore[union-attr]
        is_function = bool(body) and isinstance(body[0], Command) and body[0].name in ("COMMAND", "FUNCTION")
        if is_function:
            body = body[1:]
        if name in ef.targets:
            raise ParseError(path, header.number, 0, f"duplicate target {name}")
        ef.targets[name] = Target(name, body, header.number, is_function)
    return ef


def _block(path: str, lines: list[_Line], start: int, enders: tuple[str, ...]) -> tuple[list[Statement], int]:
    """Statements from lines[start:] up to one whose command is in `enders` (that index is returned)."""
    out: list[Statement] = []
    i = start
    while i < len(lines):
        cmd = _command(lines[i])
        if cmd.name in enders or (cmd.name == "ELSE" and "ELSE" in enders):
            return out, i
        if cmd.name == "IF":
            stmt, i = _if(path, lines, i)
            out.append(stmt)
            continue
        if cmd.name == "FOR":
            body, j = _block(path, lines, i + 1, ("END",))
            if j >= len(lines):
                raise ParseError(path, cmd.line, cmd.column, "FOR without END")
            out.append(ForStatement(cmd, body, cmd.line, cmd.column))
            i = j + 1
            continue
        if cmd.name in ("END", "ELSE", "ELSE IF"):
            raise ParseError(path, cmd.line, cmd.column, f"unexpected {cmd.name}")
        out.append(cmd)
        i += 1
    return out, i


def _if(path: str, lines: list[_Line], i: int) -> tuple[IfStatement, int]:
    first = _command(lines[i])
    branches: list[tuple[Command, list[Statement]]] = []
    cond = first
    else_body: list[Statement] | None = None
    i += 1
    while True:
        body, j = _block(path, lines, i, ("END", "ELSE", "ELSE IF"))
        if j >= len(lines):
            raise ParseError(path, first.line, first.column, "IF without END")
        branches.append((cond, body))
        ender = _command(lines[j])
        if ender.name == "END":
            return IfStatement(branches, else_body, first.line, first.column), j + 1
        if ender.name == "ELSE IF":
            cond = ender
            i = j + 1
            continue
        # ELSE: its body runs to END.
        else_body, k = _block(path, lines, j + 1, ("END",))
        if k >= len(lines):
            raise ParseError(path, first.line, first.column, "IF without END")
        return IfStatement(branches, else_body, first.line, first.column), k + 1
