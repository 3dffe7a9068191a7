"""Realistic mistakes through the CLI: each gives its documented exit code and one clear message
(what failed, what to do), never a traceback or an internal error (exit 1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeforge_ext.cli import run
from tests.conftest import free_port

NO_REPO = "file:///nonexistent/CanvOS.git"  # never contacted when the mistake is caught first


def check(capsys: pytest.CaptureFixture[str], argv: list[str], code: int, *words: str) -> str:
    got = run(argv)
    err = capsys.readouterr().err
    assert got == code, err[-3000:]
    assert "Traceback" not in err and "internal error" not in err, err
    assert err.startswith("error: ") or "\nerror: " in err, err
    for word in words:
        assert word in err, err
    return err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "empty").write_text("")
    (tmp_path / "latin1").write_bytes("pässwort\n".encode("latin-1"))
    (tmp_path / "edgeforge.lock").write_text("garbage{{{\n")
    (tmp_path / "edgeforge.toml").write_text("")
    return {"file": a_file, "dir": tmp_path / "a-dir", "empty": tmp_path / "empty",
            "latin1": tmp_path / "latin1", "config": tmp_path / "edgeforge.toml"}


USAGE = [
    # (argv after --workdir W, words the message must hold)
    (["render", "--arch", "amd46"], ["build.arch must be one of amd64, arm64", "did you mean 'amd64'"]),
    (["build", "--target", "isoo"], ["build.target must be one of", "did you mean 'iso'"]),
    (["config", "show", "--registry-mapping", "quay.io"], ["--registry-mapping expects KEY=VALUE"]),
    (["config", "show", "--registry-password-file", "{dir}"], ["cannot read the registry password", "directory"]),
    (["config", "show", "--registry-password-file", "{latin1}"], ["not UTF-8 text", "hint:"]),
    (["config", "show", "--edge-host-token-file", "{empty}"], ["edge host token file", "is empty"]),
    (["--config", "{dir}", "config", "show"], ["cannot read config file", "Is a directory"]),
    (["push"], ["no build report", "run edgeforge-ext build first"]),
    (["profile", "patch", "{dir}/missing.yaml"], ["file not found"]),
    (["images", "verify"], ["no images given", "--images FILE"]),
    (["--config", "{config}", "build", "--locked"], ["not a valid edgeforge.lock", "hint: run `edgeforge-ext lock`"]),
    (["build", "--variant", "nope"], ["unknown variant 'nope'"]),
]


@pytest.mark.parametrize("argv, words", USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_mistakes_exit_2(argv: list[str], words: list[str], files: dict[str, Path], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(**files) for a in argv]
    check(capsys, ["--workdir", str(tmp_path / "w"), *argv], 2, *words)


def test_missing_k8s_version_is_reported_before_any_step_runs(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # Not after a slow preflight, and not as a preflight failure (exit 3) on a small host.
    err = check(capsys, ["--workdir", str(tmp_path / "w"), "build", "--canvos-url", NO_REPO], 2,
                "no --k8s-version given", "hint: pass --k8s-version")
    assert "preflight" not in err and "every k3s version listed" in err
    assert not (tmp_path / "w").exists()


# (Unreadable files and read-only directories cannot be made as root, which the tests run as; they take the
# same code paths as a directory given as a file, tested here.)
PLACES = [("output", "build")] + [(w, c) for w in ("workdir", "workdir-below-a-file", "workdir-not-creatable")
                                  for c in ("build", "checkout")]


@pytest.mark.parametrize("where, command", PLACES)
def test_a_directory_that_cannot_be_one_exits_2(where: str, command: str, files: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    workdir, output = tmp_path / "w", []
    if where == "output":
        output = ["--output", str(files["file"])]
    elif where == "workdir":
        workdir = files["file"]
    elif where == "workdir-below-a-file":
        workdir = files["file"] / "w"
    else:
        workdir = Path("/proc/edgeforge-no-such-dir/w")  # mkdir fails (no file can be made in /proc)
    argv = ["--workdir", str(workdir), command, "--canvos-url", NO_REPO, *output]
    if command == "build":
        argv += ["--k8s-version", "1.32.3"]
    what = "output directory" if where == "output" else "work directory"
    check(capsys, argv, 2, f"as the {what}", "hint: choose another --")


def test_dated_output_into_a_file_exits_2(canvos_repo, files: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    check(capsys, ["--workdir", str(tmp_path / "w"), "build", "--canvos-url", canvos_repo.url, "--ref", "v4.10.0",
                   "--k8s-version", "1.32.3", "--keep-last", "2", "--output", str(files["file"])], 2,
          "as the output directory: it exists and is not a directory", "hint: choose another --output")


def test_wrong_ref_exits_4_naming_the_tags(canvos_repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check(capsys, ["--workdir", str(tmp_path / "w"), "checkout", "--canvos-url", canvos_repo.url, "--ref", "v4.10"],
          4, "ref 'v4.10' not found", "v4.10.0", "hint:")


def test_invalid_values_exit_5_listing_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check(capsys, ["--workdir", str(tmp_path / "w"), "render", "--output", str(tmp_path / "out"),
                   "--custom-tag", "Demo_1", "--iso-name", "my iso"], 5,
          "2 problems", "CUSTOM_TAG", "ISO_NAME", "hint:")


def test_unreachable_daemon_exits_6(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")
    check(capsys, ["--workdir", str(tmp_path / "w"), "clean"], 6, "cannot reach the Docker daemon",
          "hint: start Docker")


def test_no_daemon_and_a_small_host_report_both_with_exit_6(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # No daemon is a container-engine problem (exit 6) whatever else fails; every failure is listed.
    # (A small host alone is exit 3: tests/engine/test_preflight_real.py.)
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")  # fast: no daemon probes
    monkeypatch.setenv("EDGEFORGE_PREFLIGHT_MIN_CPUS", "100000")
    check(capsys, ["--workdir", str(tmp_path / "w"), "preflight"], 6, "preflight failed", "cpu", "docker",
          "lower preflight.min_cpus")


def test_unreachable_registry_exits_9_with_a_clean_reason(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images.txt"
    images.write_text("quay.io/kairos/core:v1\n")
    err = check(capsys, ["images", "verify", "--images", str(images), "--registry", f"127.0.0.1:{free_port()}"],
                9, "is unreachable", "hint: check the address and port")
    first = err.splitlines()[0]
    assert first.endswith("Connection refused"), first  # no urllib3 debris like '"))'


def test_no_git_on_the_host_exits_4_in_one_line(tmp_path: Path) -> None:
    # GitPython refuses to import without git; a fresh interpreter, since this one has imported it.
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_PYTHON")}
    env["PATH"] = str(tmp_path / "empty-bin")
    proc = subprocess.run([sys.executable, "-m", "edgeforge_ext", "--workdir", str(tmp_path / "w"), "checkout",
                           "--canvos-url", "https://builder:Xq9-SECRET-pw@git.example.invalid/CanvOS.git"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 4, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: cannot run git: "), proc.stderr
    assert lines[1] == "hint: install git (e.g. apt-get install git), or set GIT_PYTHON_GIT_EXECUTABLE to its path"


@pytest.mark.parametrize("toml, command", [
    ('[registry]\ndomain = "reg.example.net/x"\ncertificates = ["missing-ca.pem"]\n', ["images", "verify"]),
    ('[registry]\ndomain = "127.0.0.1:9/x"\ncertificates = ["missing-ca.pem", "other.pem"]\n', ["images", "verify"]),
    ('[[registry.registries]]\ndomain = "reg.example.net"\ncertificates = ["missing-ca.pem"]\n', ["images", "verify"]),
    ('[site]\nca_certs = ["missing-ca.pem"]\n', ["render", "--output", "out"]),
], ids=["registry.certificates", "several", "registries-entry", "site.ca_certs"])
def test_a_missing_ca_file_is_a_usage_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    toml: str, command: list[str]) -> None:
    (tmp_path / "edgeforge.toml").write_text(toml)
    (tmp_path / "images.txt").write_text("quay.io/a/b:1\n")
    options = ["--images", str(tmp_path / "images.txt")] if command[0] == "images" else []
    command = [str(tmp_path / c) if c == "out" else c for c in command]
    check(capsys, ["--config", str(tmp_path / "edgeforge.toml"), *command, *options], 2,
          f"cannot read the CA certificate file {tmp_path / 'missing-ca.pem'}: No such file or directory")


def test_a_bug_is_a_plain_exception_not_a_usage_error() -> None:
    from edgeforge_ext.config import load_config
    from edgeforge_ext.errors import EdgeforgeError

    # A command passing a flag for a key that does not exist is a bug in edgeforge-ext (exit 1 with
    # "internal error"), not a configuration error (exit 2) that says "internal".
    with pytest.raises(Exception, match="no_such_key") as info:
        load_config(None, env={}, flags={"build.no_such_key": "x"})
    assert not isinstance(info.value, EdgeforgeError)


def test_a_key_that_cannot_be_written_exits_2_naming_the_path_and_leaves_nothing(
        capsys: pytest.CaptureFixture[str]) -> None:
    """/sys/kernel refuses new files to everyone, root included: the error a read-only place gives."""
    prefix = Path("/sys/kernel/edgeforge-test-key")
    check(capsys, ["keygen", "--output", str(prefix)], 2, f"{prefix}.key", "Permission denied", "hint:")
    assert not Path(f"{prefix}.key").exists() and not Path(f"{prefix}.pub").exists()
