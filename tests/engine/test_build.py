"""`edgeforge-ext build` end to end: real daemon, real registries with auth, real git, stand-in Earthly."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from edgeforge_ext.cli import run
from edgeforge_ext.engine import LABEL, WORKDIR_LABEL
from tests.engine.buildkit import PASSWORD, TOKEN, build_args, lowered_thresholds


def our_containers(docker_client, workdir: Path | None = None) -> list:
    """Containers edgeforge-ext made (for one work directory, when given: other tests may run beside)."""
    label = f"{WORKDIR_LABEL}={workdir.resolve()}" if workdir is not None else LABEL
    return docker_client.containers.list(all=True, filters={"label": label}, ignore_removed=True)


def manifest_exists(registry, ref: str) -> bool:
    name, tag = ref.split("/", 1)[1].rsplit(":", 1)
    r = requests.head(f"{registry.url}/v2/{name}/manifests/{tag}", auth=registry.auth, timeout=10,
                      headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    return r.status_code == 200


@pytest.fixture
def env_secrets(monkeypatch):
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", PASSWORD)
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", TOKEN)
    lowered_thresholds(monkeypatch)


@pytest.mark.root  # a registry on port 80: binding it needs root
def test_full_build_pushes_where_the_edge_host_pulls(
    docker_client, standin_earthly_image, registry_factory, canvos_repo, tmp_path, env_secrets, capsys
):
    reg = registry_factory(auth=True, port=80)  # origin names without a port stay valid when prefixed
    workdir = tmp_path / "w"
    code = run(build_args(workdir, canvos_repo.url, standin_earthly_image,
                          "--image-registry", "127.0.0.1", "--image-repo", "edge-ubuntu",
                          "--registry", "127.0.0.1/spectro-images", "--registry-username", reg.username,
                          "--insecure-registry", "--push-to", "origin,external", "--json"))
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    report = json.loads(captured.out)
    out = workdir / "output"
    assert report == json.loads((out / "edgeforge-report.json").read_text())
    assert report["status"] == "success"
    assert report["canvos"]["sha"] == canvos_repo.tags["v4.10.0"] and report["canvos"]["pe_version"] == "v4.9.21"
    local = "127.0.0.1/edge-ubuntu:k3s-1.32.3-v4.9.21-nightly"
    external = f"127.0.0.1/spectro-images/{local}"
    (image,) = report["provider_images"]
    assert image["ref"] == local
    assert [p["ref"] for p in image["pushed"]] == [local, external]
    assert all(p["digest"].startswith("sha256:") for p in image["pushed"])
    assert manifest_exists(reg, local) and manifest_exists(reg, external)
    # The ISO: in the output directory, checked, with the user-data inside.
    iso = Path(report["iso"]["path"])
    assert iso.parent == out and iso.name == "palette-edge-installer.iso"
    assert stat.S_IMODE(iso.stat().st_mode) == 0o600  # it holds the registry password and the token
    assert iso.stat().st_size == report["iso"]["size"]
    assert (out / "palette-edge-installer.iso.sha256").read_text().split()[0] == report["iso"]["sha256"]
    assert report["os_pack"]["options"]["system.peVersion"] == "v4.9.21"
    assert "system.uri" in (out / "os-pack.yaml").read_text() or "uri:" in (out / "os-pack.yaml").read_text()
    assert [s["name"] for s in report["steps"]] == ["preflight", "checkout", "render", "validate",
                                                    "registry-check", "earthly", "collect", "push", "report"]
    assert all(s["status"] == "ok" for s in report["steps"])
    # user-data (it holds the password) is removed from the checkout after the build; .arg stays.
    assert not (workdir / "CanvOS" / "user-data").exists()
    assert (workdir / "CanvOS" / ".arg").exists()
    assert our_containers(docker_client, workdir) == []
    # Secrets: not in the log, the report, .arg, or anything printed.
    for text in ((out / "edgeforge-build.log").read_text(), (out / "edgeforge-report.json").read_text(),
                 (workdir / "CanvOS" / ".arg").read_text(), captured.out, captured.err):
        assert PASSWORD not in text and TOKEN not in text
    assert "the ISO" in captured.err  # the one-time note that credentials end up inside the ISO


def test_plan_has_no_side_effects(docker_client, canvos_repo, tmp_path, capsys):
    workdir = tmp_path / "w"
    code = run(["--workdir", str(workdir), "plan", "--canvos-url", canvos_repo.url, "--ref", "latest",
                "--k8s-version", "1.32.3", "--registry", "10.10.254.254:8000/spectro-images",
                "--image-registry", "10.10.254.254", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    plan = json.loads(captured.out)
    assert plan["canvos"]["tag"] == "v4.10.0" and plan["canvos"]["sha"] == canvos_repo.tags["v4.10.0"]
    assert plan["canvos"]["pe_version"] == "v4.9.21"
    assert plan["earthly"]["commands"][0][:3] == ["earthly", "--allow-privileged", "+build-all-images"]
    assert "--PE_VERSION=v4.9.21" in plan["earthly"]["commands"][0]
    assert plan["provider_images"][0]["push"] == [
        "10.10.254.254:8000/spectro-images/10.10.254.254/ubuntu:k3s-1.32.3-v4.9.21-demo"]
    assert plan["iso"] == "palette-edge-installer.iso"
    assert not workdir.exists()


def test_failed_earthly_exits_7_with_the_log_tail(
    docker_client, standin_earthly_image, canvos_repo, tmp_path, env_secrets, capsys
):
    workdir = tmp_path / "w"
    code = run(build_args(workdir, canvos_repo.url, standin_earthly_image, "--no-push", "--json",
                          "--build-arg", "STANDIN_FAIL=1", "--build-arg", "STANDIN_LOG_LINES=200"))
    out, err = capsys.readouterr()
    assert code == 7
    assert "last 50 lines" in err
    report = json.loads((workdir / "output" / "edgeforge-report.json").read_text())
    assert json.loads(out) == report  # --json: the report on stdout on failure too, for the script that ran it
    assert report["status"] == "failed"
    assert {s["name"]: s["status"] for s in report["steps"]}["earthly"] == "failed"
    assert our_containers(docker_client, workdir) == []
    assert not (workdir / "CanvOS" / "user-data").exists()


def test_wrong_password_exits_9_before_any_container(
    docker_client, standin_earthly_image, registry, canvos_repo, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", "not-the-password")
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", TOKEN)
    lowered_thresholds(monkeypatch)
    events_since = int(time.time())
    workdir = tmp_path / "w"
    code = run(build_args(workdir, canvos_repo.url, standin_earthly_image,
                          "--image-registry", "reg.example", "--registry", f"{registry.host}/spectro-images",
                          "--registry-username", registry.username, "--insecure-registry"))
    err = capsys.readouterr().err
    assert code == 9, err
    assert "authentication" in err.lower()
    assert "not-the-password" not in err
    created = docker_client.events(since=events_since, until=int(time.time()) + 1, decode=True,
                                   filters={"type": "container", "event": "create",
                                            "label": f"{WORKDIR_LABEL}={workdir.resolve()}"})
    assert list(created) == []


def test_privileged_default_stops_at_preflight(docker_client, busybox_image, canvos_repo, tmp_path,
                                               env_secrets, capsys):
    code = run(["--workdir", str(tmp_path / "w"), "build", "--canvos-url", canvos_repo.url,
                "--ref", "v4.10.0", "--k8s-version", "1.32.3", "--no-push"])
    err = capsys.readouterr().err
    assert code == 6  # privileged containers refused: a container-engine problem
    assert "privileged" in err and "--buildkit-host" in err
    assert "privileged = false" not in err  # the tool refuses that setting alone: never offered as a way out


def test_privileged_default_without_preflight_is_an_engine_error(
    docker_client, standin_earthly_image, canvos_repo, tmp_path, env_secrets, capsys
):
    workdir = tmp_path / "w"
    code = run(["--workdir", str(workdir), "build", "--canvos-url", canvos_repo.url, "--ref", "v4.10.0",
                "--k8s-version", "1.32.3", "--no-push", "--skip", "preflight", "--earthly-image",
                standin_earthly_image, "--palette-endpoint", "api.spectrocloud.com"])
    err = capsys.readouterr().err
    assert code == 6, err
    assert "privileged" in err and "--buildkit-host" in err
    assert "privileged = false" not in err  # the tool refuses that setting alone: never offered as a way out
    assert our_containers(docker_client, workdir) == []
    assert not (workdir / "CanvOS").exists()  # found before anything was changed


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_and_removes_the_container(signum, docker_client, standin_earthly_image, canvos_repo,
                                                  tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFORGE_")}
    env.update({"EDGEFORGE_EDGE_HOST_TOKEN": TOKEN, "EDGEFORGE_PREFLIGHT_MIN_CPUS": "1",
                "EDGEFORGE_PREFLIGHT_MIN_DISK_GB": "1", "EDGEFORGE_PREFLIGHT_MIN_MEMORY_GB": "1"})
    workdir = tmp_path / "w"
    args = build_args(workdir, canvos_repo.url, standin_earthly_image, "--no-push",
                      "--build-arg", "STANDIN_SLEEP=60")
    proc = subprocess.Popen([sys.executable, "-m", "edgeforge_ext", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not our_containers(docker_client, workdir):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            time.sleep(0.2)
        assert our_containers(docker_client, workdir), "the Earthly container never started"
        time.sleep(1)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert our_containers(docker_client, workdir) == []
    assert not (workdir / "CanvOS" / "build" / "palette-edge-installer.iso").exists()
    assert not (workdir / "output" / "palette-edge-installer.iso").exists()
    report = json.loads((workdir / "output" / "edgeforge-report.json").read_text())
    assert report["status"] == "interrupted"


def test_secrets_never_in_argv_or_inspect(docker_client, standin_earthly_image, canvos_repo, tmp_path):
    """Watch the running container: its argv (Cmd), env and the CLI's own argv hold no secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFORGE_")}
    env.update({"EDGEFORGE_EDGE_HOST_TOKEN": TOKEN, "EDGEFORGE_REGISTRY_PASSWORD": PASSWORD,
                "EDGEFORGE_PREFLIGHT_MIN_CPUS": "1", "EDGEFORGE_PREFLIGHT_MIN_DISK_GB": "1",
                "EDGEFORGE_PREFLIGHT_MIN_MEMORY_GB": "1"})
    workdir = tmp_path / "w"
    args = build_args(workdir, canvos_repo.url, standin_earthly_image, "--no-push", "--skip", "registry-check",
                      "--registry", "127.0.0.1:9/spectro-images", "--registry-username", "builder",
                      "--build-arg", "STANDIN_SLEEP=3", "--build-arg", "STANDIN_SHOW_ENV=1")
    proc = subprocess.Popen([sys.executable, "-m", "edgeforge_ext", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    inspected = []
    outputs = workdir / "CanvOS" / "build"  # where Earthly writes the ISO, which holds the token
    modes = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            for c in our_containers(docker_client, workdir):
                inspected.append(json.dumps(c.attrs))  # the SDK's list inspected each one
                with contextlib.suppress(FileNotFoundError):
                    modes.add(stat.S_IMODE(outputs.stat().st_mode))
            with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
                assert PASSWORD.encode() not in f.read()
            time.sleep(0.2)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert inspected, "never saw the Earthly container"
    assert modes == {0o700}, f"CanvOS/build while Earthly ran: {sorted(map(oct, modes))}"  # nobody else looks in
    for blob in inspected:
        assert PASSWORD not in blob and TOKEN not in blob
    out_dir = workdir / "output"
    report = json.loads((out_dir / "edgeforge-report.json").read_text())
    assert {s["name"]: s["status"] for s in report["steps"]}["push"] == "skipped"  # --no-push says so
    assert "push" in report["skipped"] and "registry-check" in report["skipped"]
    log = (out_dir / "edgeforge-build.log").read_text()
    assert "STANDIN_ENV" in log  # the stand-in printed its environment, so the check below means something
    for text in (log, (out_dir / "edgeforge-report.json").read_text(), out, err):
        assert PASSWORD not in text and TOKEN not in text


def test_push_resumes_after_a_failed_push(
    docker_client, standin_earthly_image, registry_factory, canvos_repo, tmp_path, env_secrets, capsys
):
    reg = registry_factory(auth=True)
    port = reg.port
    reg.process.terminate()
    reg.process.wait(timeout=10)
    workdir = tmp_path / "w"
    args = build_args(workdir, canvos_repo.url, standin_earthly_image, "--image-registry", "edge.example",
                      "--registry", f"127.0.0.1:{port}/spectro-images", "--registry-username", "builder",
                      "--insecure-registry", "--skip", "registry-check")
    assert run(args) == 9
    capsys.readouterr()
    out = workdir / "output"
    report = json.loads((out / "edgeforge-report.json").read_text())
    assert report["status"] == "push-failed"
    assert report["provider_images"][0]["pushed"] == []
    assert (out / "palette-edge-installer.iso").exists()
    # The registry comes back on the same port and storage; `push` finishes the job without rebuilding.
    back = registry_factory(auth=True, port=port)
    code = run(["--workdir", str(workdir), "push", "--registry", f"127.0.0.1:{port}/spectro-images",
                "--registry-username", "builder", "--insecure-registry"])
    assert code == 0, capsys.readouterr().err[-2000:]
    report = json.loads((out / "edgeforge-report.json").read_text())
    assert report["status"] == "success" and report["error"] is None
    assert ("push", "ok") in [(s["name"], s["status"]) for s in report["steps"]]  # the report says it completed
    (pushed,) = report["provider_images"][0]["pushed"]
    assert manifest_exists(back, pushed["ref"])
    assert run(["--workdir", str(workdir), "push"]) == 0  # nothing left: does no work
    assert "nothing to push" in capsys.readouterr().err


def test_verbose_shows_the_plan_and_preflight_before_acting(docker_client, canvos_repo, tmp_path, env_secrets,
                                                            capsys):
    args = build_args(tmp_path / "w", canvos_repo.url, "edgeforge-test/never-run:latest", "--no-push")
    args[args.index("--k8s-version") + 1] = "1.99.1"  # fails validation right after the plan is shown
    assert run(["-v", *args]) == 5
    err = capsys.readouterr().err
    assert "earthly --allow-privileged +build-all-images --PE_VERSION=v4.9.21 --K8S_VERSION=1.99.1" in err
    assert "docker_version" in err  # the preflight table, although every check passed
    assert run(args) == 5
    quiet = capsys.readouterr().err
    assert "docker_version" not in quiet and "earthly +build-all-images" not in quiet


def test_a_private_base_image_uses_the_users_docker_config(docker_client, standin_earthly_image, canvos_repo,
                                                           tmp_path, env_secrets, monkeypatch, capsys):
    """The Earthly double's world has a registry that wants credentials (registry.private.test): as with
    CanvOS's earthly.sh, the user's Docker config must reach Earthly."""
    docker_dir = Path(os.environ["HOME"]) / ".docker"
    docker_dir.mkdir(parents=True, exist_ok=True)
    (docker_dir / "config.json").write_text(json.dumps(
        {"auths": {"registry.private.test": {"auth": base64.b64encode(b"builder:pw").decode()}}}))
    monkeypatch.setenv("EDGEFORGE_BUILD_BASE_IMAGE", "registry.private.test/edge/kairos-ubuntu:22.04-core")
    workdir = tmp_path / "w"
    code = run(build_args(workdir, canvos_repo.url, standin_earthly_image, "--no-push", "--target", "iso"))
    err = capsys.readouterr().err
    assert code == 0, err
    assert our_containers(docker_client, workdir) == []
