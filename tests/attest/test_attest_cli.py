"""keygen and the key as configuration, through the CLI as a user runs them: modes, masking, refusals."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from edgeforge_ext.cli import run
from edgeforge_ext.config import pem_lines
from edgeforge_ext.secrets import Secret

PASSWORD = "keygen-Passw0rd-42"


def test_keygen_encrypts_with_the_password_and_prints_neither(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("EDGEFORGE_ATTEST_KEY_PASSWORD", PASSWORD)
    assert run(["keygen", "--output", str(tmp_path / "site")]) == 0
    captured = capsys.readouterr()
    key = tmp_path / "site.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "BEGIN ENCRYPTED PRIVATE KEY" in key.read_text()
    assert "key id sha256:" in captured.err
    lines = pem_lines(Secret(key.read_text()))
    for secret in (PASSWORD, *lines):
        assert secret not in captured.out + captured.err
    assert run(["keygen", "--output", str(tmp_path / "site")]) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err


def test_config_show_masks_the_key_and_its_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("EDGEFORGE_ATTEST_KEY_PASSWORD", PASSWORD)
    assert run(["keygen", "--output", str(tmp_path / "site")]) == 0
    capsys.readouterr()
    monkeypatch.setenv("EDGEFORGE_ATTEST_KEY_FILE", str(tmp_path / "site.key"))
    assert run(["config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out)
    assert shown["secrets"]["attest.key"] == {"value": "********", "source": f"file {tmp_path / 'site.key'}"}
    assert shown["secrets"]["attest.key_password"]["value"] == "********"
    for secret in (PASSWORD, *pem_lines(Secret((tmp_path / "site.key").read_text()))):
        assert secret not in out


def test_build_refuses_attest_without_a_usable_key_before_anything_runs(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("EDGEFORGE_ATTEST_KEY_PASSWORD", PASSWORD)
    assert run(["keygen", "--output", str(tmp_path / "site")]) == 0
    common = ["--workdir", str(tmp_path / "w"), "build", "--target", "iso", "--attest"]
    assert run(common) == 2
    assert "--attest needs a signing key" in capsys.readouterr().err
    monkeypatch.setenv("EDGEFORGE_ATTEST_KEY_PASSWORD", "not-the-password")
    assert run([*common, "--attest-key", str(tmp_path / "site.key")]) == 2
    err = capsys.readouterr().err
    assert "the password is wrong" in err and "not-the-password" not in err
    assert not (tmp_path / "w" / "CanvOS").exists()  # nothing ran
