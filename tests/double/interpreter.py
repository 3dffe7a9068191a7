"""Run Earthfile targets the way Earthly v0.8.15 does (earthfile2llb/interpreter.go, converter.go).

What a wrapper can observe, and so what this follows:

- Every target starts with an implicit `FROM +base`: the base recipe (the statements before the first
  target) runs with the same overriding args, and its ARGs become the target's globals
  (interpreter.go:97-105; converter.go:2029-2102 buildTarget propagates globals on FROM).
- In `VERSION 0.6` every base ARG is global (util/flagutil/parse.go:96-115); `--global` needs 0.7.
- BUILD/FROM/COPY of another target pass the caller's overriding args on, explicit `--K=V` first
  (converter.go:1952-1973 prepOverridingVars); DO gives a user-defined command only its own args and the
  base's globals (converter.go:1744-1776 EnterScopeDo).
- IF and FOR run their expression with /bin/sh in the current image, with the active variables as
  environment (interpreter.go:343-388, 415-448; shell.go:40-84); RUN likewise; `$VAR` in other
  commands is expanded by Earthly itself over the active variables only.
- `RUN --privileged` needs `--allow-privileged` (interpreter.go:704-706); `RUN --secret NAME` gives the
  secret as env NAME and /run/secrets/NAME (converter.go:2190-2206) and fails when the build has no
  such secret (util/llbutil/secretprovider/secrets.go:48-50).
- Only targets reached through BUILD (and the target on the command line) save artifacts locally and
  output images (VERSION 0.6 feature referenced-save-only, converter.go:2017-2024), and only after the
  whole build succeeded (builder/builder.go:655-817).
- Identical target invocations are built once.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import dockerfile, rootfs, shell, world
from .console import Console
from .earthfile import Command, Earthfile, ForStatement, IfStatement, Statement, Target, split_args
from .variables import RESERVED, Collection, Scope, VariableError, combine, parse_build_args

TAIL_BYTES = 80 * 1024  # logbus/command.go:20 tailErrorBufferSizeBytes


# ----------------------------------------------------------------------------------------------------
# Features from the VERSION line (features/features.go)

_VERSION_FEATURES = {
    "0.6": {"for-in", "referenced-save-only"},
    "0.7": {"explicit-global", "shell-out-anywhere", "earthly-version-arg", "wait-block", "use-project-secrets"},
    "0.8": {"arg-scope-and-set", "pass-args", "no-network"},
}


@dataclass
class Features:
    enabled: set[str] = field(default_factory=set)

    def has(self, name: str) -> bool:
        return name in self.enabled


def features_for(version: Command | None) -> Features:
    if version is None:
        return Features({"for-in"})  # an Earthfile without VERSION is 0.5: no referenced-save-only
    flags = [a[2:] for a in version.args if a.startswith("--")]
    numbers = [a for a in version.args if not a.startswith("--")]
    if len(numbers) != 1:
        raise BuildFailure("unexpected VERSION arguments; should be VERSION [flags] <major-version>.<minor-version>")
    enabled: set[str] = set()
    for ver, names in _VERSION_FEATURES.items():
        if tuple(int(x) for x in numbers[0].split(".")[:2]) >= tuple(int(x) for x in ver.split(".")):
            enabled |= names
    enabled |= set(flags)
    if "arg-scope-and-set" in enabled and "shell-out-anywhere" not in enabled:  # features.go:289-294
        raise BuildFailure("--arg-scope-and-set requires --shell-out-anywhere")
    return Features(enabled)


# ----------------------------------------------------------------------------------------------------
# Failures


class BuildFailure(Exception):
    """A failed build, with what Earthly prints about it."""

    def __init__(self, message: str, *, target: str | None = None, hint: str | None = None,
                 exit_code: int = 1, command: str | None = None, output: bytes = b"",
                 location: str = "", process_exit: int = 0) -> None:
        super().__init__(message)
        self.process_exit = process_exit  # a RUN's non-zero exit code (then Earthly suggests -i)
        self.message = message
        self.target = target  # the `+name` whose prefix gets *failed*
        self.hint = hint
        self.exit_code = exit_code
        self.command = command  # a failed command (RUN, COPY, ...): printed as "The command ... "
        self.output = output  # its output tail, repeated at the end
        self.location = location  # "Earthfile:12:4"


def _loc(ef: Earthfile, cmd: Command | IfStatement | ForStatement | Target) -> str:
    line = cmd.line
    col = getattr(cmd, "column", 0)
    return f"{os.path.basename(ef.path)}:{line}:{col}"


# ----------------------------------------------------------------------------------------------------
# Target states


@dataclass
class SavedImage:
    refs: list[str]
    push: bool
    tar_root: str  # a frozen copy of the filesystem
    env: dict[str, str]
    workdir: str


@dataclass
class SavedLocal:
    artifact: str  # artifact path as saved (relative to the artifact root)
    dest: str
    if_exists: bool


@dataclass
class State:
    name: str  # "+iso"
    root: str
    artifacts: str
    vars: Collection
    workdir: str = "/"
    do_saves: bool = False
    allow_privileged: bool = True
    save_images: list[SavedImage] = field(default_factory=list)
    save_locals: list[SavedLocal] = field(default_factory=list)
    user: str = "root"


@dataclass
class Options:
    context_dir: str
    allow_privileged: bool
    push: bool
    no_output: bool
    secrets: Mapping[str, bytes]
    builtin: Mapping[str, str]
    state_dir: str


# go-flags options of each command: name -> takes a value ("value"), repeatable ("list") or "bool".
_CMD_FLAGS: dict[str, dict[str, str]] = {
    "FROM": {"platform": "value", "allow-privileged": "bool", "pass-args": "bool", "build-arg": "list"},
    "FROM DOCKERFILE": {"f": "value", "target": "value", "platform": "value", "build-arg": "list",
                        "allow-privileged": "bool"},
    "RUN": {"privileged": "bool", "secret": "list", "push": "bool", "no-cache": "bool", "mount": "list",
            "network": "value", "ssh": "bool", "entrypoint": "bool", "interactive": "bool",
            "interactive-keep": "bool", "with-docker": "bool", "raw-output": "bool", "aws": "bool",
            "oidc": "value"},
    "COPY": {"dir": "bool", "if-exists": "bool", "keep-ts": "bool", "keep-own": "bool", "platform": "value",
             "chmod": "value", "chown": "value", "build-arg": "list", "allow-privileged": "bool",
             "pass-args": "bool", "symlink-no-follow": "bool", "from": "value"},
    "SAVE ARTIFACT": {"keep-ts": "bool", "keep-own": "bool", "if-exists": "bool", "force": "bool",
                      "symlink-no-follow": "bool"},
    "SAVE IMAGE": {"push": "bool", "cache-from": "list", "cache-hint": "bool", "insecure": "bool",
                   "no-manifest-list": "bool", "without-earthly-labels": "bool"},
    "BUILD": {"platform": "list", "allow-privileged": "bool", "pass-args": "bool", "build-arg": "list",
              "auto-skip": "bool"},
    "DO": {"allow-privileged": "bool", "pass-args": "bool"},
    "ARG": {"global": "bool", "required": "bool"},
    "IF": {"privileged": "bool", "secret": "list", "no-cache": "bool", "mount": "list", "ssh": "bool"},
    "ELSE IF": {"privileged": "bool", "secret": "list", "no-cache": "bool", "mount": "list", "ssh": "bool"},
    "FOR": {"privileged": "bool", "secret": "list", "no-cache": "bool", "mount": "list", "ssh": "bool",
            "sep": "value"},
}


def parse_cmd_flags(name: str, args: list[str]) -> tuple[dict[str, object], list[str]]:
    """go-flags as earthfile2llb uses it (util/flagutil): options first, stop at the first non-option."""
    spec = _CMD_FLAGS.get(name, {})
    opts: dict[str, object] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-" or (name in ("BUILD", "FROM", "DO") and a.startswith("+")):
            break
        key, sep, value = a.lstrip("-").partition("=")
        kind = spec.get(key)
        if kind is None:
            raise BuildFailure(f"unknown flag `{key}'")
        if kind == "bool":
            opts[key] = value.lower() not in ("false", "0") if sep else True
        else:
            if not sep:
                i += 1
                if i >= len(args):
                    raise BuildFailure(f"expected argument for flag `--{key}'")
                value = args[i]
            if kind == "list":
                existing = opts.get(key, [])
                opts[key] = [*existing, value] if isinstance(existing, list) else [value]
            else:
                opts[key] = value
        i += 1
    return opts, args[i:]


def _str_list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


# ----------------------------------------------------------------------------------------------------


class Interpreter:
    def __init__(self, ef: Earthfile, opts: Options, console: Console) -> None:
        self.ef = ef
        self.opts = opts
        self.console = console
        self.features = features_for(ef.version)
        self.memo: dict[tuple[object, ...], State] = {}
        self.built: list[State] = []  # in completion order
        self._n = 0

    # -- helpers ---------------------------------------------------------------------------------------
    def _new_dir(self, kind: str) -> str:
        self._n += 1
        path = os.path.join(self.opts.state_dir, f"{self._n:04d}-{kind}")
        os.makedirs(path)
        return path

    def _builtin(self, name: str) -> Scope:
        scope = Scope()
        for k, v in self.opts.builtin.items():
            scope.add(k, v)
        scope.add("EARTHLY_TARGET", name)
        scope.add("EARTHLY_TARGET_NAME", name.lstrip("+"))
        return scope

    def _say(self, st: State, text: str, *, failed: bool = False) -> None:
        self.console.line(st.name, text, failed=failed)

    def _header(self, st: State, text: str) -> None:
        """formatter.go:360-385 printHeader: the overriding args (a metadata line), then "--> CMD"."""
        overriding = st.vars.stack[0].overriding
        if overriding.values:
            self._say(st, " ".join(f"{k}={overriding.values[k]}" for k in overriding.sorted()))
        self._say(st, f"--> {text}")

    def _fail(self, st: State, cmd: Command | IfStatement | ForStatement, text: str,
              cause: Exception | str | None = None) -> BuildFailure:
        """interpretererror.go:41-63: `Earthfile:L:C <text>: <cause>` and `in\t\t<stack>`."""
        message = text if cause is None else f"{text}: {cause}"
        full = f"{_loc(self.ef, cmd)} {message}"
        stack = st.vars.stack_string()
        if stack:
            full += f"\nin\t\t{stack}"
        hint = cause.hint if isinstance(cause, VariableError) else None
        return BuildFailure(full, target=st.name, hint=hint)

    def _command_failed(self, st: State, cmd: Command, failure: str, output: bytes, code: int,
                        hint: str | None = None) -> BuildFailure:
        """logbus/solvermon/vertexmon.go:92-164: the ERROR block of a failed command, printed at once."""
        op = cmd.text
        if code:
            body = f"      The command\n          {op}\n      did not complete successfully. Exit code {code}"
        else:
            body = f"      The command\n          {op}\n      failed: {failure}"
        block = f"ERROR {_loc(self.ef, cmd)}\n{body}"
        self._say(st, block, failed=True)
        return BuildFailure(block, target=st.name, command=op, output=output[-TAIL_BYTES:],
                            location=_loc(self.ef, cmd), hint=hint, process_exit=code)

    def _expand(self, st: State, word: str) -> str:
        shell_out: Callable[[str], str] | None = None
        if self.features.has("shell-out-anywhere"):
            def shell_out(cmd: str) -> str:
                return self._shell_output(st, cmd)
        return shell.expand(word, st.vars.active_map(), shell_out)

    def _env(self, st: State) -> dict[str, str]:
        env = dict(st.vars.active_map())
        env.setdefault("PATH", rootfs.DEFAULT_PATH)
        env.setdefault("HOME", "/root")
        return env

    def _shell_output(self, st: State, script: str) -> str:
        out = bytearray()
        code = rootfs.run(st.root, st.workdir, script, self._env(st), out.extend)
        if code != 0:
            raise BuildFailure(f'process "/bin/sh -c {script}" did not complete successfully: exit code: {code}')
        return out.decode(errors="replace").removesuffix("\n")

    # -- targets -----------------------------------------------------------------------------------------
    def build(self, target: str, overriding: Scope, *, do_saves: bool, allow_privileged: bool,
              caller: State | None = None, cmd: Command | None = None) -> State:
        key = (target, tuple(sorted(overriding.values.items())), do_saves)
        if key in self.memo:
            return self.memo[key]
        name = f"+{target}"
        vars_ = Collection(target_name=name, overriding=overriding, builtin=self._builtin(name),
                           arg_scope_set=self.features.has("arg-scope-and-set"))
        st = State(name, self._new_dir("root"), self._new_dir("artifacts"), vars_, do_saves=do_saves,
                   allow_privileged=allow_privileged)
        if target == "base":
            self.block(st, self.ef.base, is_base=True)
        else:
            tgt = self.ef.targets.get(target)
            if tgt is None or tgt.is_function:
                where = caller.name if caller else name
                text = f"target {target} not found"
                if caller is not None and cmd is not None:
                    raise self._fail(caller, cmd, text)
                raise BuildFailure(f"{os.path.basename(self.ef.path)}:1:0 {text}\nin\t\t{where}", target=where)
            base = self.build("base", overriding, do_saves=False, allow_privileged=allow_privileged)
            self._inherit(st, base, globals_=True)
            self.block(st, tgt.body, is_base=False)
        self.memo[key] = st
        self.built.append(st)
        return st

    def _inherit(self, st: State, src: State, *, globals_: bool) -> None:
        """FROM +target: its filesystem, environment and workdir; on FROM also its globals (converter.go:
        243-284, 2054-2071)."""
        shutil.rmtree(st.root)
        rootfs.copy_tree(src.root, st.root)
        st.workdir = src.workdir
        st.vars.reset_envs(src.vars.envs.map(active=True))
        if globals_:
            glob_scope = src.vars.frame.globals
            for k in glob_scope.sorted(active=True):
                if st.vars.get(k, active=True) is None:
                    st.vars.frame.globals.add(k, glob_scope.values[k], active=True)

    # -- statements --------------------------------------------------------------------------------------
    def block(self, st: State, body: list[Statement], *, is_base: bool) -> None:
        for stmt in body:
            if isinstance(stmt, IfStatement):
                self._if(st, stmt, is_base)
            elif isinstance(stmt, ForStatement):
                self._for(st, stmt, is_base)
            else:
                self.command(st, stmt, is_base)

    def _condition(self, st: State, cmd: Command) -> bool:
        opts, args = parse_cmd_flags(cmd.name, cmd.args)
        if not args:
            raise self._fail(st, cmd, "not enough arguments for IF")
        self._check_privileged(st, cmd, opts)
        script = " ".join(args)  # interpreter.go:368: the shell expands, not Earthly
        self._header(st, f"{cmd.name} {script}".replace("ELSE IF", "IF"))
        out = bytearray()
        with rootfs.secret_files(st.root, self._secrets_for(st, cmd, _str_list(opts.get("secret")))):
            code = rootfs.run(st.root, st.workdir, script, self._run_env(st, cmd, opts), out.extend)
        if out:
            self._say(st, out.decode(errors="replace"))
        return code == 0

    def _if(self, st: State, stmt: IfStatement, is_base: bool) -> None:
        for cond, body in stmt.branches:
            if self._condition(st, cond):
                self.block(st, body, is_base=is_base)
                return
        if stmt.else_body is not None:
            self.block(st, stmt.else_body, is_base=is_base)

    def _for(self, st: State, stmt: ForStatement, is_base: bool) -> None:
        opts, args = parse_cmd_flags("FOR", stmt.command.args)
        if not self.features.has("for-in"):
            raise self._fail(st, stmt.command, "the FOR command is not supported in this version")
        if len(args) < 3:
            raise self._fail(st, stmt.command, "not enough arguments for FOR")
        if args[1] != "IN":
            raise self._fail(st, stmt.command, f"expected IN, got {args[1]}")
        variable = args[0]
        script = "echo " + " ".join(args[2:])  # shell.go:56-58 expression: `echo <args>`
        self._header(st, f"FOR {' '.join(args)}")
        out = bytearray()
        code = rootfs.run(st.root, st.workdir, script, self._run_env(st, stmt.command, opts), out.extend)
        if code != 0:
            raise self._command_failed(st, stmt.command, "", bytes(out), code)
        seps = str(opts.get("sep", " \t\n"))
        text = out.decode(errors="replace").removesuffix("\n")
        instances = [w for w in _fields(text, seps) if w]
        for instance in instances:
            st.vars.set_arg(variable, instance)
            self.block(st, stmt.body, is_base=is_base)
            st.vars.unset_arg(variable)

    def command(self, st: State, cmd: Command, is_base: bool) -> None:
        handler = getattr(self, "_cmd_" + cmd.name.lower().replace(" ", "_"), None)
        if handler is None:
            raise self._fail(st, cmd, f"the command {cmd.name} is not modeled by the Earthly test double")
        try:
            handler(st, cmd, is_base)
        except VariableError as exc:
            raise self._fail(st, cmd, f"apply {cmd.name}", exc) from exc

    # -- ARG, LET, SET, ENV ------------------------------------------------------------------------------
    def _cmd_arg(self, st: State, cmd: Command, is_base: bool) -> None:
        """interpreter.go handleArg + flagutil.ParseArgArgs + converter.go:1393-1432."""
        try:
            opts, args = parse_cmd_flags("ARG", cmd.args)
        except BuildFailure as exc:
            raise self._fail(st, cmd, f"invalid ARG arguments {cmd.args}", exc.message) from exc
        is_global = bool(opts.get("global"))
        if is_global and not self.features.has("explicit-global"):
            raise self._fail(st, cmd, f"invalid ARG arguments {cmd.args}", "unknown flag --global")
        if is_global and not is_base:
            raise self._fail(st, cmd, f"invalid ARG arguments {cmd.args}",
                             "global ARG can only be set in the base target")
        if not self.features.has("explicit-global"):
            is_global = is_base  # parse.go:110-113: every base ARG is global before VERSION 0.7
        if len(args) == 3 and args[1] == "=":
            name, default = args[0], self._arg_default(st, args[2])
        elif len(args) == 1:
            name, default = args[0], ""
        else:
            raise self._fail(st, cmd, f"invalid ARG arguments {cmd.args}", "invalid syntax")
        value = st.vars.declare_arg(name, default, is_global=is_global)
        if opts.get("required") and value == "":
            raise self._fail(st, cmd, "apply ARG", f"value not supplied for required ARG: {name}")
        if default and name in RESERVED:
            raise self._fail(st, cmd, "apply ARG", f"arg default value supplied for built-in ARG: {name}")

    def _arg_default(self, st: State, raw: str) -> str:
        value = self._expand(st, raw)
        if not self.features.has("shell-out-anywhere") and value.startswith("$("):
            # variables/parse.go:90-103: the old non-constant ARG, the whole value run as a command
            value = self._shell_output(st, value[2:-1] if value.endswith(")") else value[2:])
        return value

    def _cmd_let(self, st: State, cmd: Command, is_base: bool) -> None:
        if len(cmd.args) != 3 or cmd.args[1] != "=":
            raise self._fail(st, cmd, f"invalid LET arguments {cmd.args}", "invalid syntax")
        st.vars.declare_let(cmd.args[0], self._expand(st, cmd.args[2]))

    def _cmd_set(self, st: State, cmd: Command, is_base: bool) -> None:
        if len(cmd.args) != 3 or cmd.args[1] != "=":
            raise self._fail(st, cmd, f"invalid SET arguments {cmd.args}", "invalid syntax")
        st.vars.update_var(cmd.args[0], self._expand(st, cmd.args[2]))

    def _cmd_env(self, st: State, cmd: Command, is_base: bool) -> None:
        args = cmd.args
        if len(args) == 3 and args[1] == "=":
            key, value = args[0], args[2]
        elif len(args) >= 2:
            key, value = args[0], " ".join(args[1:])
        else:
            raise self._fail(st, cmd, f"invalid ENV arguments {cmd.args}", "invalid syntax")
        st.vars.declare_env(key, self._expand(st, value))

    def _cmd_version(self, st: State, cmd: Command, is_base: bool) -> None:
        raise self._fail(st, cmd, "VERSION is only allowed as the first command of an Earthfile")

    # -- FROM ----------------------------------------------------------------------------------------------
    def _split_target_args(self, st: State, words: list[str]) -> tuple[str, list[str]]:
        """`+t --K=V ...` or `(+t --K=V)`: the reference and its build args, expanded in the caller."""
        if len(words) == 1 and words[0].startswith("(") and words[0].endswith(")"):
            words = split_args(words[0][1:-1])
        ref = self._expand(st, words[0])
        flags, non_flags = parse_flag_args_after(words[1:], lambda w: self._expand(st, w))
        if non_flags:
            raise BuildFailure(f"invalid argument {non_flags[0]}")
        return ref, flags

    def _child_overriding(self, st: State, build_args: list[str], pass_args: bool) -> Scope:
        """converter.go:1952-1973 prepOverridingVars (local targets: propagate)."""
        explicit = parse_build_args(build_args, st.vars)
        if pass_args:
            f = st.vars.frame
            return combine(explicit, f.overriding, f.args, f.globals)
        return combine(explicit, st.vars.frame.overriding)

    def _cmd_from(self, st: State, cmd: Command, is_base: bool) -> None:
        try:
            opts, args = parse_cmd_flags("FROM", cmd.args)
        except BuildFailure as exc:
            raise self._fail(st, cmd, f"invalid FROM arguments {cmd.args}", exc.message) from exc
        if not args:
            raise self._fail(st, cmd, f"invalid number of arguments for FROM: {cmd.args}")
        if len(args) == 3 and args[1] == "AS":
            raise self._fail(st, cmd, "AS not supported, use earthly targets instead")
        image = self._expand(st, args[0])
        build_args = [self._expand(st, a) for a in _str_list(opts.get("build-arg"))]
        flag_args, _ = parse_flag_args_after(args[1:], lambda w: self._expand(st, w))
        build_args = [*flag_args, *build_args]
        if "+" in image:  # converter.go:205-208: a target
            target = image.split("+", 1)[1]
            if image.split("+", 1)[0] not in ("", "."):
                raise self._fail(st, cmd, f"apply FROM {image}", "remote Earthfiles are not modeled by the double")
            overriding = self._child_overriding(st, build_args, bool(opts.get("pass-args")))
            src = self.build(target, overriding, do_saves=False, allow_privileged=st.allow_privileged, caller=st,
                             cmd=cmd)
            self._inherit(st, src, globals_=True)
            return
        if build_args:
            raise self._fail(st, cmd, f"apply FROM {image}", "--build-arg not supported in non-target FROM")
        self._header(st, f"FROM {image}")
        try:
            self._pull_into(st, image)
        except world.PullError as exc:
            raise self._fail(st, cmd, f"apply FROM {image}", exc) from exc

    def _pull(self, image: str) -> str:
        root = self._new_dir("root")
        if image == "scratch":
            return root
        ref = world.resolve(image)
        rootfs.make_image(root, str(ref), iso_tools=world.has_iso_tools(ref))
        return root

    def _pull_into(self, st: State, image: str) -> None:
        root = self._pull(image)
        shutil.rmtree(st.root)
        st.root = root
        st.workdir = "/"
        st.vars.reset_envs({} if image == "scratch" else {"PATH": rootfs.DEFAULT_PATH})

    def _cmd_from_dockerfile(self, st: State, cmd: Command, is_base: bool) -> None:
        try:
            opts, args = parse_cmd_flags("FROM DOCKERFILE", cmd.args)
        except BuildFailure as exc:
            raise self._fail(st, cmd, f"invalid FROM DOCKERFILE arguments {cmd.args}", exc.message) from exc
        if len(args) < 1:
            raise self._fail(st, cmd, "invalid number of arguments for FROM DOCKERFILE")
        context = self._expand(st, args[0])
        build_args: dict[str, str] = {}
        flag_args, _ = parse_flag_args_after(args[1:], lambda w: self._expand(st, w))
        for kv in [*flag_args, *(self._expand(st, a) for a in _str_list(opts.get("build-arg")))]:
            k, _, v = kv.partition("=")
            build_args[k] = v
        df_rel = os.path.normpath(self._expand(st, str(opts.get("f", ""))) or os.path.join(context, "Dockerfile"))
        df_path = os.path.join(self.opts.context_dir, df_rel)
        self._header(st, f"FROM DOCKERFILE {' '.join(args)}")
        try:
            with open(df_path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise self._fail(st, cmd, "from dockerfile", f"read file {df_rel}: {exc.strerror}") from exc
        ctx_dir = os.path.join(self.opts.context_dir, context)

        def run(root: str, workdir: str, script: str, env: Mapping[str, str]) -> int:
            self._header(st, f"RUN {script}")
            return rootfs.run(root, workdir, script, {"HOME": "/root", **env},
                              lambda b: self._say(st, b.decode(errors="replace")))

        def copy(root: str, srcs: list[str], dest: str, workdir: str) -> None:
            # BuildKit's Dockerfile COPY allows a wildcard that matches nothing (`COPY sc.cr[t] ...`).
            for src in srcs:
                self._copy_from_dir(ctx_dir, root, [src], dest, workdir, if_exists=glob.has_magic(src),
                                    is_dir=False)

        try:
            root, env, workdir = dockerfile.build(text, build_args, dockerfile.Hooks(self._pull, run, copy),
                                                  df_rel)
        except (dockerfile.DockerfileError, world.PullError, FileNotFoundError) as exc:
            raise self._fail(st, cmd, "from dockerfile", exc) from exc
        shutil.rmtree(st.root)
        st.root, st.workdir = root, workdir
        st.vars.reset_envs(env)

    # -- RUN -------------------------------------------------------------------------------------------------
    def _check_privileged(self, st: State, cmd: Command, opts: Mapping[str, object]) -> None:
        if opts.get("privileged") and not st.allow_privileged:
            raise self._fail(st, cmd, "Permission denied: unwilling to run privileged command; did you reference "
                             "a remote Earthfile without the --allow-privileged flag?")

    def _secrets_for(self, st: State, cmd: Command, names: list[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for raw in names:
            spec = self._expand(st, raw)
            env_name, _, secret_id = spec.partition("=")
            secret_id = secret_id or env_name
            if secret_id.startswith("+secrets/"):
                secret_id = secret_id[len("+secrets/"):]
            if not secret_id:
                continue
            if secret_id not in self.opts.secrets:
                # secretprovider/secrets.go:48-50 (the hint is cut from the ERROR block, vertexmon.go:99-101)
                raise self._command_failed(
                    st, cmd, f'unable to lookup secret "{secret_id}": not found', b"", 0,
                    hint="Make sure to set the project at the top of the Earthfile by using the PROJECT command.\n"
                    "Note, if this secret was called from a FUNCTION, the project needs to be set in the "
                    "Earthfile that calls the FUNCTION.\n")
            out[secret_id] = self.opts.secrets[secret_id]
        return out

    def _run_env(self, st: State, cmd: Command, opts: Mapping[str, object]) -> dict[str, str]:
        env = self._env(st)
        for raw in _str_list(opts.get("secret")):
            spec = self._expand(st, raw)
            env_name, _, secret_id = spec.partition("=")
            secret_id = (secret_id or env_name).removeprefix("+secrets/")
            if secret_id in self.opts.secrets:
                env[env_name] = self.opts.secrets[secret_id].decode("utf-8", "surrogateescape")
        return env

    def _cmd_run(self, st: State, cmd: Command, is_base: bool) -> None:
        try:
            opts, args = parse_cmd_flags("RUN", cmd.args)
        except BuildFailure as exc:
            raise self._fail(st, cmd, f"invalid RUN arguments {cmd.args}", exc.message) from exc
        if not args:
            raise self._fail(st, cmd, "not enough arguments for RUN")
        self._check_privileged(st, cmd, opts)
        if opts.get("push") and not self.opts.push:
            self._say(st, f"Did not execute push command RUN --push {' '.join(args)}")
            return
        self._header(st, cmd.text)
        secrets = self._secrets_for(st, cmd, _str_list(opts.get("secret")))
        tail = bytearray()

        def show(chunk: bytes) -> None:
            tail.extend(chunk)
            if len(tail) > TAIL_BYTES:
                del tail[:len(tail) - TAIL_BYTES]
            self._say(st, chunk.decode(errors="replace"))

        env = self._run_env(st, cmd, opts)
        with rootfs.secret_files(st.root, secrets):
            if cmd.exec_mode:
                code = rootfs.run(st.root, st.workdir, "", env, show, argv=args)
            else:
                code = rootfs.run(st.root, st.workdir, " ".join(args), env, show)
        if code != 0:
            raise self._command_failed(st, cmd, "", bytes(tail), code)

    # -- WORKDIR, USER and config-only commands ------------------------------------------------------------------
    def _cmd_workdir(self, st: State, cmd: Command, is_base: bool) -> None:
        if len(cmd.args) != 1:
            raise self._fail(st, cmd, "invalid number of arguments for WORKDIR")
        path = self._expand(st, cmd.args[0])
        st.workdir = os.path.normpath(os.path.join(st.workdir, path))
        os.makedirs(rootfs.inside(st.root, st.workdir), exist_ok=True)

    def _cmd_user(self, st: State, cmd: Command, is_base: bool) -> None:
        st.user = self._expand(st, cmd.args[0]) if cmd.args else "root"

    def _config_only(self, st: State, cmd: Command, is_base: bool) -> None:
        """ENTRYPOINT, CMD, LABEL, EXPOSE, VOLUME, HEALTHCHECK: only the image config changes."""

    _cmd_entrypoint = _cmd_cmd = _cmd_label = _cmd_expose = _cmd_volume = _cmd_healthcheck = _config_only

    def _cmd_command(self, st: State, cmd: Command, is_base: bool) -> None:
        raise self._fail(st, cmd, "COMMAND is only allowed as the first command of a user-defined command")

    _cmd_function = _cmd_command

    # -- COPY ------------------------------------------------------------------------------------------------------
    def _copy_from_dir(self, base: str, root: str, srcs: list[str], dest: str, workdir: str, *, if_exists: bool,
                       is_dir: bool) -> None:
        """Docker/Earthly COPY: a directory source copies its contents; several sources or a dest ending in
        / make dest a directory."""
        matches: list[str] = []
        for src in srcs:
            pattern = os.path.join(base, src)
            if glob.has_magic(src):
                found = sorted(glob.glob(pattern))
            else:
                found = [pattern] if os.path.lexists(pattern) else []
            if not found and not if_exists:
                raise FileNotFoundError(f'"/{os.path.normpath(src).lstrip("./")}": not found')
            matches.extend(found)
        target = rootfs.inside(root, os.path.join(workdir, dest))
        dest_is_dir = dest.endswith("/") or len(matches) > 1 or os.path.isdir(target) or dest in (".", "./")
        for m in matches:
            if os.path.isdir(m) and not os.path.islink(m):
                out = os.path.join(target, os.path.basename(m.rstrip("/"))) if is_dir else target
                rootfs.copy_tree(m, out)
            else:
                out = os.path.join(target, os.path.basename(m)) if dest_is_dir else target
                os.makedirs(os.path.dirname(out), exist_ok=True)
                if os.path.lexists(out) and not os.path.isdir(out):
                    os.remove(out)
                shutil.copy2(m, out, follow_symlinks=False)

    def _cmd_copy(self, st: State, cmd: Command, is_base: bool) -> None:
        try:
            opts, args = parse_cmd_flags("COPY", cmd.args)
        except BuildFailure as exc:
            raise self._fail(st, cmd, f"invalid COPY arguments {cmd.args}", exc.message) from exc
        if len(args) < 2:
            raise self._fail(st, cmd, "not enough COPY arguments")
        dest = self._expand(st, args[-1])
        if_exists = bool(opts.get("if-exists"))
        is_dir = bool(opts.get("dir"))
        self._header(st, cmd.text)
        for word in args[:-1]:
            expanded_first = self._expand(st, word.strip("()").split()[0]) if word.startswith("(") else \
                self._expand(st, word)
            if "+" in expanded_first.split("/")[0]:
                ref, flag_args = self._split_target_args(st, [word]) if word.startswith("(") \
                    else (expanded_first, [])
                build_args = [*flag_args, *(self._expand(st, a) for a in _str_list(opts.get("build-arg")))]
                self._copy_artifact(st, cmd, ref, build_args, dest, if_exists=if_exists, is_dir=is_dir,
                                    pass_args=bool(opts.get("pass-args")))
            else:
                try:
                    self._copy_from_dir(self.opts.context_dir, st.root, [expanded_first], dest, st.workdir,
                                        if_exists=if_exists, is_dir=is_dir)
                except FileNotFoundError as exc:
                    raise self._command_failed(st, cmd, str(exc).strip("'"), b"", 0) from exc

    def _copy_artifact(self, st: State, cmd: Command, ref: str, build_args: list[str], dest: str, *,
                       if_exists: bool, is_dir: bool, pass_args: bool) -> None:
        target_part, _, artifact = ref.partition("/")
        target = target_part.split("+", 1)[1]
        overriding = self._child_overriding(st, build_args, pass_args)
        src = self.build(target, overriding, do_saves=False, allow_privileged=st.allow_privileged, caller=st, cmd=cmd)
        if artifact in ("", "."):
            sources = [os.path.join(src.artifacts, e) for e in sorted(os.listdir(src.artifacts))]
            contents = True
        else:
            pattern = os.path.join(src.artifacts, artifact)
            sources = sorted(glob.glob(pattern)) if glob.has_magic(artifact) else \
                ([pattern] if os.path.lexists(pattern) else [])
            contents = False
        if not sources and not contents:
            if if_exists:
                return
            raise self._command_failed(st, cmd, f'"/{artifact}": not found', b"", 0)
        target_dir = rootfs.inside(st.root, os.path.join(st.workdir, dest))
        dest_is_dir = contents or dest.endswith("/") or len(sources) > 1 or os.path.isdir(target_dir)
        for s in sources:
            out = os.path.join(target_dir, os.path.basename(s)) if dest_is_dir else target_dir
            if os.path.isdir(s) and not os.path.islink(s):
                # A directory copies its CONTENTS (Docker COPY semantics), itself only with --dir; the
                # entries of a whole artifact root (`COPY +t/ dest`) keep their names.
                rootfs.copy_tree(s, os.path.join(target_dir, os.path.basename(s)) if (contents or is_dir)
                                 else target_dir)
            else:
                os.makedirs(os.path.dirname(out), exist_ok=True)
                if os.path.lexists(out) and not os.path.isdir(out):
                    os.remove(out)
                shutil.copy2(s, out, follow_symlinks=False)

    # -- SAVE ARTIFACT / SAVE IMAGE ----------------------------------------------------------------------------------
    def _cmd_save_artifact(self, st: State, cmd: Command, is_base: bool) -> None:
        try:
            opts, args = parse_cmd_flags("SAVE ARTIFACT", cmd.args)
        except BuildFailure as exc:
            raise self._fail(st, cmd, f"invalid SAVE ARTIFACT arguments {cmd.args}", exc.message) from exc
        words = [self._expand(st, a) for a in args]
        local: str | None = None
        if len(words) >= 3 and words[-3] == "AS" and words[-2] == "LOCAL":
            local = words[-1]
            words = words[:-3]
        if not 1 <= len(words) <= 2:
            raise self._fail(st, cmd, f"invalid arguments for SAVE ARTIFACT command: {cmd.args}")
        src = words[0]
        src_abs = os.path.normpath(os.path.join(st.workdir, src))
        dest = words[1] if len(words) == 2 else ""
        self._header(st, cmd.text)
        if glob.has_magic(src):
            matches = sorted(glob.glob(rootfs.inside(st.root, src_abs)))
        else:
            path = rootfs.inside(st.root, src_abs)
            matches = [path] if os.path.lexists(path) else []
        if not matches:
            if opts.get("if-exists"):
                return
            raise self._command_failed(st, cmd, f'"{src_abs}": not found', b"", 0)
        saved: list[str] = []
        wildcard = glob.has_magic(src)
        for m in matches:
            if src_abs == "/" and dest:
                name = dest.rstrip("/")
                out = os.path.join(st.artifacts, name)
                rootfs.copy_tree(m, out)
                saved.append(name)
                continue
            contents = src.endswith("/") and os.path.isdir(m)
            if dest in ("", ".", "./") or dest.endswith("/") or wildcard:
                base_dir = os.path.join(st.artifacts, dest) if dest not in ("", ".", "./") else st.artifacts
                if contents:
                    rootfs.copy_tree(m, base_dir)
                    saved.extend(sorted(os.listdir(m)))
                    continue
                name = os.path.relpath(os.path.join(base_dir, os.path.basename(m)), st.artifacts)
            else:
                name = dest.lstrip("/")
            out = os.path.join(st.artifacts, name)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            if os.path.isdir(m) and not os.path.islink(m):
                rootfs.copy_tree(m, out)
            else:
                shutil.copy2(m, out, follow_symlinks=False)
            saved.append(name)
        if local is not None and st.do_saves:
            for name in saved:
                st.save_locals.append(SavedLocal(name, _local_dest(local, name, len(saved) > 1 or wildcard),
                                                 bool(opts.get("if-exists"))))

    def _cmd_save_image(self, st: State, cmd: Command, is_base: bool) -> None:
        try:
            opts, args = parse_cmd_flags("SAVE IMAGE", cmd.args)
        except BuildFailure as exc:
            raise self._fail(st, cmd, f"invalid SAVE IMAGE arguments {cmd.args}", exc.message) from exc
        refs = [self._expand(st, a) for a in args]
        for ref in refs:
            try:
                world.parse_normalized_named(ref)
            except world.ReferenceError as exc:
                raise self._fail(st, cmd, f"apply SAVE IMAGE {ref}", f"parse normalized named {ref}: {exc}") from exc
        frozen = self._new_dir("image")
        rootfs.copy_tree(st.root, frozen)
        st.save_images.append(SavedImage(refs, bool(opts.get("push")), frozen, st.vars.envs.map(active=True),
                                         st.workdir))

    # -- BUILD, DO -------------------------------------------------------------------------------------------------
    def _cmd_build(self, st: State, cmd: Command, is_base: bool) -> None:
        try:
            opts, args = parse_cmd_flags("BUILD", cmd.args)
        except BuildFailure as exc:
            raise self._fail(st, cmd, f"invalid BUILD arguments {cmd.args}", exc.message) from exc
        if not args:
            raise self._fail(st, cmd, "invalid number of arguments for BUILD")
        ref, flag_args = self._split_target_args(st, args)
        build_args = [*flag_args, *(self._expand(st, a) for a in _str_list(opts.get("build-arg")))]
        if "+" not in ref or ref.split("+", 1)[0] not in ("", "."):
            raise self._fail(st, cmd, f"apply BUILD {ref}", "only local targets are modeled by the double")
        overriding = self._child_overriding(st, build_args, bool(opts.get("pass-args")))
        # ReferencedSaveOnly: a BUILD keeps the caller's "saves" (converter.go:2017-2020).
        saves = st.do_saves if self.features.has("referenced-save-only") else True
        self.build(ref.split("+", 1)[1], overriding, do_saves=saves, allow_privileged=st.allow_privileged,
                   caller=st, cmd=cmd)

    def _cmd_do(self, st: State, cmd: Command, is_base: bool) -> None:
        try:
            opts, args = parse_cmd_flags("DO", cmd.args)
        except BuildFailure as exc:
            raise self._fail(st, cmd, f"invalid DO arguments {cmd.args}", exc.message) from exc
        if not args:
            raise self._fail(st, cmd, "invalid number of arguments for DO")
        ref, flag_args = self._split_target_args(st, args)
        name = ref.split("+", 1)[1]
        udc = self.ef.targets.get(name)
        if udc is None or not udc.is_function:
            raise self._fail(st, cmd, f"apply DO {ref}", f"{name} is not a user-defined command")
        explicit = parse_build_args(flag_args, st.vars)
        if opts.get("pass-args"):
            f = st.vars.frame
            explicit = combine(explicit, f.overriding, f.args, f.globals)
        # converter.go:1744-1776: the base's globals, computed with the DO args and the top overriding args.
        top = combine(explicit, st.vars.stack[0].overriding) if self.features.has("arg-scope-and-set") \
            else combine(explicit, st.vars.frame.overriding)
        base = self.build("base", top, do_saves=False, allow_privileged=st.allow_privileged)
        st.vars.enter_frame(ref, explicit, base.vars.frame.globals.clone())
        try:
            self.block(st, udc.body, is_base=False)
        finally:
            st.vars.exit_frame()

    # -- unsupported with a clear message --------------------------------------------------------------------------
    def _unsupported(self, st: State, cmd: Command, is_base: bool) -> None:
        raise self._fail(st, cmd, f"the command {cmd.name} is not modeled by the Earthly test double")

    _cmd_locally = _cmd_with_docker = _cmd_git_clone = _cmd_import = _cmd_project = _cmd_cache = _cmd_host = \
        _unsupported


def _fields(text: str, seps: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    for ch in text:
        if ch in seps:
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def _local_dest(local: str, artifact: str, several: bool) -> str:
    """SAVE ARTIFACT ... AS LOCAL: a destination ending in / (or several artifacts) is a directory."""
    if local.endswith("/") or several:
        return os.path.join(local, os.path.basename(artifact))
    return local


def parse_flag_args_after(words: list[str], expand: Callable[[str], str]) -> tuple[list[str], list[str]]:
    """The `--K=V` words after a target reference (variables/parsenew.go via ParseFlagArgs)."""
    from .variables import parse_flag_args_with_non_flags

    return parse_flag_args_with_non_flags([expand(w) for w in words])


def temp_state_dir() -> str:
    base = os.environ.get("EARTHLY_TMP_DIR") or tempfile.gettempdir()
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix="earthly-double-", dir=base)
