"""Earthly's command line as urfave/cli v2.27 (go.mod:53) parses it with Go's flag package.

- Global flags come before the target: `earthly [flags] +target [--KEY=value ...]`. Parsing stops at the
  first non-flag word (Go flag package), so everything after `+target` is the target's build args
  (cmd/earthly/subcmd/build_cmd.go:155 ParseFlagArgsWithNonFlags).
- An unknown flag is "Incorrect Usage: flag provided but not defined: -NAME" on stdout, then the help,
  exit 1 (urfave/cli command.go `Incorrect Usage:`; Go flag.go failf). `--KEY=value` before the target
  names the flag `KEY` (the `=value` is not part of the name).
- Short options combine (`-PV`, create.go:32 SetAppUseShortOptionHandling).
- Environment variables (cmd/earthly/flag/global.go, cmd/earthly/subcmd/build_flags.go): a flag's env
  var is used when the flag is not on the command line; StringSlice env values are split at commas
  and trimmed (urfave flag_string_slice.go flagSplitMultiValues); command-line values replace them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Flag:
    name: str
    kind: str  # "bool" | "string" | "slice" | "duration"
    env: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    default: str = ""


def _f(name: str, kind: str, *env: str, aliases: tuple[str, ...] = (), default: str = "") -> Flag:
    return Flag(name, kind, tuple(env), aliases, default)


# cmd/earthly/flag/global.go RootFlags (v0.8.15, lines 110-537) and build_flags.go (lines 11-45), which
# the root app also accepts (cmd/earthly/app/create.go:36-37).
ROOT_FLAGS: tuple[Flag, ...] = (
    _f("installation-name", "string", "EARTHLY_INSTALLATION_NAME", default="earthly"),
    _f("config", "string", "EARTHLY_CONFIG"),
    _f("ssh-auth-sock", "string", "EARTHLY_SSH_AUTH_SOCK"),
    _f("auth-token", "string", "EARTHLY_TOKEN"),
    _f("auth-jwt", "string", "EARTHLY_JWT"),
    _f("git-username", "string", "GIT_USERNAME"),
    _f("git-password", "string", "GIT_PASSWORD"),
    _f("git-branch", "string", "EARTHLY_GIT_BRANCH_OVERRIDE"),
    _f("verbose", "bool", "EARTHLY_VERBOSE", aliases=("V",)),
    _f("debug", "bool", "EARTHLY_DEBUG", aliases=("D",)),
    _f("exec-stats", "bool", "EARTHLY_EXEC_STATS"),
    _f("exec-stats-summary", "string", "EARTHLY_EXEC_STATS_SUMMARY"),
    _f("profiler", "bool", "EARTHLY_PROFILER"),
    _f("buildkit-host", "string", "EARTHLY_BUILDKIT_HOST"),
    _f("server", "string", "EARTHLY_SERVER_ADDRESS", default="https://api.earthly.dev"),
    _f("grpc", "string", "EARTHLY_GRPC_ADDRESS", default="ci.earthly.dev:443"),
    _f("grpc-insecure", "bool", "EARTHLY_GRPC_INSECURE"),
    _f("satellite-address", "string", "EARTHLY_SATELLITE_ADDRESS"),
    _f("request-id", "string", "EARTHLY_REQUEST_ID"),
    _f("no-buildkit-update", "bool", "EARTHLY_NO_BUILDKIT_UPDATE"),
    _f("disable-analytics", "bool", "EARTHLY_DISABLE_ANALYTICS", "DO_NOT_TRACK"),
    _f("version-flag-overrides", "string", "EARTHLY_VERSION_FLAG_OVERRIDES"),
    _f("env-file-path", "string", "EARTHLY_ENV_FILE_PATH", default=".env"),
    _f("arg-file-path", "string", "EARTHLY_ARG_FILE_PATH", default=".arg"),
    _f("secret-file-path", "string", "EARTHLY_SECRET_FILE_PATH", default=".secret"),
    _f("logstream-debug-file", "string", "EARTHLY_LOGSTREAM_DEBUG_FILE"),
    _f("logstream-debug-manifest-file", "string", "EARTHLY_LOGSTREAM_DEBUG_MANIFEST_FILE"),
    _f("logstream-address", "string", "EARTHLY_LOGSTREAM_ADDRESS"),
    _f("build-id", "string", "EARTHLY_BUILD_ID"),
    _f("server-conn-timeout", "duration", "EARTHLY_SERVER_CONN_TIMEOUT", default="5s"),
    _f("artifact", "bool", aliases=("a",)),
    _f("image", "bool"),
    _f("pull", "bool", "EARTHLY_PULL"),
    _f("push", "bool", "EARTHLY_PUSH"),
    _f("ci", "bool", "EARTHLY_CI"),
    _f("ticktock", "bool", "EARTHLY_TICKTOCK"),
    _f("output", "bool", "EARTHLY_OUTPUT"),
    _f("no-output", "bool", "EARTHLY_NO_OUTPUT"),
    _f("no-cache", "bool", "EARTHLY_NO_CACHE"),
    _f("auto-skip", "bool", "EARTHLY_AUTO_SKIP"),
    _f("allow-privileged", "bool", "EARTHLY_ALLOW_PRIVILEGED", aliases=("P",)),
    _f("max-remote-cache", "bool", "EARTHLY_MAX_REMOTE_CACHE"),
    _f("save-inline-cache", "bool", "EARTHLY_SAVE_INLINE_CACHE"),
    _f("use-inline-cache", "bool", "EARTHLY_USE_INLINE_CACHE"),
    _f("interactive", "bool", "EARTHLY_INTERACTIVE", aliases=("i",)),
    _f("no-fake-dep", "bool", "EARTHLY_NO_FAKE_DEP"),
    _f("strict", "bool", "EARTHLY_STRICT"),
    _f("global-wait-end", "bool", "EARTHLY_GLOBAL_WAIT_END"),
    _f("git-lfs-pull-include", "string", "EARTHLY_GIT_LFS_PULL_INCLUDE"),
    _f("earthly-ci-runner", "bool", "EARTHLY_CI_RUNNER"),
    _f("auto-skip-db-path", "string", "EARTHLY_AUTO_SKIP_DB_PATH"),
    _f("org", "string", "EARTHLY_ORG"),
    _f("project", "string", "EARTHLY_PROJECT"),
    _f("satellite", "string", "EARTHLY_SATELLITE", aliases=("sat",)),
    _f("no-satellite", "bool", "EARTHLY_NO_SATELLITE", aliases=("no-sat",)),
    _f("buildkit-image", "string", "EARTHLY_BUILDKIT_IMAGE"),
    _f("buildkit-container-name", "string", "EARTHLY_CONTAINER_NAME", default="earthly-buildkitd"),
    _f("buildkit-volume-name", "string", "EARTHLY_VOLUME_NAME", default="earthly-cache"),
    _f("remote-cache", "string", "EARTHLY_REMOTE_CACHE"),
    _f("disable-remote-registry-proxy", "bool", "EARTHLY_DISABLE_REMOTE_REGISTRY_PROXY"),
    _f("no-auto-skip", "bool", "EARTHLY_NO_AUTO_SKIP"),
    _f("github-annotations", "bool", "GITHUB_ACTIONS"),
    # build_flags.go:11-45 (hidden on the root app)
    _f("platform", "slice", "EARTHLY_PLATFORMS"),
    _f("build-arg", "slice", "EARTHLY_BUILD_ARGS"),
    _f("secret", "slice", "EARTHLY_SECRETS", aliases=("s",)),
    _f("secret-file", "slice", "EARTHLY_SECRET_FILES"),
    _f("cache-from", "slice", "EARTHLY_CACHE_FROM"),
    _f("help", "bool", aliases=("h",)),
    _f("version", "bool", aliases=("v",)),
)

# bootstrap_cmds.go:44-83
BOOTSTRAP_FLAGS: tuple[Flag, ...] = (
    _f("source", "string"),
    _f("no-buildkit", "bool"),
    _f("with-autocomplete", "bool"),
    _f("force-certificate-generation", "bool"),
    _f("certs-hostname", "string", "EARTHLY_CERTS_HOSTNAME", default="localhost"),
)


class UsageError(Exception):
    """urfave/cli's "Incorrect Usage: ..."."""


@dataclass
class Parsed:
    values: dict[str, object] = field(default_factory=dict)
    explicit: set[str] = field(default_factory=set)  # cliCtx.IsSet: on the command line or from its env var
    rest: list[str] = field(default_factory=list)

    def boolean(self, name: str) -> bool:
        return bool(self.values.get(name, False))

    def string(self, name: str) -> str:
        value = self.values.get(name, "")
        return value if isinstance(value, str) else ""

    def strings(self, name: str) -> list[str]:
        value = self.values.get(name, [])
        return list(value) if isinstance(value, list) else []


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _parse_bool(text: str) -> bool | None:
    """strconv.ParseBool."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def parse(args: list[str], table: tuple[Flag, ...], environ: Mapping[str, str]) -> Parsed:
    by_name: dict[str, Flag] = {}
    for fl in table:
        by_name[fl.name] = fl
        for alias in fl.aliases:
            by_name[alias] = fl
    out = Parsed()
    for fl in table:  # defaults, then env vars (urfave applies both before parsing the command line)
        if fl.kind == "slice":
            out.values[fl.name] = []
        elif fl.kind == "bool":
            out.values[fl.name] = False
        else:
            out.values[fl.name] = fl.default
        for env in fl.env:
            if env in environ and environ[env] != "":
                value = environ[env]
                if fl.kind == "bool":
                    parsed = _parse_bool(value)
                    if parsed is None:
                        raise UsageError(f'could not parse "{value}" as bool value from env {env} for flag '
                                         f"{fl.name}: parse error")
                    out.values[fl.name] = parsed
                elif fl.kind == "slice":
                    out.values[fl.name] = [s.strip() for s in value.split(",")]
                else:
                    out.values[fl.name] = value
                out.explicit.add(fl.name)
                break
    from_cli: set[str] = set()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.rest = args[i + 1:]
            return out
        if not arg.startswith("-") or arg == "-":
            out.rest = args[i:]
            return out
        dashes = 2 if arg.startswith("--") else 1
        body = arg[dashes:]
        if not body or body[0] in "-=":
            raise UsageError(f"bad flag syntax: {arg}")
        name, sep, value = body.partition("=")
        names = [name]
        if dashes == 1 and name not in by_name and not sep and all(c in by_name for c in name):
            names = list(name)  # short option handling: -PV is -P -V
        for n in names:
            flag = by_name.get(n)
            if flag is None:
                raise UsageError(f"flag provided but not defined: -{n}")
            if flag.kind == "bool":
                parsed = _parse_bool(value) if sep else True
                if parsed is None:
                    raise UsageError(f'invalid boolean value "{value}" for -{n}: parse error')
                out.values[flag.name] = parsed
            else:
                if not sep:
                    if i + 1 >= len(args):
                        raise UsageError(f"flag needs an argument: -{n}")
                    i += 1
                    value = args[i]
                if flag.kind == "slice":
                    # StringSlice.Set splits at commas too (no trimming); the first command-line value
                    # replaces what came from the env var.
                    current = out.strings(flag.name) if flag.name in from_cli else []
                    out.values[flag.name] = [*current, *value.split(",")]
                else:
                    out.values[flag.name] = value
            from_cli.add(flag.name)
            out.explicit.add(flag.name)
        i += 1
    return out
