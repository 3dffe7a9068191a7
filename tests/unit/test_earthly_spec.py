"""The Earthly command line and container spec: argument order, privileges, mounts, env, names."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeforge_ext.earthly import cache_volume, earthly_command, earthly_spec
from edgeforge_ext.engine import LABEL, WORKDIR_LABEL, ContainerSpec
from edgeforge_ext.errors import UsageError
from edgeforge_ext.secrets import Redactor, Secret


def test_build_args_come_after_the_target():
    cmd = earthly_command("iso", {"PE_VERSION": "v4.9.21", "ARCH": "amd64"})
    assert cmd == ["--allow-privileged", "+iso", "--PE_VERSION=v4.9.21", "--ARCH=amd64"]


def test_allow_privileged_only_when_privileged_and_push_is_a_flag():
    assert earthly_command("+build-all-images", {"K8S_VERSION": "1.30.10"}, privileged=False, push=True) == [
        "--push", "+build-all-images", "--K8S_VERSION=1.30.10"]


def test_values_with_spaces_stay_one_argument():
    cmd = earthly_command("iso", {"CUSTOM_TAG": "a b"}, privileged=False)
    assert cmd == ["+iso", "--CUSTOM_TAG=a b"]


@pytest.mark.parametrize("bad", [{"": "x"}, {"A=B": "x"}, {"-X": "y"}])
def test_bad_build_arg_names_are_refused(bad: dict[str, str]):
    with pytest.raises(UsageError):
        earthly_command("iso", bad)


def test_bad_target_is_refused():
    with pytest.raises(UsageError):
        earthly_command("+", {})


def _checkout(tmp_path: Path, certs: list[str] = (), entrypoint: bool = True) -> Path:  # type: ignore[assignment]
    co = tmp_path / "CanvOS"
    (co / "certs").mkdir(parents=True, exist_ok=True)
    (co / "certs" / ".gitkeep").write_text("")
    for name in certs:
        (co / "certs" / name).write_text("-----BEGIN CERTIFICATE-----\n")
    if entrypoint:
        (co / "earthly-entrypoint.sh").write_text("#!/bin/sh\nupdate-ca-certificates\nexec earthly \"$@\"\n")
    return co


def _spec(tmp_path: Path, **kw: object) -> ContainerSpec:
    if "checkout" not in kw:
        kw["checkout"] = _checkout(tmp_path)
    args: dict[str, object] = dict(image="earthly/earthly:v0.8.15",
                                   command=["+iso"], privileged=True, buildkit_host=None, proxies={},
                                   workdir=tmp_path, run_id="20260101-1")
    args.update(kw)
    return earthly_spec(**args)  # type: ignore[arg-type]


def test_local_buildkit_is_privileged_with_the_cache_volume(tmp_path: Path):
    spec = _spec(tmp_path)
    assert spec.privileged
    assert spec.working_dir == "/workspace"
    assert spec.env["GLOBAL_CONFIG"] == "{disable_analytics: true}"
    assert "EARTHLY_BUILDKIT_HOST" not in spec.env
    targets = {m.target: m for m in spec.mounts}
    assert targets["/workspace"].source == str((tmp_path / "CanvOS").resolve())
    assert targets["/var/run/docker.sock"].source == "/var/run/docker.sock"
    cache = targets["/tmp/earthly"]
    assert cache.kind == "volume" and cache.source.startswith("edgeforge-buildkit-cache-")
    other = cache_volume(tmp_path / "elsewhere")
    assert cache.source != other and cache.source == cache_volume(tmp_path)
    assert spec.entrypoint is None  # only .gitkeep in certs/


def test_remote_buildkit_runs_unprivileged_without_cache(tmp_path: Path):
    spec = _spec(tmp_path, buildkit_host="tcp://10.0.0.5:8372")
    assert not spec.privileged
    assert spec.env["EARTHLY_BUILDKIT_HOST"] == "tcp://10.0.0.5:8372"
    assert spec.env["NO_BUILDKIT"] == "1"
    assert "/tmp/earthly" not in {m.target for m in spec.mounts}


def test_proxies_pass_through_in_both_cases(tmp_path: Path):
    spec = _spec(tmp_path, proxies={"HTTPS_PROXY": "http://p:3128", "no_proxy": "localhost,10.0.0.0/8"})
    assert spec.env["HTTPS_PROXY"] == spec.env["https_proxy"] == "http://p:3128"
    assert spec.env["NO_PROXY"] == spec.env["no_proxy"] == "localhost,10.0.0.0/8"
    assert "HTTP_PROXY" not in spec.env


def test_certs_are_mounted_read_only_and_the_entrypoint_trusts_them(tmp_path: Path):
    co = _checkout(tmp_path, certs=["corp-ca.crt"])
    spec = _spec(tmp_path, checkout=co)
    ca = next(m for m in spec.mounts if m.target == "/usr/local/share/ca-certificates")
    assert ca.read_only and ca.source == str(co.resolve() / "certs")
    assert spec.entrypoint == ["/workspace/earthly-entrypoint.sh"]


def test_no_entrypoint_override_when_the_checkout_has_none(tmp_path: Path):
    co = _checkout(tmp_path, certs=["corp-ca.crt"], entrypoint=False)
    spec = _spec(tmp_path, checkout=co)
    assert spec.entrypoint is None
    assert any(m.target == "/usr/local/share/ca-certificates" for m in spec.mounts)


def test_names_differ_per_workdir_and_run_and_labels_say_whose(tmp_path: Path):
    a = _spec(tmp_path, run_id="r1")
    b = _spec(tmp_path, run_id="r2")
    other = tmp_path / "other"
    other.mkdir()
    c = _spec(tmp_path, workdir=other, run_id="r1")
    assert len({a.name, b.name, c.name}) == 3
    assert a.name is not None and a.name.startswith("edgeforge-earthly-") and a.name.endswith("-r1")
    labels = a.all_labels()
    assert labels[LABEL] == "earthly"
    assert labels[WORKDIR_LABEL] == str(tmp_path.resolve())


def test_a_secret_in_env_or_command_is_detected(tmp_path: Path):
    pw = Secret("hunter2-secret")
    spec = _spec(tmp_path, command=["+iso", "--PE_VERSION=v4"])
    assert not spec.leaks(Redactor([pw]))
    spec.env["REGISTRY_PASSWORD"] = pw.reveal()
    assert spec.leaks(Redactor([pw]))
