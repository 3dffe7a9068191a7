"""Read CanvOS's `earthly.sh` for what it does around Earthly, so the tool can do the same per tag.

edgeforge-ext does not run `earthly.sh`; it runs the Earthly container itself. What that script
decides differs between CanvOS tags, so it is read from the checkout, never kept as a list here:
- the Earthly image (`$SPECTRO_PUB_REPO/earthly/earthly:$EARTHLY_VERSION` v0.8.5 at v4.4.x,
  `"$SPECTRO_PUB_REPO"/third-party/edge/earthly/earthly:"$EARTHLY_VERSION"` v0.8.15 from v4.5.3);
- how extra CA certificates reach the build (`PROXY_CERT_PATH` mounted as `/workspace/sc.crt` at
  v4.4.x; the `certs/` directory from v4.5);
- whether the user's `~/.docker/config.json` is mounted (always at v4.4.12, when present later);
- the Earthly secrets it passes (`--secret UBUNTU_PRO_KEY` when `UBUNTU_PRO_ATTACH=true`, v4.10);
- the BYOOS values it prints after a provider-image build (`print_os_pack`);
- the work it does on the host around the build for some options (the MAAS image, the AMD GPU
  driver prebuild on main), which the tool does not do and so must refuse rather than silently
  build something else.
Pure text parsing; no I/O.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from edgeforge_ext.canvos.earthfile import logical_lines

_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_FUNCTION = re.compile(r"^(?:function\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*\(\)\s*\{?\s*$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_PEEK = re.compile(r'^([A-Za-z_]\w*)="\$\(peek_arg\s+([A-Za-z_]\w*)\b')
_FALLBACK = re.compile(r'^([A-Za-z_]\w*)="\$\{\1:-\$\{([A-Za-z_]\w*):-([^}]*)\}\}"')
_COMPARE = re.compile(
    r'\[\[?\s*"?\$(?:\{)?([A-Za-z_0-9]+)(?::-([^}"]*))?(?:\})?"?\s*(==?|!=)\s*"?([^"\]\s]*)"?\s*\]\]?')
_SECRET_FLAG = re.compile(r"--secret\s+([A-Za-z_][A-Za-z0-9_]*)")

CERTS_DIR = "certs-dir"  # certs/ mounted at /usr/local/share/ca-certificates, custom entrypoint
PROXY_CERT_PATH = "proxy-cert-path"  # PROXY_CERT_PATH mounted as /workspace/sc.crt
NO_CERTS = "none"


@dataclass(frozen=True)
class Condition:
    """A top-level `if` of earthly.sh, reduced to what it compares.

    `target` holds the `+target` the block is for (`"$1" == "+maas-image"`); `args` the build args
    it tests, each (name, default when unset, operator, value). `exact` is False when the condition
    had parts this reader cannot evaluate."""

    text: str
    target: str | None = None
    args: tuple[tuple[str, str, str, str], ...] = ()
    exact: bool = True

    def holds(self, target: str, values: Mapping[str, str]) -> bool | None:
        """Does the block run for this Earthly target and these build args? None: cannot tell."""
        if self.target is not None and self.target != target:
            return False
        for name, default, op, want in self.args:
            have = values.get(name) or default
            if (have == want) != (op in ("=", "==")):
                return False
        return True if self.exact else None


@dataclass(frozen=True)
class HostStep:
    """Host-side work earthly.sh does around Earthly that edgeforge-ext does not do."""

    condition: Condition
    summary: str  # the first comment or echo of the block, to name it
    line: int


@dataclass(frozen=True)
class ScriptSecret:
    """An Earthly secret earthly.sh passes (`--secret NAME`), and when."""

    name: str
    condition: Condition | None


@dataclass(frozen=True)
class EarthlyScript:
    variables: dict[str, str]
    earthly_image: str | None  # the image `build_without_proxy` runs, variables expanded
    cert_mechanism: str  # CERTS_DIR | PROXY_CERT_PATH | NO_CERTS
    docker_config: str  # "always" | "if-present" | "none"
    secrets: tuple[ScriptSecret, ...]
    host_steps: tuple[HostStep, ...]
    os_pack_lines: tuple[str, ...] = ()  # print_os_pack's output from `pack:` on, $VARs unexpanded
    warnings: tuple[str, ...] = field(default=())

    @property
    def earthly_version(self) -> str | None:
        if self.earthly_image and ":" in self.earthly_image.rsplit("/", 1)[-1]:
            return self.earthly_image.rsplit(":", 1)[1]
        return None


def expand(text: str, variables: Mapping[str, str]) -> str:
    """`$NAME` / `${NAME}` replaced from `variables` (unknown ones left as they are)."""
    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return variables.get(name, match.group(0))
    return _VAR.sub(sub, text)


def _top_level_variables(lines: list[tuple[int, str]]) -> dict[str, str]:
    """Plain `NAME=value` assignments at column 0 (no command substitution)."""
    found: dict[str, str] = {}
    for _number, line in lines:
        match = _ASSIGN.match(line)
        if not match or "$(" in match.group(2) or "`" in match.group(2):
            continue
        try:
            words = shlex.split(match.group(2), comments=True)
        except ValueError:
            continue
        if len(words) == 1:
            found[match.group(1)] = expand(words[0], found)
    return found


def _functions(lines: list[tuple[int, str]]) -> dict[str, list[str]]:
    bodies: dict[str, list[str]] = {}
    current: str | None = None
    for _number, line in lines:
        header = _FUNCTION.match(line)
        if header and not line[0].isspace():
            current = header.group(1)
            bodies[current] = []
            continue
        if current is not None:
            if line.startswith("}"):
                current = None
            else:
                bodies[current].append(line)
    return bodies


def _earthly_run(body: list[str]) -> list[str] | None:
    """The argv of the `docker run … --allow-privileged` line of a function, as bash would split it."""
    for line in body:
        if "docker run" in line and "--allow-privileged" in line:
            try:
                return shlex.split(line.strip(), comments=True)
            except ValueError:
                return None
    return None


def _image_of(argv: list[str]) -> str | None:
    if "--allow-privileged" not in argv:
        return None
    i = argv.index("--allow-privileged")
    return argv[i - 1] if i > 0 else None


@dataclass
class _Block:
    line: int
    condition: str
    body: list[str]
    outer: list[str] = field(default_factory=list)  # body lines not inside a nested if


def _top_level_ifs(lines: list[tuple[int, str]]) -> list[_Block]:
    """`if …; then … fi` blocks that start at column 0 outside functions (nested ones belong to them)."""
    blocks: list[_Block] = []
    depth = 0
    in_function = False
    current: _Block | None = None
    for number, line in lines:
        stripped = line.strip()
        if _FUNCTION.match(line) and not line[0].isspace():
            in_function = True
            continue
        if in_function:
            if line.startswith("}"):
                in_function = False
            continue
        opens = stripped.startswith("if ") or stripped.startswith("if[")
        closes = stripped == "fi" or stripped.startswith("fi ") or stripped.startswith("fi;")
        if depth == 0 and opens and not line[0].isspace():
            condition = stripped[3:].split("; then")[0].strip()
            current = _Block(number, condition, [])
            depth = 1
            continue
        if current is not None:
            if opens:
                depth += 1
            elif closes:
                depth -= 1
                if depth == 0:
                    blocks.append(current)
                    current = None
                    continue
            current.body.append(stripped)
            if depth == 1 and not opens:
                current.outer.append(stripped)
        # `for … do … done` loops at the top level are not conditions; their ifs are nested.
    return blocks


def _aliases(lines: list[tuple[int, str]]) -> dict[str, tuple[str, str]]:
    """`X_EFFECTIVE="$(peek_arg NAME "$@")"` + `X_EFFECTIVE="${X_EFFECTIVE:-${NAME:-default}}"`: the
    variable stands for build arg NAME (from the command line or .arg) with that default."""
    found: dict[str, tuple[str, str]] = {}
    for _number, line in lines:
        stripped = line.strip()
        peek = _PEEK.match(stripped)
        if peek:
            found.setdefault(peek.group(1), (peek.group(2), ""))
        fallback = _FALLBACK.match(stripped)
        if fallback:
            found[fallback.group(1)] = (fallback.group(2), fallback.group(3))
    return found


def parse_condition(text: str, aliases: Mapping[str, tuple[str, str]]) -> Condition:
    target: str | None = None
    args: list[tuple[str, str, str, str]] = []
    matched = 0
    for match in _COMPARE.finditer(text):
        name, default, op, value = match.group(1), match.group(2) or "", match.group(3), match.group(4)
        matched += 1
        if name == "1" and op in ("=", "==") and value.startswith("+"):
            target = value[1:]
            continue
        if name in aliases:
            name, alias_default = aliases[name]
            default = default or alias_default
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            return Condition(text, target, tuple(args), exact=False)
        args.append((name, default, op, value))
    pieces = len(re.findall(r"\[\[?", text))
    exact = matched > 0 and matched == pieces and "||" not in text and " -o " not in text
    return Condition(text, target, tuple(args), exact=exact)


# Top-level blocks whose work edgeforge-ext does itself, its own way, recognised by their condition:
# the proxy/no-proxy dispatch to Earthly (the earthly step), the privilege and Docker checks
# (preflight), the exit-status check, the cleanup of earthly.sh's own helper containers, the
# PROXY_CERT_PATH copy (the certificate mechanism) and the BYOOS values loop (os-pack.yaml); and by
# their body: the Earthly secrets (--secret-file).
_HANDLED_CONDITIONS = ("HTTP_PROXY", "--privileged", "command -v docker", "$? -ne 0", "earthly-buildkitd",
                       "PROXY_CERT_PATH", '"$arg"')
_HANDLED_BODIES = ("EARTHLY_SECRET_ARGS=",)


def _handled(block: _Block) -> bool:
    return (any(marker in block.condition for marker in _HANDLED_CONDITIONS)
            or any(marker in line for line in block.body for marker in _HANDLED_BODIES))


def _summary(block: _Block) -> str:
    """A name for the block: its first message to the user, else its first command."""
    for line in block.outer:
        if line.startswith("echo "):
            try:
                words = shlex.split(line)
            except ValueError:
                continue
            said = " ".join(w for w in words[1:] if not w.startswith("-") and not w.startswith(">"))
            if said.strip("= "):
                return said.strip("= ").strip()
    commands = [line for line in block.outer if line and not line.startswith("#")]
    return commands[0] if commands else block.condition


def _os_pack_lines(body: list[str]) -> tuple[str, ...]:
    """What `print_os_pack` echoes, from its `pack:` line on (the banner before it is for humans)."""
    out: list[str] = []
    for line in body:
        stripped = line.strip()
        if not stripped.startswith("echo"):
            continue
        try:
            words = shlex.split(stripped, posix=True)
        except ValueError:
            continue
        texts = [w for w in words[1:] if not re.fullmatch(r"-[neE]+", w)]
        text = " ".join(texts).replace("\\n", "\n")
        out.extend(text.split("\n"))
    for i, line in enumerate(out):
        if line.startswith("pack:"):
            kept = out[i:]
            while kept and not kept[-1].strip():
                kept.pop()
            return tuple(kept)
    return ()


def parse_earthly_script(text: str) -> EarthlyScript:
    lines = logical_lines(text, comments=True)
    variables = _top_level_variables(lines)
    functions = _functions(lines)
    warnings: list[str] = []
    run = _earthly_run(functions.get("build_without_proxy", []))
    if run is None:
        run = next((r for r in (_earthly_run(b) for b in functions.values()) if r), None)
    raw_image = _image_of(run) if run else None
    image = expand(raw_image, variables) if raw_image else None
    if image is not None and "$" in image:
        warnings.append(f"earthly.sh names the Earthly image as {raw_image}, which could not be expanded")
        image = None
    if image is None:
        warnings.append("earthly.sh names no Earthly image this reader understands")

    if "/workspace/sc.crt" in text:
        certs = PROXY_CERT_PATH
    elif re.search(r"certs:/usr/local/share/ca-certificates", text):
        certs = CERTS_DIR
    else:
        certs = NO_CERTS

    run_text = " ".join(run or [])
    if "config.json:/root/.docker/config.json" in run_text:
        docker_config = "always"
    elif "DOCKER_CONFIG_MOUNT" in run_text:
        docker_config = "if-present"
    else:
        docker_config = "none"

    aliases = _aliases(lines)
    blocks = _top_level_ifs(lines)
    secrets: list[ScriptSecret] = []
    for block in blocks:
        for name in _SECRET_FLAG.findall("\n".join(block.body)):
            if name not in {s.name for s in secrets}:
                secrets.append(ScriptSecret(name, parse_condition(block.condition, aliases)))
    for _number, line in lines:  # secrets passed outside any if (comments do not count)
        code = line.split("#", 1)[0]
        for name in _SECRET_FLAG.findall(code):
            if name not in {s.name for s in secrets}:
                secrets.append(ScriptSecret(name, None))
    steps = [HostStep(parse_condition(b.condition, aliases), _summary(b), b.line)
             for b in blocks if not _handled(b)]
    return EarthlyScript(
        variables=variables,
        earthly_image=image,
        cert_mechanism=certs,
        docker_config=docker_config,
        secrets=tuple(secrets),
        host_steps=tuple(steps),
        os_pack_lines=_os_pack_lines(functions.get("print_os_pack", [])),
        warnings=tuple(warnings),
    )
