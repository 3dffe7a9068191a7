"""The Earthly double follows the real rules: each test runs its image directly and proves one of them.

File:line references are to Earthly v0.8.15 unless said otherwise (see tests/double/*.py).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.double_image import REAL_EARTHLY_IMAGES
from tests.engine.double_run import ARG_FILE, USER_DATA, checkout, remove_root_owned, run_double

pytestmark = pytest.mark.engine


@pytest.fixture
def ws(canvos_repo: Any, tmp_path: Path, docker_client: Any, standin_earthly_image: str) -> Iterator[Path]:
    """A checkout of the fixture at v4.10.0 with an .arg and user-data as render leaves them."""
    path = checkout(canvos_repo, "v4.10.0", tmp_path / "CanvOS")
    yield path
    remove_root_owned(docker_client, standin_earthly_image, path)


def _earthfile(tmp_path: Path, docker_client: Any, image: str, text: str, request: Any) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    (path / "Earthfile").write_text(text)
    request.addfinalizer(lambda: remove_root_owned(docker_client, image, path))
    return path


# --- .arg and overrides -----------------------------------------------------------------------------------


def test_an_empty_override_erases_the_default_and_from_fails(docker_client, standin_earthly_image, ws):
    """variables/collection.go:233-241: the override wins even when empty; CanvOS derives BASE_IMAGE only
    as an ARG default, so `BASE_IMAGE=` in .arg leaves FROM DOCKERFILE with an empty BASE."""
    ok = run_double(docker_client, standin_earthly_image, ws, ["+base-image"])
    assert ok.code == 0, ok.output
    (ws / ".arg").write_text(ARG_FILE + "BASE_IMAGE=\n")
    bad = run_double(docker_client, standin_earthly_image, ws, ["+base-image"])
    assert bad.code == 1
    assert "base name ($BASE) should not be blank" in bad.output
    assert "+base-image *failed* | Error: Earthfile:" in "\n".join(bad.lines)


def test_an_empty_override_also_erases_it_without_arg_scope_and_set(docker_client, standin_earthly_image,
                                                                    canvos_repo, tmp_path):
    """v4.4.12 says plain `VERSION 0.6`: the old declaration path (collection.go:243-265) lets any existing
    value, the override included, beat the default too."""
    path = checkout(canvos_repo, "v4.4.12", tmp_path / "CanvOS", arg=ARG_FILE + "BASE_IMAGE=\n")
    try:
        run = run_double(docker_client, standin_earthly_image, path, ["+base-image"])
    finally:
        remove_root_owned(docker_client, standin_earthly_image, path)
    assert run.code == 1 and "base name ($BASE) should not be blank" in run.output


def test_an_empty_image_name_in_from_is_an_invalid_reference(docker_client, standin_earthly_image, tmp_path,
                                                            request):
    ef = "VERSION 0.6\nARG IMG=alpine:3.20\nt:\n    FROM $IMG\n    RUN true\n"
    path = _earthfile(tmp_path, docker_client, standin_earthly_image, ef, request)
    (path / ".arg").write_text("IMG=\n")
    run = run_double(docker_client, standin_earthly_image, path, ["+t"])
    assert run.code == 1
    assert "Earthfile:4:4 apply FROM : parse normalized named : invalid reference format" in run.output


def test_command_line_beats_arg_file_and_undeclared_overrides_are_ignored(docker_client, standin_earthly_image,
                                                                          tmp_path, request):
    """shared.go:26-38 (command line first); an override of an ARG nobody declares is inactive
    (collection.go:38-40) and silently unused: no error, and invisible to RUN."""
    ef = ("VERSION --arg-scope-and-set --shell-out-anywhere 0.6\nARG A=default\nt:\n    FROM alpine:3.20\n"
          '    RUN echo "A=[$A] B=[$B] C=[$C]"\n')
    path = _earthfile(tmp_path, docker_client, standin_earthly_image, ef, request)
    (path / ".arg").write_text("A=from-arg-file\nB=undeclared\n")
    run = run_double(docker_client, standin_earthly_image, path, ["+t", "--A=from-command-line", "--C=also"],
                     env={"EARTHLY_BUILD_ARGS": "A=from-env"})
    assert run.code == 0, run.output
    assert "+t | A=[from-command-line] B=[] C=[]" in run.lines
    env_only = run_double(docker_client, standin_earthly_image, path, ["+t"], env={"EARTHLY_BUILD_ARGS": "A=from-env"})
    assert "+t | A=[from-env] B=[] C=[]" in env_only.lines  # --build-arg / EARTHLY_BUILD_ARGS beat .arg too


def test_a_named_arg_file_must_exist_the_default_may_not(docker_client, standin_earthly_image, tmp_path, request):
    """build_cmd.go:290-298."""
    path = _earthfile(tmp_path, docker_client, standin_earthly_image, "VERSION 0.6\nt:\n    FROM alpine\n", request)
    assert run_double(docker_client, standin_earthly_image, path, ["+t"]).code == 0
    run = run_double(docker_client, standin_earthly_image, path, ["--arg-file-path", "missing.arg", "+t"])
    assert run.code == 1
    assert "Error: read missing.arg: open missing.arg: no such file or directory" in run.output


# --- the entrypoint and BuildKit ---------------------------------------------------------------------------


def test_unprivileged_without_no_buildkit_exits_1(docker_client, standin_earthly_image, ws):
    """earthly-entrypoint.sh:28-34."""
    run = run_double(docker_client, standin_earthly_image, ws, ["+iso"], remote=None)
    assert run.code == 1
    assert run.output.splitlines()[-2:] == [
        "Container appears to be running unprivileged. Currently, privileged mode is required when buildkit runs "
        "inside the container.",
        "To run this image without buildkit, set the environment variable NO_BUILDKIT=1",
    ]


def test_tls_is_on_by_default_and_needs_the_client_certificates(docker_client, standin_earthly_image, ws):
    """config/config.go:158 and init_frontend.go:36-42; BUILDKIT_TLS_ENABLED is not the client's."""
    run = run_double(docker_client, standin_earthly_image, ws, ["+validate-user-data"], tls=True,
                     env={"BUILDKIT_TLS_ENABLED": "false"})
    assert run.code == 6
    assert ("Error: build new buildkitd client: connect provided buildkit: timeout 1m0s: could not connect to "
            "buildkit: could not read ca certificate: open /root/.earthly/certs/ca_cert.pem: no such file or "
            "directory: buildkitd did not respond (in time)") in run.output
    plain = run_double(docker_client, standin_earthly_image, ws, ["+validate-user-data"], tls=False)
    assert plain.code == 0, plain.output
    assert "buildkitd | Connecting to tcp://buildkit.edgeforge.test:8372..." in plain.lines


def test_tls_works_with_certificates_at_the_configured_paths(docker_client, standin_earthly_image, ws, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("ca_cert.pem", "earthly_cert.pem", "earthly_key.pem"):
        (certs / name).write_text("-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n")
    mounted = run_double(docker_client, standin_earthly_image, ws, ["+validate-user-data"], tls=True,
                         volumes={str(certs): {"bind": "/root/.earthly/certs", "mode": "ro"}})
    assert mounted.code == 0, mounted.output
    absolute = run_double(docker_client, standin_earthly_image, ws, ["+validate-user-data"], tls=True,
                          volumes={str(certs): {"bind": "/etc/bk", "mode": "ro"}},
                          env={"GLOBAL_CONFIG": "{disable_analytics: true, tlsca: /etc/bk/ca_cert.pem, "
                                                "tlscert: /etc/bk/earthly_cert.pem, tlskey: /etc/bk/gone.pem}"})
    assert absolute.code == 6
    assert "could not read certificate/key: open /etc/bk/gone.pem: no such file or directory" in absolute.output


def test_a_loopback_buildkit_host_is_local_for_earthly(docker_client, standin_earthly_image, ws):
    """util/containerutil/shell_shared.go:431-444: tcp://127.0.0.1 is where Earthly starts its own BuildKit."""
    run = run_double(docker_client, standin_earthly_image, ws, ["+iso"], remote="tcp://127.0.0.1:8372")
    assert run.code == 1
    assert "buildkitd | Starting buildkit daemon as a docker container (earthly-buildkitd)..." in run.lines


def test_the_embedded_buildkit_bootstraps_its_certificates(docker_client, standin_earthly_image, ws):
    """earthly-entrypoint.sh:41-71: with CAP_SYS_ADMIN it generates certificates, starts BuildKit with TLS and
    points Earthly at tcp://$(hostname):8372, which Earthly treats as remote."""
    run = run_double(docker_client, standin_earthly_image, ws, ["+validate-user-data"], remote=None, tls=True,
                     cap_add=["SYS_ADMIN"])
    assert run.code == 0, run.output
    assert "bootstrap | Bootstrapping successful." in run.lines
    assert any(line.startswith("buildkitd | Connecting to tcp://") and ":8372..." in line for line in run.lines)
    off = run_double(docker_client, standin_earthly_image, ws, ["+validate-user-data"], remote=None, tls=False,
                     cap_add=["SYS_ADMIN"])
    assert off.code == 6  # the embedded BuildKit always serves TLS (earthly-entrypoint.sh:58)


def test_an_unknown_flag_is_incorrect_usage(docker_client, standin_earthly_image, ws):
    run = run_double(docker_client, standin_earthly_image, ws, ["--K8S_VERSION=1.30.10", "+iso"])
    assert run.code == 1
    assert "Incorrect Usage: flag provided but not defined: -K8S_VERSION" in run.lines


# --- secrets and privileges -----------------------------------------------------------------------------------


def test_secret_file_reaches_run_secret(docker_client, standin_earthly_image, tmp_path, request):
    """shared.go:65-80 (--secret-file) and converter.go:2190-2206 (env var and /run/secrets)."""
    ef = ("VERSION 0.6\nt:\n    FROM alpine\n    RUN --secret TOKEN test \"$TOKEN\" = s3cr3t && "
          "test \"$(cat /run/secrets/TOKEN)\" = s3cr3t && echo secret-ok\n")
    path = _earthfile(tmp_path, docker_client, standin_earthly_image, ef, request)
    (path / "token.txt").write_text("s3cr3t")
    run = run_double(docker_client, standin_earthly_image, path, ["--secret-file", "TOKEN=/workspace/token.txt", "+t"])
    assert run.code == 0, run.output
    assert "+t | secret-ok" in run.lines
    env = run_double(docker_client, standin_earthly_image, path, ["--secret", "TOKEN", "+t"], env={"TOKEN": "s3cr3t"})
    assert env.code == 0, env.output
    unset = run_double(docker_client, standin_earthly_image, path, ["--secret", "TOKEN", "+t"])
    assert unset.code == 1
    assert 'Error: failed to set secret "TOKEN" via --secret flag without a value' in unset.output
    twice = run_double(docker_client, standin_earthly_image, path,
                       ["--secret", "TOKEN=a", "--secret-file", "TOKEN=/workspace/token.txt", "+t"])
    assert twice.code == 1 and 'failed to set secret "TOKEN" via --secret-file flag' in twice.output


def test_a_missing_secret_fails_the_run(docker_client, standin_earthly_image, ws):
    """v4.10.0 +base-image: UBUNTU_PRO_ATTACH=true runs `RUN --secret UBUNTU_PRO_KEY`."""
    run = run_double(docker_client, standin_earthly_image, ws, ["+base-image", "--UBUNTU_PRO_ATTACH=true"])
    assert run.code == 1
    assert 'failed: unable to lookup secret "UBUNTU_PRO_KEY": not found' in run.output
    key = run_double(docker_client, standin_earthly_image, ws,
                     ["--secret", "UBUNTU_PRO_KEY", "+base-image", "--UBUNTU_PRO_ATTACH=true"],
                     env={"UBUNTU_PRO_KEY": "C0ffee"})
    assert key.code == 0, key.output
    assert "C0ffee" not in key.output


def test_run_privileged_needs_allow_privileged(docker_client, standin_earthly_image, canvos_repo, tmp_path):
    """interpreter.go:704-706; the main branch's AMD GPU step is `RUN --privileged`."""
    path = checkout(canvos_repo, "main", tmp_path / "CanvOS",
                    arg=ARG_FILE + "INSTALL_AMD_GPU_DRIVERS=true\nAMDGPU_DRIVER_SOURCE=inbox\n")
    try:
        denied = run_double(docker_client, standin_earthly_image, path, ["+base-image"])
        allowed = run_double(docker_client, standin_earthly_image, path, ["--allow-privileged", "+base-image"])
    finally:
        remove_root_owned(docker_client, standin_earthly_image, path)
    assert denied.code == 1
    assert ("Permission denied: unwilling to run privileged command; did you reference a remote Earthfile without "
            "the --allow-privileged flag?") in denied.output
    assert allowed.code == 0, allowed.output


# --- outputs ---------------------------------------------------------------------------------------------------


def test_outputs_are_root_owned_and_only_after_success(docker_client, standin_earthly_image, ws):
    """The real Earthly runs as root in its image: SAVE ARTIFACT ... AS LOCAL writes root-owned files
    (builder/builder.go:655-817, only once the build has succeeded)."""
    run = run_double(docker_client, standin_earthly_image, ws, ["+iso"])
    assert run.code == 0, run.output
    iso = ws / "build" / "palette-edge-installer.iso"
    for path in (ws / "build", iso, iso.with_name(iso.name + ".sha256")):
        assert path.stat().st_uid == 0, path
    if os.geteuid() != 0:  # scripts/test's non-root pass: what a docker-group user meets
        assert not os.access(ws / "build", os.W_OK)  # cannot move or delete the ISO
    assert "Artifact +iso/palette-edge-installer.iso output as ./build/palette-edge-installer.iso" in run.lines
    remove_root_owned(docker_client, standin_earthly_image, ws)
    failed = run_double(docker_client, standin_earthly_image, ws, ["+iso", "--STANDIN_FAIL=1"])
    assert failed.code == 1 and not (ws / "build").exists()


def test_ci_outputs_nothing_locally(docker_client, standin_earthly_image, ws):
    """build_cmd.go:132-139: --ci implies --no-output."""
    run = run_double(docker_client, standin_earthly_image, ws, ["--ci", "+iso"])
    assert run.code == 0, run.output
    assert not (ws / "build").exists()
    assert "Local Output Summary 🎁 (disabled)" in run.lines


def test_a_private_base_image_needs_the_docker_config(docker_client, standin_earthly_image, tmp_path, request):
    """A registry that wants credentials: Earthly reads them from /root/.docker/config.json (earthly.sh mounts
    ~/.docker/config.json there)."""
    ef = "VERSION 0.6\nt:\n    FROM registry.private.test/edge/base:1.0\n    RUN echo pulled\n"
    path = _earthfile(tmp_path, docker_client, standin_earthly_image, ef, request)
    run = run_double(docker_client, standin_earthly_image, path, ["+t"])
    assert run.code == 1
    assert ("resolve image config for registry.private.test/edge/base:1.0: unexpected status from HEAD request to "
            "https://registry.private.test/v2/edge/base/manifests/1.0: 401 Unauthorized") in run.output
    cfg = tmp_path / "docker-config.json"
    cfg.write_text(json.dumps({"auths": {"registry.private.test": {
        "auth": base64.b64encode(b"builder:pw").decode()}}}))
    authed = run_double(docker_client, standin_earthly_image, path, ["+t"],
                        volumes={str(cfg): {"bind": "/root/.docker/config.json", "mode": "ro"}})
    assert authed.code == 0, authed.output
    assert "+t | pulled" in authed.lines


def test_provider_images_loop_over_k8s_version_json_when_k8s_version_is_empty(docker_client, standin_earthly_image,
                                                                                canvos_repo, tmp_path):
    registry = f"127.0.0.1:5999/efx-loop-{os.getpid()}"
    path = checkout(canvos_repo, "v4.9.38", tmp_path / "CanvOS",
                    arg=ARG_FILE.replace("K8S_VERSION=1.30.10\n", "K8S_VERSION=\n")
                    .replace("IMAGE_REGISTRY=127.0.0.1:5999/efx-double", f"IMAGE_REGISTRY={registry}"))
    try:
        run = run_double(docker_client, standin_earthly_image, path, ["+build-provider-images", "--PE_VERSION=v4.9.38"])
        assert run.code == 0, run.output
        tags = sorted(t for img in docker_client.images.list(filters={"reference": f"{registry}/*"}) for t in img.tags)
        assert tags == [f"{registry}/ubuntu:k3s-{v}-v4.9.38-demo" for v in ("1.29.14", "1.30.10", "1.31.6")]
    finally:
        for img in docker_client.images.list(filters={"reference": f"{registry}/*"}):
            for tag in img.tags:
                docker_client.images.remove(tag, force=True)
        remove_root_owned(docker_client, standin_earthly_image, path)


# --- the image ---------------------------------------------------------------------------------------------------


def test_the_double_answers_to_the_names_canvos_pins(docker_client, real_earthly_names, tmp_path):
    for name in real_earthly_names():
        assert name in REAL_EARTHLY_IMAGES
        out = docker_client.containers.run(name, ["--version"], environment={"NO_BUILDKIT": "1"}, remove=True,
                                           working_dir="/workspace")
        assert b"earthly version v0.8.15" in out


def test_user_data_lands_where_canvos_puts_it(docker_client, standin_earthly_image, ws):
    run = run_double(docker_client, standin_earthly_image, ws, ["+iso"])
    assert run.code == 0, run.output
    from edgeforge_ext.iso.verify import verify_iso

    check = verify_iso(ws / "build" / "palette-edge-installer.iso", USER_DATA)
    assert check.user_data_path == "/files-iso/config.yaml"  # CanvOS +build-iso: /overlay/files-iso/config.yaml
