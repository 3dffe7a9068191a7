"""Pieces of the Earthly double without Docker: the Earthfile parser, variable scopes, word expansion,
flags, config, references, and the interpreter with RUN/IF/FOR run by the host's /bin/sh (no chroot)."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.double import config, flags, interpreter, rootfs, shell, world
from tests.double.console import Console
from tests.double.earthfile import Command, ForStatement, IfStatement, parse, split_args
from tests.double.variables import (
    Collection,
    Scope,
    VariableError,
    combine_variables,
    parse_flag_args_with_non_flags,
    process_secrets,
)

# --- the parser ---------------------------------------------------------------------------------------------


def test_parse_targets_blocks_and_continuations() -> None:
    ef = parse(
        "VERSION --arg-scope-and-set --shell-out-anywhere 0.6\n"
        'ARG BRANDING="Palette eXtended Kubernetes Edge"\n'
        "FROM alpine\n"
        'IF [ "$A" = "" ]\n'
        "    ARG B=1\n"
        'ELSE IF [ "$A" = "x" ]\n'
        "    ARG B=2\n"
        "ELSE\n"
        "    ARG B=3\n"
        "END\n"
        "\n"
        "t:\n"
        "    # a comment\n"
        "    RUN echo a && \\\n"
        "        echo b\n"
        "    FOR v IN $(cat f)\n"
        "        BUILD +u --V=$v\n"
        "    END\n"
        "    SAVE ARTIFACT /x AS LOCAL ./build/\n"
        '    RUN ["echo", "exec"]\n'
        "CMD:\n"
        "    COMMAND\n"
        "    RUN true\n")
    assert ef.version is not None and ef.version.args == ["--arg-scope-and-set", "--shell-out-anywhere", "0.6"]
    arg = ef.base[0]
    assert isinstance(arg, Command) and arg.args == ["BRANDING", "=", '"Palette eXtended Kubernetes Edge"']
    branch = ef.base[2]
    assert isinstance(branch, IfStatement) and len(branch.branches) == 2 and branch.else_body is not None
    body = ef.targets["t"].body
    run = body[0]
    assert isinstance(run, Command) and run.text == "RUN echo a && echo b" and (run.line, run.column) == (14, 4)
    loop = body[1]
    assert isinstance(loop, ForStatement) and loop.command.args == ["v", "IN", "$(cat", "f)"]
    save = body[2]
    assert isinstance(save, Command) and save.name == "SAVE ARTIFACT"
    exec_run = body[3]
    assert isinstance(exec_run, Command) and exec_run.exec_mode and exec_run.args == ["echo", "exec"]
    assert ef.targets["CMD"].is_function and not ef.targets["t"].is_function


def test_split_args_keeps_quotes_and_groups() -> None:
    assert split_args('COPY (+t/x --A="a b") "my file" /d') == ["COPY", '(+t/x --A="a b")', '"my file"', "/d"]


# --- variables -----------------------------------------------------------------------------------------------


def _collection(overrides: Mapping[str, str], *, arg_scope_set: bool = True) -> Collection:
    scope = Scope()
    for k, v in overrides.items():
        scope.add(k, v)
    builtin = Scope()
    builtin.add("TARGETARCH", "amd64")
    return Collection(target_name="+t", overriding=scope, builtin=builtin, arg_scope_set=arg_scope_set)


@pytest.mark.parametrize("arg_scope_set", [True, False])
def test_an_override_wins_even_empty(arg_scope_set: bool) -> None:
    c = _collection({"BASE_IMAGE": "", "OTHER": "x"}, arg_scope_set=arg_scope_set)
    assert c.get("BASE_IMAGE") is None  # overrides are inactive until declared
    assert c.declare_arg("BASE_IMAGE", "quay.io/kairos/core", is_global=False) == ""
    assert c.declare_arg("KEPT", "default", is_global=False) == "default"
    assert c.declare_arg("TARGETARCH", "", is_global=False) == "amd64"  # a built-in
    assert "OTHER" not in c.active_map()


def test_redeclaring_needs_let_with_arg_scope_and_set() -> None:
    c = _collection({})
    c.declare_arg("A", "1", is_global=False)
    with pytest.raises(VariableError, match="declared twice") as info:
        c.declare_arg("A", "2", is_global=False)
    assert info.value.hint == ("if you want to change the value of 'A', redeclare it as a non-argument variable "
                               "with 'LET A = \"2\"'")
    old = _collection({}, arg_scope_set=False)
    old.declare_arg("A", "1", is_global=False)
    assert old.declare_arg("A", "2", is_global=False) == "1"  # the existing value wins, no error


def test_let_and_set() -> None:
    c = _collection({})
    c.declare_arg("A", "arg", is_global=False)
    with pytest.raises(VariableError, match="ARG values cannot be reassigned"):
        c.update_var("A", "x")
    c.declare_let("L", "1")
    c.update_var("L", "2")
    assert c.get("L") == "2"
    with pytest.raises(VariableError, match="LET requires the --arg-scope-and-set feature"):
        _collection({}, arg_scope_set=False).declare_let("L", "1")


def test_command_line_beats_the_arg_file() -> None:
    scope = combine_variables({"A": "file", "B": "file"}, ["A=cli"], ["B=build-arg"], {})
    assert scope.get("A") == "cli" and scope.get("B") == "build-arg" and not scope.active
    with pytest.raises(VariableError, match="parse build args: env var NOPE not set"):
        combine_variables({}, ["NOPE"], [], {})
    with pytest.raises(VariableError, match="built-in arg TARGETARCH cannot be passed on the command line"):
        combine_variables({}, ["TARGETARCH=arm64"], [], {})


def test_flag_args_after_the_target() -> None:
    assert parse_flag_args_with_non_flags(["--A=1", "-B", "2", "+t"]) == (["A=1", "B=2"], ["+t"])
    with pytest.raises(VariableError, match="no value provided for --allow-privileged"):
        parse_flag_args_with_non_flags(["+t", "--allow-privileged"])


def test_secrets(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("file")
    got = process_secrets(["A=v", "B"], [f"C={tmp_path / 's'}"], {"D": "dot"}, ".secret", {"B": "env"})
    assert got == {"A": b"v", "B": b"env", "C": b"file", "D": b"dot"}
    with pytest.raises(VariableError) as info:
        process_secrets(["D"], [], {"D": "dot"}, ".secret", {"D": "env"})
    assert str(info.value) == 'failed to set secret "D" via --secret flag'
    assert info.value.hint and '"D" has not already been set in the file ".secret"' in info.value.hint


# --- word expansion, flags, config, references ---------------------------------------------------------------------


@pytest.mark.parametrize(("word", "expected"), [
    ("$A-${A}", "1-1"), ('"$A b"', "1 b"), ("'$A'", "$A"), ("\\$A", "$A"), ("${NOPE:-d}", "d"),
    ("${A:+set}", "set"), ("${E:-d}", "d"), ("${E-d}", ""), ("$NOPE", ""), ("a$", "a$"),
])
def test_expand(word: str, expected: str) -> None:
    assert shell.expand(word, {"A": "1", "E": ""}) == expected


def test_flags() -> None:
    env = {"EARTHLY_SECRETS": "A=1, B", "EARTHLY_ALLOW_PRIVILEGED": "true"}
    parsed = flags.parse(["-PV", "--config", "/c", "+t", "--X=1"], flags.ROOT_FLAGS, env)
    assert parsed.boolean("allow-privileged") and parsed.boolean("verbose") and parsed.string("config") == "/c"
    assert parsed.strings("secret") == ["A=1", "B"] and parsed.rest == ["+t", "--X=1"]
    assert flags.parse(["--secret", "C=2,D", "+t"], flags.ROOT_FLAGS, env).strings("secret") == ["C=2", "D"]
    with pytest.raises(flags.UsageError, match=r"^flag provided but not defined: -PE_VERSION$"):
        flags.parse(["--PE_VERSION=v1", "+t"], flags.ROOT_FLAGS, {})


def test_config_global_upsert_and_tls_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = str(tmp_path / "config.yml")
    config.upsert(path, "global", "{disable_analytics: true}")
    cfg = config.load(path, explicit=True)
    assert cfg.tls_enabled and cfg.tlsca == str(tmp_path / ".earthly/certs/ca_cert.pem")
    config.upsert(path, "global", "{disable_analytics: true, tls_enabled: false, buildkit_host: tcp://x:1}")
    cfg = config.load(path, explicit=True)
    assert not cfg.tls_enabled and cfg.buildkit_host == "tcp://x:1"
    with pytest.raises(config.ConfigError, match="as the types are incompatible"):
        config.upsert(path, "global", "{tls_enabled: maybe}")
    with pytest.raises(config.ConfigError, match="read config: failed to read from"):
        config.load(str(tmp_path / "missing.yml"), explicit=True)


@pytest.mark.parametrize(("ref", "error"), [
    ("", "invalid reference format"), ("Ubuntu/x", None), ("docker.io/Ubuntu", "must be lowercase"),
    ("quay.io/kairos/osbuilder-tools:v0.400.3", None), ("kairos-ubuntu:-core", "invalid reference format"),
    ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
])
def test_references(ref: str, error: str | None) -> None:
    if error is None:
        world.parse_normalized_named(ref)
    else:
        with pytest.raises(world.ReferenceError, match=error):
            world.parse_normalized_named(ref)


def test_private_registry_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(world.PullError, match="401 Unauthorized"):
        world.resolve("registry.private.test/a/b:1")
    (tmp_path / "config.json").write_text('{"credHelpers": {"registry.private.test": "nope"}}')
    with pytest.raises(world.PullError, match='exec: "docker-credential-nope": executable file not found'):
        world.resolve("registry.private.test/a/b:1")
    (tmp_path / "config.json").write_text('{"auths": {"https://registry.private.test": {"auth": "dTpw"}}}')
    assert str(world.resolve("registry.private.test/a/b:1")) == "registry.private.test/a/b:1"


# --- the interpreter, with the host's sh instead of chroot ---------------------------------------------------------


def _host_run(root: str, workdir: str, script: str, env: Mapping[str, str], on_output: Callable[[bytes], None],
              *, shell: bool = True, argv: list[str] | None = None) -> int:
    cwd = rootfs.inside(root, workdir)
    os.makedirs(cwd, exist_ok=True)
    proc = subprocess.run(argv or ["/bin/sh", "-c", script], cwd=cwd, env={**env, "PATH": "/usr/bin:/bin"},
                          capture_output=True, check=False)
    on_output(proc.stdout + proc.stderr)
    return proc.returncode


def _build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, earthfile: str, target: str,
           overrides: Mapping[str, str] | None = None, *, secrets: Mapping[str, bytes] | None = None,
           allow_privileged: bool = True) -> tuple[interpreter.Interpreter, interpreter.State, str]:
    monkeypatch.setattr(rootfs, "run", _host_run)
    monkeypatch.setattr(rootfs, "make_image", lambda dest, name, iso_tools: os.makedirs(dest, exist_ok=True))
    out = io.StringIO()
    import tempfile

    opts = interpreter.Options(context_dir=str(tmp_path), allow_privileged=allow_privileged, push=False,
                               no_output=False, secrets=secrets or {}, builtin={"TARGETARCH": "amd64"},
                               state_dir=tempfile.mkdtemp(dir=tmp_path))
    interp = interpreter.Interpreter(parse(earthfile), opts, Console(out, padding=-1))
    scope = Scope()
    for k, v in (overrides or {}).items():
        scope.add(k, v)
    try:
        st = interp.build(target, scope, do_saves=True, allow_privileged=allow_privileged)
    except interpreter.BuildFailure as exc:
        raise AssertionError(f"{exc.message}\n{out.getvalue()}") from exc
    return interp, st, out.getvalue()


CANVOS_LIKE = """VERSION --arg-scope-and-set --shell-out-anywhere 0.6
FROM alpine
ARG OS_DISTRIBUTION
ARG KAIROS_BASE_IMAGE_URL=quay.io/kairos
IF [ "$OS_DISTRIBUTION" = "ubuntu" ] && [ "$BASE_IMAGE" = "" ]
    ARG BASE_IMAGE=$KAIROS_BASE_IMAGE_URL/core-ubuntu
ELSE
    ARG BASE_IMAGE
END
ARG CUSTOM_TAG
IF [ "$CUSTOM_TAG" != "" ]
    ARG IMAGE_TAG=v1-$CUSTOM_TAG
ELSE
    ARG IMAGE_TAG=v1
END

show:
    ARG K
    RUN echo "BASE_IMAGE=[$BASE_IMAGE] IMAGE_TAG=[$IMAGE_TAG] K=[$K]"

parent:
    BUILD +show --K=from-parent
    FOR v IN a b
        BUILD +show --K=$v
    END
"""


def test_base_image_derived_as_a_default_and_erased_by_an_empty_override(tmp_path, monkeypatch) -> None:
    _, _, out = _build(tmp_path, monkeypatch, CANVOS_LIKE, "show", {"OS_DISTRIBUTION": "ubuntu", "CUSTOM_TAG": "x"})
    assert "BASE_IMAGE=[quay.io/kairos/core-ubuntu] IMAGE_TAG=[v1-x] K=[]" in out
    _, _, out = _build(tmp_path, monkeypatch, CANVOS_LIKE, "show", {"OS_DISTRIBUTION": "ubuntu", "BASE_IMAGE": ""})
    assert "BASE_IMAGE=[] IMAGE_TAG=[v1] K=[]" in out


def test_build_args_and_for_loops_reach_the_child(tmp_path, monkeypatch) -> None:
    _, _, out = _build(tmp_path, monkeypatch, CANVOS_LIKE, "parent", {"OS_DISTRIBUTION": "ubuntu", "K": "top"})
    shown = [line for line in out.splitlines() if line.startswith("+show | BASE_IMAGE=")]
    assert [s.rsplit("K=", 1)[1] for s in shown] == ["[from-parent]", "[a]", "[b]"]


def test_run_privileged_and_secrets(tmp_path, monkeypatch) -> None:
    ef = ("VERSION 0.6\np:\n    FROM alpine\n    RUN --privileged echo p\n"
          "s:\n    FROM alpine\n    RUN --secret T echo \"$T\"\n")
    with pytest.raises(AssertionError, match="Permission denied: unwilling to run privileged command"):
        _build(tmp_path, monkeypatch, ef, "p", allow_privileged=False)
    _, _, out = _build(tmp_path, monkeypatch, ef, "s", secrets={"T": b"tok"})
    assert "+s | tok" in out
    with pytest.raises(AssertionError, match='failed: unable to lookup secret "T": not found'):
        _build(tmp_path, monkeypatch, ef, "s")


def test_only_build_referenced_targets_save_locally(tmp_path, monkeypatch) -> None:
    ef = ("VERSION 0.6\nart:\n    FROM alpine\n    RUN echo x > f\n    SAVE ARTIFACT f AS LOCAL out/f\n"
          "via-build:\n    BUILD +art\nvia-copy:\n    FROM alpine\n    COPY +art/f g\n")
    interp, _, _ = _build(tmp_path, monkeypatch, ef, "via-build")
    assert [s.dest for st in interp.built for s in st.save_locals] == ["out/f"]
    interp, _, _ = _build(tmp_path, monkeypatch, ef, "via-copy")
    assert [s.dest for st in interp.built for s in st.save_locals] == []  # referenced-save-only (VERSION 0.6)


def test_interpreter_errors_carry_location_and_stack(tmp_path, monkeypatch) -> None:
    ef = "VERSION 0.6\nt:\n    FROM alpine\n    ARG --global X=1\n"
    expected = r"Earthfile:4:4 invalid ARG arguments .*: unknown flag --global\nin\t\t\+t"
    with pytest.raises(AssertionError, match=expected):
        _build(tmp_path, monkeypatch, ef, "t")
