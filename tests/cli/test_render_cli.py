"""`edgeforge-ext render` as a user runs it: where files go, JSON, exit codes, secrets kept out of output."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
import yaml

from edgeforge_ext.cli import run

PASSWORD = "pa ss: '#1'"
TOKEN = "tok-0123-yes"


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", PASSWORD)
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", TOKEN)


def test_render_to_output_dir_with_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        secrets_env: None) -> None:
    out = tmp_path / "out"
    code = run(["--workdir", str(tmp_path / "wd"), "render", "--output", str(out), "--json",
                "--registry", "10.10.254.254:8000/spectro-images/", "--registry-username", "builder",
                "--palette-endpoint", "api.spectrocloud.com", "--project-name", "Default",
                "--custom-tag", "demo1", "--k8s-version", "1.30.10", "--build-arg", "MY_FLAG=a b"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["user_data"] == str(out / "user-data") and result["arg_file"] == str(out / ".arg")
    assert any("PE_VERSION is not set" in w for w in result["warnings"])
    assert stat.S_IMODE((out / "user-data").stat().st_mode) == 0o600
    data = yaml.safe_load((out / "user-data").read_text())
    assert data["stylus"]["registryCredentials"] == {
        "domain": "10.10.254.254:8000/spectro-images", "username": "builder", "password": PASSWORD,
        "insecure": False}
    assert data["stylus"]["site"]["edgeHostToken"] == TOKEN
    arg = (out / ".arg").read_text()
    assert "CUSTOM_TAG=demo1\n" in arg and "K8S_VERSION=1.30.10\n" in arg and "MY_FLAG='a b'\n" in arg
    assert PASSWORD not in arg and TOKEN not in arg
    assert captured.err.count("inside the ISO") == 1
    assert f"wrote {out / 'user-data'} (mode 0600)" in captured.err
    assert PASSWORD not in captured.err + captured.out and TOKEN not in captured.err + captured.out


def test_password_from_stdin(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin\n"))
    out = tmp_path / "out"
    assert run(["render", "--output", str(out), "--registry", "r.local", "--registry-password-stdin"]) == 0
    assert yaml.safe_load((out / "user-data").read_text())["stylus"]["registryCredentials"]["password"] == \
        "from-stdin"


def _rendered_password(out: Path) -> str:
    return str(yaml.safe_load((out / "user-data").read_text())["stylus"]["registryCredentials"]["password"])


def test_a_password_file_is_taken_byte_for_byte_but_its_last_newline(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    for content, password in ((b"crlf-pw\r\n", "crlf-pw\r"), (b"two-nl\n\n", "two-nl\n"), (b" sp-pw ", " sp-pw ")):
        (tmp_path / "pw").write_bytes(content)
        assert run(["render", "--output", str(out), "--registry", "r.local", "--registry-username", "u",
                    "--registry-password-file", str(tmp_path / "pw")]) == 0, capsys.readouterr().err
        assert _rendered_password(out) == password


def test_a_password_on_stdin_keeps_its_carriage_return(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"stdin-pw\r\n")))
    out = tmp_path / "out"
    assert run(["render", "--output", str(out), "--registry", "r.local", "--registry-password-stdin"]) == 0
    assert _rendered_password(out) == "stdin-pw\r"


def test_no_checkout_and_no_output_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--workdir", str(tmp_path / "wd"), "render"]) == 2
    err = capsys.readouterr().err
    assert "no CanvOS checkout at" in err and "--output DIR" in err


def test_validation_failure_exits_5_lists_every_problem_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", "####")
    out = tmp_path / "out"
    code = run(["render", "--output", str(out), "--registry", "https://reg.example.com", "--custom-tag", "Bad-Tag",
                "--iso-name", "a b"])
    err = capsys.readouterr().err
    assert code == 5
    assert "5 problems in the rendered user-data and .arg" in err
    for text in ("stylus.registryCredentials.domain: 'https://reg.example.com' must not have a scheme",
                 "stylus.registryCredentials.domain: 'https://reg.example.com' is the documentation's example",
                 "stylus.registryCredentials.password: still the upstream placeholder",
                 ".arg CUSTOM_TAG: 'Bad-Tag'", ".arg ISO_NAME: 'a b'"):
        assert text in err, text
    assert not out.exists()


def test_template_dir_missing_variable_exits_5_with_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "user-data.j2").write_text("#cloud-config\nstylus:\n  site:\n    name: {{ sitename | yq }}\n")
    code = run(["render", "--output", str(tmp_path / "out"), "--template-dir", str(tpl)])
    assert code == 5
    assert f"{tpl / 'user-data.j2'}:4: 'sitename' is undefined" in capsys.readouterr().err
    assert not (tmp_path / "out" / "user-data").exists()


REGISTRY = ["--registry", "r.local", "--registry-username", "builder", "--palette-endpoint", "api.spectrocloud.com",
            "--project-name", "Default"]


def _custom_template(tmp_path: Path, registry_block: str) -> Path:
    tpl = tmp_path / "tpl"
    tpl.mkdir(exist_ok=True)
    (tpl / "user-data.j2").write_text(
        "#cloud-config\nstylus:\n  site:\n    paletteEndpoint: {{ site.palette_endpoint | yq }}\n"
        "    edgeHostToken: {{ site.edge_host_token | yq }}\n"
        f"  registryCredentials:\n    domain: {{{{ registry_credentials.domain | yq }}}}\n{registry_block}")
    return tpl


def test_a_template_gets_the_real_secret_even_without_the_yq_filter(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", "plain-Pa55word")
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", TOKEN)
    tpl = _custom_template(tmp_path, "    password: {{ registry_credentials.password }}\n")
    out = tmp_path / "out"
    assert run(["render", "--output", str(out), "--template-dir", str(tpl), *REGISTRY]) == 0, capsys.readouterr().err
    assert _rendered_password(out) == "plain-Pa55word"  # it was the mask: dead credentials in the ISO


@pytest.mark.parametrize("registry_block", [
    "",  # the template forgot the password
    "    password: '********'\n",  # pasted from `config show`
    "    password: {{ registry_credentials.password }}\n",  # unquoted, YAML reads "pw-1234 #tail" as "pw-1234"
], ids=["missing", "mask", "unquoted"])
def test_a_user_data_without_a_configured_secret_or_with_the_mask_is_exit_5_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        registry_block: str) -> None:
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", "pw-1234 #tail")
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", TOKEN)
    tpl = _custom_template(tmp_path, registry_block)
    out = tmp_path / "out"
    assert run(["render", "--output", str(out), "--template-dir", str(tpl), *REGISTRY]) == 5
    err = capsys.readouterr().err
    assert ("stylus.registryCredentials.password: the configured registry password is not in the rendered "
            "user-data") in err, err
    assert not (out / "user-data").exists()


def test_the_mask_pasted_into_extra_user_data_is_exit_5_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", TOKEN)
    extra = tmp_path / "extra.yaml"
    extra.write_text("stylus:\n  site:\n    edgeHostToken: '********'\n")
    assert run(["render", "--output", str(tmp_path / "out"), "--extra-user-data", str(extra), *REGISTRY]) == 5
    err = capsys.readouterr().err
    assert "stylus.site.edgeHostToken: holds the mask ********" in err
    assert "stylus.site.edgeHostToken: the configured registration token is not in the rendered user-data" in err


def test_extra_user_data_is_merged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("stylus:\n  site:\n    name: mine\ninstall:\n  poweroff: true\n")
    out = tmp_path / "out"
    code = run(["--json", "render", "--output", str(out), "--extra-user-data", str(extra)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = yaml.safe_load((out / "user-data").read_text())
    assert data["stylus"]["site"]["name"] == "mine" and data["install"]["poweroff"] is True
    assert f"{extra} overrides the generated install.poweroff" in json.loads(captured.out)["warnings"]
    assert "inside the ISO" not in captured.err  # no secrets configured: nothing to warn about


def test_render_into_the_checkout_uses_its_facts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                canvos_checkout: tuple[Path, object]) -> None:
    workdir, _ = canvos_checkout
    checkout = workdir / "CanvOS"
    code = run(["--workdir", str(workdir), "render", "--k8s-version", "1.30.11"])
    assert code == 5
    assert "1.30.11 is not in k8s_version.json for k3s (nearest: 1.29.14, 1.30.10, 1.31.6)" in \
        capsys.readouterr().err
    assert not (checkout / "user-data").exists()

    assert run(["--workdir", str(workdir), "render", "--k8s-version", "1.30.10"]) == 0
    err = capsys.readouterr().err
    assert f"wrote {checkout / 'user-data'} (mode 0600)" in err
    arg = (checkout / ".arg").read_text()
    assert "PE_VERSION=v4.9.21\n" in arg and "K8S_VERSION=1.30.10\n" in arg  # the Earthfile's, not the tag
    assert stat.S_IMODE((checkout / "user-data").stat().st_mode) == 0o600
