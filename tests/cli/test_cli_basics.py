"""The CLI as a user meets it: help, version, error messages and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgeforge_ext.cli import run


def test_version(capsys):
    from edgeforge_ext import __version__

    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"edgeforge-ext {__version__}"


def test_help_lists_every_command(capsys):
    assert run(["-h"]) == 0
    out = capsys.readouterr().out
    for cmd in ("config", "preflight", "checkout", "render", "plan", "build", "push", "images", "profile",
                "lock", "clean"):
        assert cmd in out, cmd


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "edgeforge_ext", "--version"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.startswith("edgeforge-ext ")


def test_help_and_version_do_not_import_heavy_modules():
    code = ("import sys\n"
            "from edgeforge_ext.cli import run\n"
            "for argv in (['--help'], ['--version'], ['build', '--help']):\n"
            "    run(argv)\n"
            "heavy = [m for m in ('docker', 'git', 'jinja2') if m in sys.modules]\n"
            "print('HEAVY=' + ','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY=\n" in out.stdout, out.stdout


def test_config_error_is_one_line_with_exit_2(tmp_path, capsys):
    f = tmp_path / "edgeforge.toml"
    f.write_text("[build]\ncustom_tagg = 'x'\n")
    assert run(["--config", str(f), "config", "show"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'build.custom_tag'" in err and "Traceback" not in err


def test_debug_shows_traceback(tmp_path, capsys):
    f = tmp_path / "edgeforge.toml"
    f.write_text("[build]\ncustom_tagg = 'x'\n")
    assert run(["--debug", "--config", str(f), "config", "show"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_unknown_flag_is_usage_error(capsys):
    assert run(["preflight", "--no-such-flag"]) == 2


def test_config_show_json_sources_and_masked_secrets(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", "Sup3r-Secret-Pw")
    monkeypatch.setenv("EDGEFORGE_BUILD_OS_VERSION", "24.04")
    (tmp_path / "tok").write_text("TokTokTok-123")
    f = tmp_path / "edgeforge.toml"
    f.write_text('[build]\niso_name = "fromfile"\n')
    code = run(["--config", str(f), "config", "show", "--json", "--custom-tag", "flagtag",
                "--edge-host-token-file", str(tmp_path / "tok")])
    captured = capsys.readouterr()
    assert code == 0
    data = json.loads(captured.out)
    v = data["values"]
    assert v["build.custom_tag"] == {"value": "flagtag", "source": "flag"}
    assert v["build.os_version"]["source"] == "env EDGEFORGE_BUILD_OS_VERSION"
    assert v["build.iso_name"]["source"] == f"file {f}"
    assert v["build.arch"]["source"] == "default"
    assert data["secrets"]["registry.password"] == {"value": "********",
                                                    "source": "env EDGEFORGE_REGISTRY_PASSWORD"}
    assert data["secrets"]["site.edge_host_token"]["value"] == "********"
    assert "Sup3r-Secret-Pw" not in captured.out + captured.err
    assert "TokTokTok-123" not in captured.out + captured.err


def test_config_show_table_masks_secrets(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", "Sup3r-Secret-Pw")
    assert run(["--workdir", str(tmp_path), "config", "show"]) == 0
    err = capsys.readouterr().err
    assert "registry.password" in err and "********" in err and "Sup3r-Secret-Pw" not in err


def test_password_from_stdin(monkeypatch, capsys, tmp_path):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("from-stdin-pw\n"))
    assert run(["config", "show", "--json", "--registry-password-stdin"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["secrets"]["registry.password"]["source"] == "stdin"


def test_there_is_no_password_flag(capsys):
    assert run(["config", "show", "--registry-password", "x"]) == 2


def test_quick_root_help_matches_the_full_command_tree():
    """`--help` takes a shortcut (stub commands); it must print exactly what the full tree prints."""
    from edgeforge_ext.cli import _click_command, _root_only_command

    def render(command) -> str:
        with command.make_context("edgeforge-ext", [], resilient_parsing=True) as ctx:
            return command.get_help(ctx)

    quick, full = render(_root_only_command()), render(_click_command())
    import difflib

    assert quick == full, "\n".join(difflib.unified_diff(full.splitlines(), quick.splitlines(), lineterm=""))


def test_each_command_builds_from_its_own_module_with_the_same_help():
    """`images mirror ...` builds only the images module's commands (start-up): each command's tree, so
    built, holds it with the same help as the full tree, and the table names every command and group."""
    import click

    from edgeforge_ext.cli import COMMAND_MODULES, COMMANDS, GROUPS, _click_command, _named_command

    assert set(COMMAND_MODULES) == set(COMMANDS) | set(GROUPS)
    full = _click_command()
    assert isinstance(full, click.Group)
    for name in COMMAND_MODULES:
        partial = _named_command([name])
        assert isinstance(partial, click.Group)
        with full.make_context("edgeforge-ext", [name], resilient_parsing=True) as ctx:
            want = full.commands[name].get_help(ctx)
        with partial.make_context("edgeforge-ext", [name], resilient_parsing=True) as ctx:
            assert partial.commands[name].get_help(ctx) == want, name
    assert _named_command(["--json"]) is None


def test_config_show_variant_layers_the_variant(tmp_path, capsys):
    f = tmp_path / "edgeforge.toml"
    f.write_text('[build]\ncustom_tag = "base"\n\n[[variants]]\nname = "rke2"\nk8s_distribution = "rke2"\n')
    assert run(["--config", str(f), "config", "show", "--json", "--variant", "rke2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["variant"] == "rke2" and data["variants"] == ["rke2"]
    assert data["values"]["build.k8s_distribution"] == {"value": "rke2", "source": "variant rke2"}
    assert data["values"]["build.custom_tag"]["value"] == "base"
    assert run(["--config", str(f), "config", "show", "--variant", "nope"]) == 2


@pytest.fixture
def named_shell(monkeypatch):
    """The shell is named on the command line, not detected from the process tree (which differs in CI)."""
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    monkeypatch.setattr("edgeforge_ext.cli._command", None)  # built again, with the option that takes a shell


def test_show_completion_prints_the_shell_script(capsys, named_shell):
    assert run(["--show-completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "_EDGEFORGE_EXT_COMPLETE=complete_bash" in script and "complete " in script


def test_install_completion_writes_into_home(capsys, named_shell):
    import os
    from pathlib import Path

    assert run(["--install-completion", "bash"]) == 0
    home = Path(os.environ["HOME"])  # a fresh temp dir (conftest)
    assert "edgeforge-ext" in (home / ".bashrc").read_text()
    assert "_EDGEFORGE_EXT_COMPLETE" in (home / ".bash_completions" / "edgeforge-ext.sh").read_text()


@pytest.mark.parametrize("words, expected", [
    ("edgeforge-ext ch", "checkout"),
    ("edgeforge-ext images ver", "verify"),
    ("edgeforge-ext checkout --re", "--ref"),  # a command's own option: needs the full command tree
])
def test_the_shell_gets_completions(monkeypatch, capsys, words, expected):
    monkeypatch.setenv("_EDGEFORGE_EXT_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(len(words.split()) - 1))
    assert run([]) == 0
    assert expected in capsys.readouterr().out.split()
