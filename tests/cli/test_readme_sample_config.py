"""The README cannot rot: its sample edgeforge.toml loads, and the commands, flags and environment variables
it names exist in the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import typer.main

from edgeforge_ext.cli import full_app, run
from edgeforge_ext.config import load_config, read_config_file
from edgeforge_ext.settings import KEYS, SECRET_ENV

README = Path(__file__).resolve().parents[2] / "README.md"
# Flags the README names that belong to other programs: git's, docker's, and Earthly's own command line
# (the README shows what the tool passes to Earthly).
FOREIGN_FLAGS = {"--help", "--tags", "--password-stdin", "--allow-privileged", "--arg-file-path", "--secret-file",
                 "--secret", "--privileged",
                 "--pull", "--url"}  # Earthfile syntax the README quotes: WITH DOCKER --pull, luet repo add --url


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _sample_toml() -> str:
    blocks = re.findall(r"^```toml\n(.*?)^```", _readme(), re.M | re.S)
    samples = [b for b in blocks if b.startswith("# edgeforge.toml")]
    assert len(samples) == 1, "README.md must have exactly one ```toml block starting with '# edgeforge.toml'"
    return samples[0]


def _table_commands() -> list[tuple[str, ...]]:
    """The command paths of the README's command table: `images rewrite\\|verify\\|mirror` gives three."""
    section = _readme().split("## Commands", 1)[1].split("\n## ", 1)[0]
    paths: list[tuple[str, ...]] = []
    for cell in re.findall(r"^\| `([^`]+)` \|", section, re.M):
        words: list[str] = []
        for word in cell.replace("\\|", "|").split():
            if not re.fullmatch(r"[a-z][a-z|-]*", word):
                break  # options and arguments: `[--json]`, `FILE`
            words.append(word)
        *group, last = words
        paths.extend((*group, name) for name in last.split("|"))
    return paths


def _listed_commands(argv: list[str], capsys: pytest.CaptureFixture[str]) -> set[str]:
    capsys.readouterr()
    assert run([*argv, "--help"]) == 0
    listing = capsys.readouterr().out.split("Commands:", 1)[1]
    return set(re.findall(r"^  (\S+)", listing, re.M))


def test_readme_sample_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "edgeforge.toml"
    path.write_text(_sample_toml(), encoding="utf-8")
    # The secrets come from the environment, so the sample's *_file paths need not exist here.
    env = {name: "s3cret-from-env" for name in SECRET_ENV}

    config = load_config(path, env=env, cwd=tmp_path)

    assert config.config_file == path
    in_file = read_config_file(path)
    assert in_file, "the sample sets no key"
    for key in in_file:
        assert config.sources[key] == f"file {path}", key
    assert config["registry.domain"] == "10.10.254.254:8000/spectro-images"
    assert config.registry_password is not None and config.registry_password.reveal() == "s3cret-from-env"


def test_every_command_in_the_readme_table_exists(capsys: pytest.CaptureFixture[str]) -> None:
    paths = _table_commands()
    assert ("build",) in paths and ("images", "mirror") in paths and ("profile", "patch") in paths

    root = _listed_commands([], capsys)
    for path in paths:
        assert path[0] in root, f"README names `edgeforge-ext {' '.join(path)}`, not in edgeforge-ext --help"
        if len(path) > 1:
            assert path[1] in _listed_commands(list(path[:1]), capsys), f"`edgeforge-ext {' '.join(path)}`"
    # And the other way round: a command the CLI has is in the table.
    assert root <= {path[0] for path in paths}, "commands missing from the README table"


def test_every_flag_and_env_var_in_the_readme_exists() -> None:
    text = _readme()
    options: set[str] = set()

    def walk(command: click.Command) -> None:
        for param in command.params:
            options.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                walk(sub)

    walk(typer.main.get_command(full_app()))
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    assert named - options - FOREIGN_FLAGS == set()

    known_env = {k.env_name for k in KEYS if k.env} | set(SECRET_ENV) | {"EDGEFORGE_CONFIG"}
    assert set(re.findall(r"EDGEFORGE_[A-Z0-9_]*[A-Z0-9]", text)) - known_env == set()


def test_the_readme_installs_into_its_own_environment_first() -> None:
    first_block = re.search(r"^```sh\n(.*?)^```", _readme(), re.M | re.S)
    assert first_block is not None
    install = first_block.group(1).splitlines()[0]
    # A global `pip install .` replaced the user's click with edgeforge-ext's pinned one.
    assert install.startswith(("pipx install", "python3 -m venv")), install


def test_the_readme_says_what_verbose_does() -> None:
    text = " ".join(_readme().split())
    said = text[text.index("`-v`/`--verbose`"):]
    said = said[:said.index(". Other commands")]
    for effect in ("`build` shows the resolved plan", "preflight table also when every check passes",
                   "push progress also when stderr is not a terminal"):
        assert effect in said, said


def test_the_readme_says_how_git_gets_a_forks_credentials() -> None:
    text = " ".join(_readme().split())
    assert "asks for them through `GIT_ASKPASS`" in text
    assert "belongs in `EDGEFORGE_CANVOS_URL`" in text
    assert "through git's environment" not in text  # what it did before: the token was in /proc/PID/environ
