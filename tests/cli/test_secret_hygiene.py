"""Secrets never reach the screen, stdout JSON or the reports, even when a message quotes one by mistake.

Each test feeds a distinctive fake secret through one leak path and checks every output for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeforge_ext import secrets
from edgeforge_ext.build.report import Report
from edgeforge_ext.cli import run
from edgeforge_ext.nightly import BuildResult
from edgeforge_ext.secrets import Redactor

PASSWORD = "Xq9-SECRET-pw"
TOKEN = "Tk7-SECRET-token"
RENDER = ["render", "--registry", "10.10.254.254:8000/spectro-images", "--registry-username", "builder",
          "--palette-endpoint", "api.spectrocloud.com", "--project-name", "Default", "--k8s-version", "1.30.10"]


@pytest.fixture
def env_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", PASSWORD)
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", TOKEN)


def assert_clean(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text and TOKEN not in text, text[-2000:]


def test_a_validation_error_quoting_a_misplaced_secret_shows_the_mask(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], env_secrets: None) -> None:
    # The password pasted into the wrong option: the problem list quotes the value.
    code = run(["--workdir", str(tmp_path / "w"), *RENDER, "--output", str(tmp_path / "out"),
                "--iso-name", f"{TOKEN}.iso", "--custom-tag", PASSWORD])
    captured = capsys.readouterr()
    assert code == 5
    assert "ISO_NAME" in captured.err and "CUSTOM_TAG" in captured.err and "********" in captured.err
    assert_clean(captured.out, captured.err)
    assert not (tmp_path / "out").exists()


def test_a_config_error_echoing_a_secret_is_masked_also_in_the_debug_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], env_secrets: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEFORGE_BUILD_ARCH", PASSWORD)  # a value pasted into the wrong variable
    for debug in ([], ["--debug"]):
        code = run([*debug, "--workdir", str(tmp_path / "w"), "config", "show"])
        captured = capsys.readouterr()
        assert code == 2
        assert "build.arch must be one of amd64, arm64" in captured.err
        assert_clean(captured.out, captured.err)
        if debug:
            assert "Traceback" in captured.err and "ConfigError" in captured.err


def test_config_show_masks_the_token_in_a_canvos_url_and_secret_values_of_other_keys(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], env_secrets: None) -> None:
    url = f"https://builder:{TOKEN}@git.example.invalid/acme/CanvOS.git"
    args = ["--workdir", str(tmp_path / "w"), "config", "show", "--canvos-url", url,
            "--registry-username", PASSWORD]  # a user name that is the password: shown masked
    assert run(args) == 0
    table = capsys.readouterr()
    assert run([*args, "--json"]) == 0
    as_json = capsys.readouterr()
    assert_clean(table.out, table.err, as_json.out, as_json.err)
    values = json.loads(as_json.out)["values"]
    assert values["canvos.url"]["value"] == "https://builder:********@git.example.invalid/acme/CanvOS.git"
    assert "git.example.invalid/acme/CanvOS.git" in table.err


def test_secrets_from_files_and_a_password_given_on_stdin_are_masked_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code = run(["--workdir", str(tmp_path / "w"), *RENDER, "--output", str(tmp_path / "out"),
                "--registry-password-stdin", "--edge-host-token-file", str(token_file),
                "--custom-tag", f"{PASSWORD}+{TOKEN}"])
    captured = capsys.readouterr()
    assert code == 5 and "CUSTOM_TAG: '********+********'" in captured.err
    assert_clean(captured.out, captured.err)


def test_an_unexpected_error_with_credentials_in_its_text_is_scrubbed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], env_secrets: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The safety net for a library exception we did not foresee (exit 1): it may quote a URL with
    # credentials or a known secret; neither is shown, with or without --debug.
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"GET https://someone:{TOKEN}@registry.invalid/v2/ failed with {PASSWORD}")

    monkeypatch.setattr("edgeforge_ext.canvos.repo.checkout", boom)
    for debug in ([], ["--debug"]):
        code = run([*debug, "--workdir", str(tmp_path / "w"), "checkout", "--canvos-url",
                    "https://git.example.invalid/CanvOS.git"])
        captured = capsys.readouterr()
        assert code == 1
        assert "internal error: RuntimeError: GET https://registry.invalid/v2/ failed with ********" in captured.err
        assert_clean(captured.out, captured.err)


def test_github_error_annotations_are_scrubbed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], env_secrets: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("EDGEFORGE_BUILD_TARGET", TOKEN)
    code = run(["--workdir", str(tmp_path / "w"), "config", "show"])
    captured = capsys.readouterr()
    assert code == 2 and "::error::build.target must be one of" in captured.err
    assert_clean(captured.out, captured.err)


def test_report_and_summary_free_text_is_scrubbed() -> None:
    # edgeforge-report.json and edgeforge-summary.json are written from these as_json() forms.
    secrets.remember(secrets.Secret(PASSWORD))  # as load_config does
    report = Report(status="failed", warnings=[f"warned about {PASSWORD}"], error=f"failed: {PASSWORD}")
    result = BuildResult("default", "failed", exit_code=5, report=report, error=f"failed: {PASSWORD}")
    text = json.dumps(result.as_json())
    assert "failed: ********" in text and "warned about ********" in text
    assert_clean(text)


def test_each_invocation_masks_only_its_own_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", "builder-two")
    assert run(["--workdir", str(tmp_path / "w"), "config", "show", "--json"]) == 0
    capsys.readouterr()
    monkeypatch.delenv("EDGEFORGE_REGISTRY_PASSWORD")
    # A later run in the same process (tests, a library user) that has no such secret shows the value.
    assert run(["--workdir", str(tmp_path / "w"), "config", "show", "--json",
                "--registry-username", "builder-two"]) == 0
    assert json.loads(capsys.readouterr().out)["values"]["registry.username"]["value"] == "builder-two"


@pytest.mark.parametrize("url, expected", [
    ("https://builder:p%40ss@git.example/x.git", ["p%40ss", "p@ss"]),
    ("https://ghp_T0KEN@github.com/acme/CanvOS", ["ghp_T0KEN"]),
    ("https://github.com/acme/CanvOS", []),
    ("file:///srv/CanvOS.git", []),
])
def test_url_secrets(url: str, expected: list[str]) -> None:
    assert secrets.url_secrets(url) == expected


def test_proxy_credentials_are_masked_in_config_show(monkeypatch, capsys):
    from edgeforge_ext.cli import run

    monkeypatch.setenv("EDGEFORGE_BUILD_HTTPS_PROXY", "http://proxyuser:Prx-Secret-99@proxy.example:3128")
    assert run(["config", "show", "--json"]) == 0
    captured = capsys.readouterr()
    assert "Prx-Secret-99" not in captured.out + captured.err and "proxy.example:3128" in captured.out


QUOTED = 'pa"ss\\wörd-7'  # a password with a quote, a backslash and a non-ASCII letter


def _encodings(value: str) -> list[str]:
    from urllib.parse import quote, quote_plus

    from edgeforge_ext.yamlquote import yaml_quote

    return [value, json.dumps(value)[1:-1], yaml_quote(value)[1:-1], repr(value)[1:-1], quote(value, safe=""),
            quote_plus(value)]


def test_an_escaped_secret_echoed_by_a_validation_error_is_masked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", QUOTED)
    code = run(["--workdir", str(tmp_path / "w"), *RENDER, "--output", str(tmp_path / "out"),
                "--custom-tag", QUOTED])  # the problem list quotes the value as Python does: 'pa"ss\\wörd-7'
    captured = capsys.readouterr()
    assert code == 5 and "CUSTOM_TAG" in captured.err
    for form in _encodings(QUOTED):
        assert form not in captured.out + captured.err, form


def test_user_data_printed_in_the_build_log_is_masked_with_its_escapes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from edgeforge_ext.config import load_config
    from edgeforge_ext.logrelay import LogRelay, relay
    from edgeforge_ext.render import render_all

    env = {"EDGEFORGE_REGISTRY_PASSWORD": QUOTED, "EDGEFORGE_EDGE_HOST_TOKEN": TOKEN}
    config = load_config(None, env=env, cwd=tmp_path, flags={
        "registry.domain": "10.10.254.254:8000/spectro-images", "registry.username": "builder",
        "site.palette_endpoint": "api.spectrocloud.com", "site.project_name": "Default",
        "build.k8s_versions": ["1.30.10"]})
    user_data = render_all(config, pe_version="v4.9.21", k8s_versions=None).user_data
    assert '"pa\\"ss\\\\wörd-7"' in user_data  # the yq filter escapes it: this is what a `cat user-data` prints
    sink = io.StringIO()
    relay([("+iso | " + line + "\n").encode() for line in user_data.splitlines()],
          LogRelay(redactor=Redactor(config.secrets), sink=sink))
    assert 'password: "********"' in sink.getvalue()
    for form in _encodings(QUOTED):
        assert form not in sink.getvalue(), form


def test_a_secret_too_short_to_mask_is_warned_about_once_and_left_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", "pas")  # masking it would garble "password_file"
    assert run(["--workdir", str(tmp_path / "w"), "config", "show"]) == 0
    err = capsys.readouterr().err
    warning = "the secret from env EDGEFORGE_REGISTRY_PASSWORD is shorter than 4 characters: it is not masked"
    assert err.count(warning) == 1
    assert "registry.password_file" in err and "EDGEFORGE_REGISTRY_PASSWORD" in err
