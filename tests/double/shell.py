"""Expansion of one Earthfile word: what `ARG X=$Y`, `FROM $BASE_IMAGE`, `COPY "$F" ...` become.

Earthly expands arguments with its fork of BuildKit's Dockerfile shell lexer over the ACTIVE variables
only (variables/collection.go:225-231 `Expand` -> `shlex.ProcessWordWithMap(word, c.effective().Map(
WithActive()), ...)`; util/shell/lex.go). The subset here:

- single quotes are literal; double quotes group and still expand `$`; a backslash escapes the next
  character (inside double quotes only before `$`, `"` and `\\`), the escape character is `\\`;
- `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`,
  `${NAME:?word}`, `${NAME?word}`; an unset name expands to nothing;
- `$(command)` runs `command` when the Earthfile has the shell-out-anywhere feature (lex.go shell-out,
  features.go:49); without it `$(` stays literal here and an ARG value that STARTS with `$(` is run
  by the interpreter instead (variables/parse.go:90-103, the old behaviour).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

ShellOut = Callable[[str], str]


class ExpandError(Exception):
    pass


def _is_name_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


class _Lexer:
    def __init__(self, word: str, env: Mapping[str, str], shell_out: ShellOut | None) -> None:
        self.word = word
        self.pos = 0
        self.env = env
        self.shell_out = shell_out

    def peek(self) -> str:
        return self.word[self.pos] if self.pos < len(self.word) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def process(self, stop: str = "") -> str:
        out: list[str] = []
        while self.pos < len(self.word):
            ch = self.peek()
            if stop and ch in stop:
                break
            if ch == "'":
                self.next()
                end = self.word.find("'", self.pos)
                if end == -1:
                    raise ExpandError("unexpected end of statement while looking for matching single-quote")
                out.append(self.word[self.pos:end])
                self.pos = end + 1
            elif ch == '"':
                self.next()
                out.append(self._double_quoted())
            elif ch == "\\":
                self.next()
                if self.pos < len(self.word):
                    out.append(self.next())
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(self.next())
        return "".join(out)

    def _double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self.pos >= len(self.word):
                raise ExpandError("unexpected end of statement while looking for matching double-quote")
            ch = self.peek()
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "\\":
                self.next()
                nxt = self.peek()
                if nxt in ('"', "$", "\\"):
                    out.append(self.next())
                else:
                    out.append("\\")
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(self.next())

    def _dollar(self) -> str:
        self.next()  # the $
        ch = self.peek()
        if ch == "(" and self.shell_out is not None:
            self.next()
            depth, start = 1, self.pos
            while self.pos < len(self.word) and depth:
                c = self.next()
                depth += {"(": 1, ")": -1}.get(c, 0)
            if depth:
                raise ExpandError("unexpected end of statement while looking for matching )")
            return self.shell_out(self.word[start:self.pos - 1])
        if ch == "{":
            self.next()
            name = self._name()
            if not name:
                raise ExpandError(f"missing variable name in ${{ of {self.word!r}")
            op = self.peek()
            if op == "}":
                self.next()
                return self.env.get(name, "")
            colon = False
            if op == ":":
                colon = True
                self.next()
                op = self.peek()
            if op not in "-+?" or not op:
                raise ExpandError(f"unsupported modifier ({op}) in substitution")
            self.next()
            word = self.process(stop="}")
            if self.next() != "}":
                raise ExpandError("syntax error: missing '}'")
            value = self.env.get(name)
            is_set = value is not None and (value != "" or not colon)
            if op == "-":
                return value if is_set and value is not None else word
            if op == "+":
                return word if is_set else ""
            if not is_set:
                raise ExpandError(f"{name}: {word or 'is not allowed to be unset'}")
            return value or ""
        name = self._name()
        if not name:
            return "$"
        return self.env.get(name, "")

    def _name(self) -> str:
        start = self.pos
        while self.pos < len(self.word) and _is_name_char(self.peek()):
            self.pos += 1
        return self.word[start:self.pos]


def expand(word: str, env: Mapping[str, str], shell_out: ShellOut | None = None) -> str:
    """ProcessWordWithMap(word, env): quotes removed, variables substituted."""
    return _Lexer(word, env, shell_out).process()
