"""Variables as Earthly v0.8.15 keeps them: scopes, overriding build args, secrets.

Ported from variables/scope.go, variables/collection.go, variables/parse.go, variables/parsenew.go,
variables/util.go, variables/reserved/names.go and cmd/earthly/common/shared.go. The rules that matter:

- Build args from the command line (after the target) and `--build-arg`/EARTHLY_BUILD_ARGS beat `.arg`
  (shared.go:26-38: CombineScopes(overridingVars, dotEnvVars), first wins).
- Overrides are INACTIVE: they are never visible to `$VAR` expansion, IF or RUN by themselves; they
  only decide the value of an ARG when the Earthfile declares it (collection.go:38-40, 233-241,
  243-265). So an override for an ARG the Earthfile never declares is silently ignored (no error, no
  warning: nothing in earthfile2llb checks unused build args).
- When an ARG is declared, an override wins over its default EVEN WHEN EMPTY: `.arg` saying
  `BASE_IMAGE=` erases `ARG BASE_IMAGE=<default>` (collection.go:233-235 with --arg-scope-and-set;
  collection.go:247-249 for the old declaration path of plain `VERSION 0.6`).
- Built-in args (TARGETARCH, EARTHLY_TARGET_NAME, ...) cannot be passed on the command line
  (parse.go:32-34) and an ARG of that name takes the built-in value (collection.go:237-239).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from . import gofmt

# variables/reserved/names.go: the built-in ARG names.
RESERVED = frozenset("""
EARTHLY_BUILD_SHA EARTHLY_GIT_BRANCH EARTHLY_GIT_COMMIT_TIMESTAMP EARTHLY_GIT_COMMIT_AUTHOR_TIMESTAMP
EARTHLY_GIT_HASH EARTHLY_GIT_ORIGIN_URL EARTHLY_GIT_ORIGIN_URL_SCRUBBED EARTHLY_GIT_PROJECT_NAME
EARTHLY_GIT_AUTHOR EARTHLY_GIT_AUTHOR_EMAIL EARTHLY_GIT_AUTHOR_NAME EARTHLY_GIT_CO_AUTHORS
EARTHLY_GIT_SHORT_HASH EARTHLY_GIT_TAG EARTHLY_GIT_REFS EARTHLY_LOCALLY EARTHLY_PUSH EARTHLY_CI
EARTHLY_CI_RUNNER EARTHLY_SOURCE_DATE_EPOCH EARTHLY_TARGET EARTHLY_TARGET_NAME EARTHLY_TARGET_PROJECT
EARTHLY_TARGET_PROJECT_NO_TAG EARTHLY_TARGET_TAG EARTHLY_TARGET_TAG_DOCKER EARTHLY_VERSION NATIVEARCH
NATIVEOS NATIVEPLATFORM NATIVEVARIANT TARGETARCH TARGETOS TARGETPLATFORM TARGETVARIANT USERARCH USEROS
USERPLATFORM USERVARIANT
""".split())


class VariableError(Exception):
    """An error with Earthly's message; `hint` is printed as "Help: ..." (util/hint/hinterror.go)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class Scope:
    """variables/scope.go: name -> value, and which names are active."""

    values: dict[str, str] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)

    def get(self, name: str, *, active: bool = False) -> str | None:
        if name not in self.values or (active and name not in self.active):
            return None
        return self.values[name]

    def add(self, name: str, value: str, *, active: bool = False, no_override: bool = False) -> bool:
        if no_override and name in self.values:
            return False
        self.values[name] = value
        if active:
            self.active.add(name)
        return True

    def remove(self, name: str) -> None:
        self.values.pop(name, None)
        self.active.discard(name)

    def map(self, *, active: bool = False) -> dict[str, str]:
        return {k: v for k, v in self.values.items() if not active or k in self.active}

    def sorted(self, *, active: bool = False) -> list[str]:
        return sorted(self.map(active=active))

    def clone(self) -> Scope:
        return Scope(dict(self.values), set(self.active))


def combine(*scopes: Scope) -> Scope:
    """scope.go CombineScopes: first scope wins; active entries of any scope beat inactive ones."""
    out = Scope()
    for only_active in (True, False):
        for scope in scopes:
            for k, v in scope.map(active=only_active).items():
                out.add(k, v, active=only_active, no_override=True)
    return out


def parse_key_value(text: str) -> tuple[str, str, bool]:
    """util.go ParseKeyValue: `\\=` escapes an `=` in the key."""
    key: list[str] = []
    escaped = False
    for i, c in enumerate(text):
        if escaped:
            key.append(c)
            escaped = False
            continue
        if c == "\\":
            escaped = True
            continue
        if c == "=":
            return "".join(key), text[i + 1:], True
        key.append(c)
    return "".join(key), "", False


def parse_flag_args_with_non_flags(args: Iterable[str]) -> tuple[list[str], list[str]]:
    """parsenew.go ParseFlagArgsWithNonFlags: `--K=V`, `--K V`, `-K=V` -> "K=V"; others are non-flags."""
    flags: list[str] = []
    non_flags: list[str] = []
    key_from_prev = ""
    for arg in args:
        if key_from_prev:
            k, v = key_from_prev, arg
            key_from_prev = ""
        else:
            if arg.startswith("--"):
                trimmed = arg[2:]
            elif arg.startswith("-"):
                trimmed = arg[1:]
            else:
                non_flags.append(arg)
                continue
            k, v, has_value = parse_key_value(trimmed)
            if not has_value:
                key_from_prev = k
                continue
        flags.append(f"{k.replace('=', chr(92) + '=')}={v}")
    if key_from_prev:
        raise VariableError(f"no value provided for --{key_from_prev}")
    return flags, non_flags


def parse_command_line_args(args: Iterable[str], environ: Mapping[str, str]) -> Scope:
    """parse.go ParseCommandLineArgs (parse.go:18-45): `K=V`, or `K` taking the value from the env."""
    out = Scope()
    for arg in args:
        key, sep, value = arg.partition("=")
        if key in RESERVED:
            raise VariableError(f"built-in arg {key} cannot be passed on the command line")
        if not sep:
            if key not in environ:
                raise VariableError(f"env var {key} not set")
            value = environ[key]
        out.add(key, value)
    return out


def combine_variables(dotenv: Mapping[str, str], flag_args: list[str], build_flag_args: list[str],
                      environ: Mapping[str, str]) -> Scope:
    """shared.go:26-38 CombineVariables: `--build-arg` values, then the args after the target (later
    ones win within the command line), all beating `.arg`. Every entry is an inactive override."""
    dotenv_vars = Scope()
    for k, v in dotenv.items():
        dotenv_vars.add(k, v)
    try:
        overriding = parse_command_line_args([*build_flag_args, *flag_args], environ)
    except VariableError as exc:
        raise VariableError(f"parse build args: {exc}") from exc
    return combine(overriding, dotenv_vars)


def process_secrets(secrets: list[str], secret_files: list[str], dotenv: Mapping[str, str],
                    secrets_file_path: str, environ: Mapping[str, str]) -> dict[str, bytes]:
    """shared.go:40-82 ProcessSecrets: `.secret` entries, `--secret K[=V]` (no value: from the env),
    `--secret-file K=path`; a name given twice is an error."""
    final: dict[str, bytes] = {k: v.encode("utf-8", "surrogateescape") for k, v in dotenv.items()}
    for secret in secrets:
        key, sep, value = secret.partition("=")
        if sep:
            data = value.encode("utf-8", "surrogateescape")
        else:
            if secret not in environ:
                raise VariableError(
                    f"failed to set secret {gofmt.quote(secret)} via --secret flag without a value",
                    f"Try to set an env var by the name {gofmt.quote(secret)} with the secret value or pass "
                    "the value as part of the --secret flag")
            data = environ[secret].encode("utf-8", "surrogateescape")
        if key in final:
            raise VariableError(
                f"failed to set secret {gofmt.quote(key)} via --secret flag",
                f"Check the secret {gofmt.quote(key)} has not already been set in the file "
                f"{gofmt.quote(secrets_file_path)} or passed more than once to the command")
        final[key] = data
    for secret in secret_files:
        key, sep, path = secret.partition("=")
        if not sep:
            raise VariableError(f"unable to parse --secret-file argument: {gofmt.quote(secret)}")
        path = os.path.expanduser(path)  # fileutil.ExpandPath
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise VariableError(f"failed to open {gofmt.quote(path)}: {gofmt.path_error('open', path, exc)}") \
                from exc
        if key in final:
            raise VariableError(
                f"failed to set secret {gofmt.quote(key)} via --secret-file flag",
                f"Check the secret {gofmt.quote(key)} has not already been set in the file "
                f"{gofmt.quote(secrets_file_path)}, or passed via --secret flag")
        final[key] = data
    return final


@dataclass
class Frame:
    """collection.go stackFrame: one target (or one DO of a user-defined command)."""

    name: str
    overriding: Scope
    args: Scope = field(default_factory=Scope)
    globals: Scope = field(default_factory=Scope)
    vars: Scope = field(default_factory=Scope)


class Collection:
    """collection.go Collection: the variables visible while interpreting one target."""

    def __init__(self, *, target_name: str, overriding: Scope, builtin: Scope, arg_scope_set: bool) -> None:
        self.builtin = builtin  # inactive, like collection.go:54
        self.envs = Scope()  # active
        self.arg_scope_set = arg_scope_set  # errorOnRedeclare (VERSION --arg-scope-and-set, or 0.8)
        self.stack = [Frame(target_name, overriding)]

    # -- the frame --------------------------------------------------------------------------------
    @property
    def frame(self) -> Frame:
        return self.stack[-1]

    def effective(self) -> Scope:
        """collection.go:485-490: vars, overriding, builtin, args, envs, globals (first wins)."""
        f = self.frame
        return combine(f.vars, f.overriding, self.builtin, f.args, self.envs, f.globals)

    def get(self, name: str, *, active: bool = True) -> str | None:
        return self.effective().get(name, active=active)

    def active_map(self) -> dict[str, str]:
        """What `$VAR` expansion, IF, FOR and RUN see (collection.go:226-231, converter.go:2185)."""
        return self.effective().map(active=True)

    def enter_frame(self, name: str, overriding: Scope, globals_: Scope) -> None:
        self.stack.append(Frame(name, overriding, globals=globals_))

    def exit_frame(self) -> None:
        self.stack.pop()

    # -- declarations -------------------------------------------------------------------------------
    def _overriding_or_default(self, name: str, default: str) -> str:
        """collection.go:233-241: the override wins, even an empty one; then a built-in; then the default."""
        v = self.frame.overriding.get(name)
        if v is not None:
            return v
        b = self.builtin.get(name)
        if b is not None:
            return b
        return default

    def declare_arg(self, name: str, default: str, *, is_global: bool) -> str:
        """collection.go:315-366 DeclareVar(AsArg), or declareOldArg (243-265) without --arg-scope-and-set."""
        f = self.frame
        if not self.arg_scope_set:
            # declareOldArg: any existing value (the overriding scope included) beats the default.
            existing = self.effective().get(name)
            value = existing if existing is not None else default
            f.args.add(name, value, active=True)
            if is_global:
                f.globals.add(name, value, active=True)
            return value
        if f.vars.get(name, active=True) is not None:
            raise VariableError(
                "this variable was declared twice in the same target",
                f"'{name}' was already declared with LET and cannot be redeclared as an ARG")
        value = self._overriding_or_default(name, default)
        if is_global:
            if f.args.get(name) is not None:
                raise VariableError(
                    "could not override non-global ARG with global ARG: this variable was declared twice in "
                    "the same target",
                    f"'{name}' was already declared as a non-global ARG in this scope - did you mean to add "
                    "'--global' to the original declaration?")
            if not f.globals.add(name, value, active=True, no_override=True):
                raise VariableError(
                    "this variable was declared twice in the same target",
                    f"if you want to change the value of '{name}', redeclare it as a non-argument variable "
                    f"with 'LET {name} = {gofmt.quote(default)}'")
            return value
        if not f.args.add(name, value, active=True, no_override=True):
            raise VariableError(
                "this variable was declared twice in the same target",
                f"if you want to change the value of '{name}', redeclare it as a non-argument variable with "
                f"'LET {name} = {gofmt.quote(default)}'")
        return value

    def declare_let(self, name: str, value: str) -> None:
        """collection.go:320-339 (LET)."""
        if not self.arg_scope_set:
            raise VariableError("LET requires the --arg-scope-and-set feature")
        if name in RESERVED:
            raise VariableError(f"LET cannot override built-in variable {gofmt.quote(name)}")
        if not self.frame.vars.add(name, value, active=True, no_override=True):
            raise VariableError(
                "this variable was declared twice in the same target",
                f"if you want to change the value of '{name}', use 'SET {name} = {gofmt.quote(value)}'")

    def update_var(self, name: str, value: str) -> None:
        """collection.go:390-408 (SET)."""
        if self.effective().get(name, active=True) is None:
            raise VariableError(
                "no matching variable found in this scope",
                f"'{name}' needs to be declared with 'LET {name} = someValue' before it can be used with SET")
        if self.frame.vars.get(name, active=True) is None:
            raise VariableError(
                "ARG values cannot be reassigned",
                f"'{name}' is an ARG and cannot be used with SET - try declaring 'LET {name} = ${name}' first")
        self.frame.vars.add(name, value, active=True)

    def set_arg(self, name: str, value: str) -> None:
        """collection.go:369-372 (FOR's loop variable)."""
        self.frame.args.add(name, value, active=True)

    def unset_arg(self, name: str) -> None:
        self.frame.args.remove(name)

    def declare_env(self, name: str, value: str) -> None:
        self.envs.add(name, value, active=True)

    def reset_envs(self, envs: Mapping[str, str]) -> None:
        """collection.go:115-121: a FROM replaces the environment with the image's."""
        self.envs = Scope()
        for k, v in envs.items():
            self.envs.add(k, v, active=True)

    def stack_string(self) -> str:
        """collection.go:449-462, for "in\\t\\t..." lines of interpreter errors."""
        rows = []
        for f in reversed(self.stack):
            row = [f.name]
            for k in f.args.sorted(active=True):
                v = f.overriding.get(k)
                row.append(f"--{k}={v if v is not None else ''}")
            rows.append(" ".join(row))
        return "\ncalled from\t".join(rows)


def parse_build_args(args: list[str], current: Collection) -> Scope:
    """parse.go:48-88 ParseArgs (BUILD/FROM/COPY `--K=V` after the target): `K` alone takes the
    current value of K."""
    out = Scope()
    for arg in args:
        name, sep, value = arg.partition("=")
        if sep:
            if name in RESERVED:
                raise VariableError(f"parse build arg {arg}: value cannot be specified for built-in build arg {name}")
            out.add(name, value)
            continue
        v = current.get(name, active=True)
        if v is None:
            raise VariableError(
                f"parse build arg {arg}: value not specified for build arg {name} and no value can be inferred")
        out.add(name, v)
    return out
