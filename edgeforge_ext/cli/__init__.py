"""The Typer application: parse flags, build the config, call the core, map errors to exit codes.

No logic lives here. Command modules register themselves; heavy imports happen inside commands.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
import typer.core

from edgeforge_ext import __version__
from edgeforge_ext.cli.state import State
from edgeforge_ext.errors import EdgeforgeError

# Help is plain click text (rich_markup_mode=None). Typer 0.19 still escapes "[default: …]" for rich
# when rich is installed, which prints a literal "\[": tell it rich is not in play.
typer.core.HAS_RICH = False


PROG_NAME = "edgeforge-ext"
COMPLETE_VAR = "_EDGEFORGE_EXT_COMPLETE"  # click's name for it: _{PROG_NAME}_COMPLETE, upper-case


def _app_settings() -> dict[str, Any]:
    """Fresh each time: Typer and click keep (and may change) the dicts they are given."""
    return dict(
        name=PROG_NAME,
        help="Build Palette Edge artifacts (Installer ISO, provider images) from CanvOS in one command.\n\n"
        "Flow: preflight → checkout → render → validate → registry check → earthly → collect → push → report."
        " Every step is also a command of its own.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=True,  # --install-completion, --show-completion
        context_settings={"help_option_names": ["-h", "--help"]},
        rich_markup_mode=None,
    )


app = typer.Typer(**_app_settings())


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgeforge-ext {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", metavar="FILE",
                                                  help="config file (default: $EDGEFORGE_CONFIG or ./edgeforge.toml)")]
    = None,
    workdir: Annotated[Path | None, typer.Option("--workdir", help="work directory (default: ./.edgeforge)",
                                                   metavar="DIR")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="more detail from build and push: the plan, the preflight table, push progress")]
    = False,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    ctx.obj = State(config_path=config, workdir=workdir, json=json_out, verbose=verbose, debug=debug)
    if verbose:
        from edgeforge_ext import console

        console.set_verbose(True)


# Every command and group in the order `--help` lists them, with the line it shows there. The root
# `--help`/`--version` is built from this table alone, without importing a command module or building
# any command's options (that is most of the start-up time); a test checks it prints exactly what the
# full command tree prints.
COMMANDS: dict[str, str] = {
    "preflight": "Check the build host: CPUs, memory, disk, Docker, privileges, git.",
    "checkout": "Clone or update CanvOS at a ref (default: newest release).",
    "render": "Render and validate user-data and .arg, then write them.",
    "build": "Run the whole build: preflight → … → earthly → push → report.",
    "plan": "Show what `build` would do, with no side effects.",
    "push": "Push the provider images of the last build again.",
    "clean": "Remove the containers, cache volume and image builds leave.",
    "lock": "Write edgeforge.lock (CanvOS SHA, Earthly image, fingerprint).",
    "keygen": "Make the key pair that signs with build --attest.",
    "verify": "Check the signature, SBOM and provenance of an ISO or image.",
    "gather": "Merge the shards' results into one summary.",
}
GROUPS: dict[str, str] = {
    "config": "Inspect the resolved configuration.",
    "images": "Which images; where each is pulled from; is it there; copy it there; bundles for the air gap.",
    "profile": "Edit cluster profile layers for an external registry.",
    "iso": "Will the ISO boot: static inspection and a QEMU boot test.",
}


# Which module registers each command and group (a test checks the table against the modules).
COMMAND_MODULES: dict[str, str] = {
    "config": "config_cmd", "preflight": "preflight_cmd", "checkout": "checkout_cmd", "render": "render_cmd",
    "build": "build_cmd", "plan": "build_cmd", "push": "build_cmd", "clean": "build_cmd",
    "images": "images_cmd", "profile": "images_cmd", "iso": "iso_cmd", "lock": "nightly_cmd",
    "keygen": "attest_cmd", "verify": "attest_cmd", "gather": "shards_cmd",
}
_MODULE_ORDER = ("config_cmd", "preflight_cmd", "checkout_cmd", "render_cmd", "build_cmd", "images_cmd",
                 "iso_cmd", "nightly_cmd", "attest_cmd", "shards_cmd")


def full_app() -> typer.Typer:
    """The app with every command registered (imports every command module, once)."""
    if not app.registered_commands:
        _register(app, _MODULE_ORDER)
    return app


def _register(target: typer.Typer, modules: tuple[str, ...]) -> None:
    import importlib

    for name in modules:
        importlib.import_module(f"edgeforge_ext.cli.{name}").register(target)
    for info in target.registered_commands:
        info.short_help = COMMANDS[str(info.name)]
    for group in target.registered_groups:
        group.short_help = GROUPS[str(group.name)]


_command: click.Command | None = None


def _click_command() -> click.Command:
    """Typer builds the click command on every call; build it once per process."""
    global _command
    if _command is None:
        _command = typer.main.get_command(full_app())
    return _command


def _named_command(args: list[str]) -> click.Command | None:
    """The command tree of the modules the arguments name (`images mirror ...` builds the images group
    only: building every command's options is most of the start-up). Every argument that is a command
    name counts, so a root option's value that happens to be one (`--workdir build render`) only adds a
    module. None when no argument names a command."""
    modules = tuple(m for m in _MODULE_ORDER if any(COMMAND_MODULES.get(a) == m for a in args))
    if not modules:
        return None
    partial = typer.Typer(**_app_settings())
    partial.callback()(root)
    _register(partial, modules)
    return typer.main.get_command(partial)


def _root_only_command() -> click.Command:
    """The root options and the command list, from the COMMANDS/GROUPS table (for --help, --version)."""
    light = typer.Typer(**_app_settings())
    light.callback()(root)

    def stub() -> None:  # never runs: a real invocation names a command and takes the full tree
        raise AssertionError("stub command")

    for name, summary in COMMANDS.items():
        light.command(name, short_help=summary)(stub)
    for name, summary in GROUPS.items():
        light.add_typer(typer.Typer(), name=name, short_help=summary)
    return typer.main.get_command(light)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (tests call this; `main` exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    from edgeforge_ext import console

    console.set_verbose(False)  # -v of this invocation only
    console.forget_warnings()  # each warning once per invocation

    secrets = sys.modules.get("edgeforge_ext.secrets")  # not imported yet: nothing to forget
    if secrets is not None:
        secrets.known.clear()  # this invocation's secrets only (load_config adds them)

    try:
        # The shell asks for completions with an empty argv and _EDGEFORGE_EXT_COMPLETE set: that needs
        # every command's options, the full tree.
        completing = COMPLETE_VAR in os.environ
        root_only = all(a.startswith("-") for a in args) and not completing
        command = _root_only_command() if root_only else (
            None if completing else _named_command(args)) or _click_command()
        from edgeforge_ext.signals import sigterm_as_interrupt

        with sigterm_as_interrupt():
            result = command.main(args=args, prog_name=PROG_NAME, standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:  # completion (--show-completion, a shell's request) ends with sys.exit
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except (click.exceptions.Abort, KeyboardInterrupt):
        console.error("interrupted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except EdgeforgeError as exc:
        if debug:
            _print_traceback()
        if exc.result is not None and _wants_json(args):
            console.print_json(exc.result)  # machines read stdout on failure too (the report says why)
        console.error(_clean(exc.message))  # the console masks known secrets; _clean also URL credentials
        for line in exc.details:
            console.info(f"  {_clean(line)}")
        if exc.hint:
            console.info(f"hint: {_clean(exc.hint)}")
        return exc.exit_code
    except OSError as exc:
        if exc.filename is None:  # not about a file (a socket, a library's own use): a bug as below
            return _internal_error(exc, debug)
        if debug:
            _print_traceback()
        console.error(_clean(f"{exc.filename}: {exc.strerror or exc}"))
        console.info("hint: check the path, its permissions and the free space there")
        return 2  # the path the user gave (or the place it names) cannot be used: a usage problem
    except Exception as exc:  # a bug: one line unless --debug
        return _internal_error(exc, debug)


def _internal_error(exc: Exception, debug: bool) -> int:
    """A bug: one line unless --debug."""
    from edgeforge_ext import console

    if debug:
        _print_traceback()
    console.error(_clean(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"))
    return 1


def _wants_json(args: list[str]) -> bool:
    return "--json" in args


def _clean(text: str) -> str:
    """An error line as shown: known secrets masked, user:password@ removed from URLs (a library's
    exception may quote a URL with credentials the config does not know as secrets)."""
    from edgeforge_ext.secrets import scrub, scrub_url

    return scrub(scrub_url(text))


def _print_traceback() -> None:
    import traceback

    sys.stderr.write(_clean(traceback.format_exc()))


def main() -> None:
    sys.exit(run())
