"""edgeforge.lock: the fingerprint, reading and writing the file, drift, and the CLI's answers to bad locks."""

from __future__ import annotations

import json
import logging

import pytest

from edgeforge_ext import edgeforge_lock
from edgeforge_ext.build.plan import Source, make_plan
from edgeforge_ext.cli import run
from edgeforge_ext.config import load_config
from edgeforge_ext.errors import ConfigError, UsageError, ValidationError
from edgeforge_ext.render import render_all
from tests.configs import make_config

K8S = {"k3s": ["1.31.6", "1.32.3"]}
TARGETS = ("build-all-images", "build-provider-images", "iso")
PASSWORD = "s3cret-Pa55:word#1"
TOKEN = "TestToken-9f8e7d6c5b4a"
SECRET_ENV = {"EDGEFORGE_REGISTRY_PASSWORD": PASSWORD, "EDGEFORGE_EDGE_HOST_TOKEN": TOKEN}


def cfg(tmp_path, **over):
    return make_config(tmp_path, SECRET_ENV, base={
        "build.custom_tag": "nightly", "build.k8s_versions": ["1.32.3"],
        "site.palette_endpoint": "api.spectrocloud.com", "site.project_name": "Default",
        "registry.domain": "10.10.254.254:8000/spectro-images", "registry.username": "builder"}, **over)


def fp(config) -> str:
    source = Source(url="file:///canvos", ref="v4.10.0", tag="v4.10.0", sha="a" * 40, pe_version="v4.9.21",
                    k8s_versions=K8S, targets=TARGETS)
    plan = make_plan(config, source)
    rendered = render_all(config, pe_version=plan.pe_version, k8s_versions=K8S)
    return edgeforge_lock.fingerprint(user_data=rendered.user_data, arg_text=rendered.arg_text, plan=plan)


def test_fingerprint_is_stable_and_follows_every_input(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    base = fp(cfg(tmp_path))
    assert base == fp(cfg(tmp_path)) and base.startswith("sha256:") and len(base) == 7 + 64
    changed = {
        "build arg": fp(cfg(tmp_path, **{"build.extra_args": {"FOO": "1"}})),
        "k8s version": fp(cfg(tmp_path, **{"build.k8s_versions": ["1.31.6"]})),
        "target": fp(cfg(tmp_path, **{"build.target": "iso"})),
        "custom tag": fp(cfg(tmp_path, **{"build.custom_tag": "other"})),
        "user-data only": fp(cfg(tmp_path, **{"site.project_name": "Other"})),
        "push": fp(cfg(tmp_path, **{"push.enabled": False})),
    }
    for what, value in changed.items():
        assert value != base, what
    assert len(set(changed.values())) == len(changed)
    # The inputs hold secrets: nothing about them was logged.
    assert PASSWORD not in caplog.text and TOKEN not in caplog.text


def test_fingerprint_changes_with_the_secrets_but_never_holds_them(tmp_path, monkeypatch):
    base = fp(cfg(tmp_path))
    other = load_config(None, env={**SECRET_ENV, "EDGEFORGE_REGISTRY_PASSWORD": "rotated-Pa55"},
                        flags={"build.custom_tag": "nightly", "build.k8s_versions": ["1.32.3"],
                               "workdir": str(tmp_path / "wd"), "site.palette_endpoint": "api.spectrocloud.com",
                               "site.project_name": "Default",
                               "registry.domain": "10.10.254.254:8000/spectro-images",
                               "registry.username": "builder"}, cwd=tmp_path)
    assert fp(other) != base  # the ISO holds the password: a rotated one is a new build
    assert PASSWORD not in base


def test_fingerprint_covers_local_edits_in_the_checkout(tmp_path):
    config = cfg(tmp_path)
    source = Source(url="u", ref="r", sha="a" * 40, pe_version="v4.9.21", k8s_versions=K8S, targets=TARGETS)
    plan = make_plan(config, source)
    a = edgeforge_lock.fingerprint(user_data="x", arg_text="y", plan=plan, modified={"Earthfile": "1"})
    b = edgeforge_lock.fingerprint(user_data="x", arg_text="y", plan=plan, modified={"Earthfile": "2"})
    assert a != b


def inputs(**over) -> edgeforge_lock.Inputs:
    base = dict(canvos_url="file:///canvos", canvos_ref="v4.10.0", canvos_sha="a" * 40,
                earthly_image="earthly/earthly:v0.8.15", earthly_id="sha256:" + "1" * 64,
                earthly_repo_digests=(), fingerprint="sha256:" + "f" * 64)
    base.update(over)
    return edgeforge_lock.Inputs(**base)


def test_lock_round_trip_and_drift(tmp_path):
    path = tmp_path / "edgeforge.lock"
    lock = edgeforge_lock.make_lock({"default": inputs()})
    edgeforge_lock.write_lock(lock, path)
    data = json.loads(path.read_text())
    assert data["format"] == edgeforge_lock.FORMAT
    assert data["canvos"]["sha"] == "a" * 40 and data["earthly"]["id"] == "sha256:" + "1" * 64
    assert data["builds"] == {"default": {"fingerprint": "sha256:" + "f" * 64}}
    again = edgeforge_lock.read_lock(path)
    assert again == lock
    assert edgeforge_lock.drift(again, "default", inputs()) == []
    moved = edgeforge_lock.drift(again, "default", inputs(canvos_sha="b" * 40, earthly_id="sha256:" + "2" * 64,
                                                    fingerprint="sha256:" + "e" * 64))
    assert [m.split(":")[0] for m in moved] == [
        "CanvOS SHA", "Earthly image digest",
        "fingerprint of default (rendered user-data and .arg, targets, build args, plan)"]
    assert "aaaaaaaaaaaa" in moved[0] and "bbbbbbbbbbbb" in moved[0]
    assert edgeforge_lock.drift(again, "arm", inputs())[0].startswith(
        "fingerprint: the lock has no entry for build 'arm'")
    with pytest.raises(ValidationError) as info:
        edgeforge_lock.check_locked(again, "default", inputs(earthly_id=None), path)
    assert info.value.exit_code == 5 and "not present locally" in info.value.details[0]


def test_saved_images_live_beside_the_lock_and_survive_a_new_lock(tmp_path):
    path = tmp_path / "edgeforge.lock"
    with pytest.raises(ConfigError, match="records no images"):
        edgeforge_lock.read_images(path)
    images = {"quay.io/kairos/core:v1": "sha256:" + "3" * 64}
    edgeforge_lock.record_images(path, images)  # before any `edgeforge-ext lock`
    assert edgeforge_lock.read_images(path) == images
    edgeforge_lock.write_lock(edgeforge_lock.make_lock({"default": inputs()}), path)
    assert edgeforge_lock.read_images(path) == images  # `lock` keeps what `images save --update-lock` wrote
    assert edgeforge_lock.read_lock(path).canvos_sha == "a" * 40
    edgeforge_lock.record_images(path, {"docker.io/library/alpine:3": "sha256:" + "4" * 64})
    assert edgeforge_lock.read_lock(path).canvos_sha == "a" * 40  # and save keeps the rest
    assert list(edgeforge_lock.read_images(path)) == ["docker.io/library/alpine:3"]


def test_a_lock_needs_the_earthly_image_present(tmp_path):
    with pytest.raises(UsageError) as info:  # exit 2
        edgeforge_lock.make_lock({"default": inputs(earthly_id=None)})
    assert "not present locally" in info.value.message and "docker pull" in (info.value.hint or "")


@pytest.mark.parametrize(("text", "expected"), [
    ("not json {", "not a valid edgeforge.lock"),
    ('{"canvos": {}}', "not a valid edgeforge.lock"),
    ('{"format": 1, "canvos": {"url": "u", "ref": "r"}}', "missing or wrong field"),
    ('{"format": "one"}', "not a lock format version"),
    ('{"format": 99, "canvos": {}}', "newer edgeforge-ext (lock format 99"),
])
def test_bad_locks_are_config_errors_with_what_to_do(tmp_path, text, expected):
    path = tmp_path / "edgeforge.lock"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        edgeforge_lock.read_lock(path)
    assert expected in info.value.message
    assert "edgeforge-ext lock" in (info.value.hint or "")


def test_build_locked_with_a_bad_or_missing_lock_exits_2_before_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workdir = tmp_path / "wd"
    args = ["--workdir", str(workdir), "build", "--locked", "--ref", "v4.10.0", "--k8s-version", "1.32.3"]
    assert run(args) == 2
    err = capsys.readouterr().err
    assert "there is no" in err and "edgeforge-ext lock" in err
    (tmp_path / "edgeforge.lock").write_text('{"format": 7, "canvos": {}}')
    assert run(args) == 2
    err = capsys.readouterr().err
    assert "newer edgeforge-ext" in err and "upgrade edgeforge-ext" in err
    assert not workdir.exists()  # refused before the checkout or any step


def test_lock_lives_next_to_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "edgeforge.toml").write_text('[build]\ncustom_tag = "x"\n')
    config = load_config(tmp_path / "conf" / "edgeforge.toml", env={}, flags={}, cwd=tmp_path)
    assert edgeforge_lock.lock_path(config) == tmp_path / "conf" / "edgeforge.lock"
    monkeypatch.chdir(tmp_path)
    assert edgeforge_lock.lock_path(load_config(None, env={}, flags={}, cwd=tmp_path)) == tmp_path / "edgeforge.lock"


def test_fingerprint_holds_no_cheap_hash_of_the_password():
    """A changed password changes the fingerprint, but the user-data hash inside it is not over the password."""
    from types import SimpleNamespace

    from edgeforge_ext.edgeforge_lock import _without_secrets, fingerprint

    plan = SimpleNamespace(target="iso", runs=[], iso_name="x", pe_version="v1", image_tag="v1", provider_images=[],
                           push_enabled=False, skip=(), os_pack={})
    ud = "#cloud-config\nstylus:\n  registryCredentials:\n    password: hunter2-pw\n"
    a = fingerprint(user_data=ud, arg_text="", plan=plan, secrets=["hunter2-pw"])
    b = fingerprint(user_data=ud.replace("hunter2-pw", "other-pw"), arg_text="", plan=plan, secrets=["other-pw"])
    assert a != b
    masked = _without_secrets(ud, ["hunter2-pw"])
    assert "hunter2-pw" not in masked and "<secret:" in masked
