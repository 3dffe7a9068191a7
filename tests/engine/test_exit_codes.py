"""Exit codes that need the daemon to be reached, with a message that says what to do."""

from __future__ import annotations

from edgeforge_ext.cli import run
from tests.engine.buildkit import REMOTE_BUILDKIT


def test_no_iso_after_the_build_exits_8_with_what_to_do(docker_client, canvos_repo, tmp_path, capsys):
    # --skip earthly with nothing in build/: collect finds no ISO. No container is started.
    workdir = tmp_path / "w"
    code = run(["--workdir", str(workdir), "build", "--canvos-url", canvos_repo.url, "--ref", "v4.10.0",
                "--target", "iso", "--skip", "preflight", "--skip", "earthly", "--no-push",
                "--buildkit-host", REMOTE_BUILDKIT])
    err = capsys.readouterr().err
    assert code == 8, err[-3000:]
    assert "error: the build did not produce" in err and "palette-edge-installer.iso" in err
    assert f"hint: the Earthly step writes it: see its log ({workdir.resolve() / 'output'}" in err
    assert "Traceback" not in err
