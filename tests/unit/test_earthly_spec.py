"""The Earthly command line and container spec: argument order, privileges, mounts, env, names."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeforge_ext.build.earthly import cache_volume, earthly_command, earthly_spec
from edgeforge_ext.engine import LABEL, WORKDIR_LABEL, ContainerSpec
from edgeforge_ext.errors import UsageError
from edgeforge_ext.secrets import Redactor, Secret


def test_build_args_come_after_the_target():
    cmd = earthly_command("iso", {"PE_VERSION": "v4.9.21", "ARCH": "amd64"})
    assert cmd == ["--allow-privileged", "+iso", "--PE_VERSION=v4.9.21", "--ARCH=amd64"]


def test_allow_privileged_is_always_given_and_push_is_a_flag():
    # Earthly grants `RUN --privileged` only with --allow-privileged, also with a remote BuildKit
    # (earthly.sh passes it in every mode; CanvOS main has such steps).
    assert earthly_command("+build-all-images", {"K8S_VERSION": "1.30.10"}, push=True) == [
        "--allow-privileged", "--push", "+build-all-images", "--K8S_VERSION=1.30.10"]


def test_secrets_travel_as_files_and_the_private_arg_file_as_a_path():
    cmd = earthly_command("iso", {"PE_VERSION": "v4.10.0"},
                          secret_files={"UBUNTU_PRO_KEY": "/run/edgeforge/secrets/UBUNTU_PRO_KEY"},
                          arg_file="/run/edgeforge/arg")
    assert cmd == ["--arg-file-path=/run/edgeforge/arg", "--allow-privileged", "--secret-file",
                   "UBUNTU_PRO_KEY=/run/edgeforge/secrets/UBUNTU_PRO_KEY", "+iso", "--PE_VERSION=v4.10.0"]


def test_values_with_spaces_stay_one_argument():
    cmd = earthly_command("iso", {"CUSTOM_TAG": "a b"})
    assert cmd == ["--allow-privileged", "+iso", "--CUSTOM_TAG=a b"]


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


def test_without_the_checkouts_entrypoint_the_image_entrypoint_runs_after_update_ca_certificates(tmp_path: Path):
    co = _checkout(tmp_path, certs=["corp-ca.crt"], entrypoint=False)
    spec = _spec(tmp_path, checkout=co)
    assert spec.entrypoint is not None and spec.entrypoint[:2] == ["/bin/sh", "-c"]
    assert "update-ca-certificates" in spec.entrypoint[2] and spec.entrypoint[3:] == ["/usr/bin/earthly-entrypoint.sh"]
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


def test_remote_buildkit_without_certificates_turns_client_tls_off(tmp_path: Path):
    # Earthly's client speaks TLS to a tcp:// BuildKit unless its config says tls_enabled: false
    # (config/config.go ~158, init_frontend.go ~36-51); BUILDKIT_TLS_ENABLED is the daemon's.
    spec = _spec(tmp_path, buildkit_host="tcp://10.0.0.5:8372")
    assert spec.env["GLOBAL_CONFIG"] == "{disable_analytics: true, tls_enabled: false}"
    assert "BUILDKIT_TLS_ENABLED" not in spec.env
    assert "--allow-privileged" in earthly_command("iso", {})  # privileged RUN steps need it in every mode


def test_remote_buildkit_with_mtls_mounts_the_files_where_earthly_looks(tmp_path: Path):
    from edgeforge_ext.build.earthly import BuildkitTls

    files = {n: tmp_path / f"{n}.pem" for n in ("ca", "cert", "key")}
    for path in files.values():
        path.write_text("pem")
    spec = _spec(tmp_path, buildkit_host="tcp://bk:8372", tls=BuildkitTls(files["ca"], files["cert"], files["key"]))
    assert spec.env["GLOBAL_CONFIG"] == "{disable_analytics: true}"  # TLS stays on (Earthly's default)
    mounted = {m.target: m for m in spec.mounts}
    for target, name in (("ca_cert.pem", "ca"), ("earthly_cert.pem", "cert"), ("earthly_key.pem", "key")):
        mount = mounted[f"/root/.earthly/certs/{target}"]
        assert mount.read_only and mount.source == str(files[name])


def test_the_users_docker_config_is_mounted_read_only(tmp_path: Path):
    from edgeforge_ext.build.earthly import docker_config_file

    home = tmp_path / "home"
    assert docker_config_file({}, home=home) is None
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text("{}")
    found = docker_config_file({}, home=home)
    assert found == home / ".docker" / "config.json"
    custom = tmp_path / "dc"
    custom.mkdir()
    (custom / "config.json").write_text("{}")
    assert docker_config_file({"DOCKER_CONFIG": str(custom)}, home=home) == custom / "config.json"
    spec = _spec(tmp_path, docker_config=found)
    mount = next(m for m in spec.mounts if m.target == "/root/.docker/config.json")
    assert mount.read_only and mount.source == str(found)


def test_earthly_build_args_pass_through(tmp_path: Path):
    assert _spec(tmp_path, earthly_build_args="A=1,B=2").env["EARTHLY_BUILD_ARGS"] == "A=1,B=2"
    assert "EARTHLY_BUILD_ARGS" not in _spec(tmp_path).env


def test_private_directory_is_mounted_and_its_env_sourced_not_inspected(tmp_path: Path):
    private = tmp_path / "private"
    private.mkdir()
    (private / "env").write_text("HTTPS_PROXY='http://u:pw@p:3128'\n")
    spec = _spec(tmp_path, private_dir=private)
    mount = next(m for m in spec.mounts if m.target == "/run/edgeforge")
    assert mount.read_only and mount.source == str(private)
    assert spec.entrypoint is not None and spec.entrypoint[:2] == ["/bin/sh", "-c"]
    assert ". /run/edgeforge/env" in spec.entrypoint[2] and spec.entrypoint[-1] == "/usr/bin/earthly-entrypoint.sh"
    assert "pw" not in " ".join([*spec.entrypoint, *spec.command, *spec.env.values()])


def test_v4_4_proxy_cert_path_mechanism(tmp_path: Path):
    co = _checkout(tmp_path, entrypoint=False)
    (co / "sc.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    spec = _spec(tmp_path, checkout=co, cert_mechanism="proxy-cert-path")
    mount = next(m for m in spec.mounts if m.target == "/usr/local/share/ca-certificates/sc.crt")
    assert mount.read_only
    assert spec.entrypoint is not None and "update-ca-certificates" in spec.entrypoint[2]
