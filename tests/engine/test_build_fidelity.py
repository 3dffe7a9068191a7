"""`build` against the Earthly double at each CanvOS tag: what the real build needs, the tool gives.

Each test would fail against the tool as it was before issue 10 (empty BASE_IMAGE in .arg, no TLS
settings for a remote BuildKit, a fixed Earthly image, Ubuntu Pro as a build arg at every tag, UKI
outputs read as if they had a .sha256, EARTHLY_BUILD_ARGS dropped, proxy credentials in .arg).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from edgeforge_ext.cli import run
from edgeforge_ext.engine import LABEL, WORKDIR_LABEL
from edgeforge_ext.fsutil import sha256_file
from tests.engine.buildkit import REMOTE_BUILDKIT, TOKEN, lowered_thresholds
from tests.engine.double_run import remove_root_owned, run_double

pytestmark = pytest.mark.engine

PRO_TOKEN = "C0ffeePro-Token-7d1e"  # an obvious fake Ubuntu Pro token
PROXY_PASSWORD = "pr0xy-Pa55"


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", TOKEN)
    lowered_thresholds(monkeypatch)


def iso_build(workdir: Path, canvos_url: str, ref: str, *extra: str, k8s: str = "1.30.10") -> list[str]:
    """`build --target iso` at `ref` with the Earthly image the tag's earthly.sh names (no --earthly-image)."""
    return ["--workdir", str(workdir), "build", "--canvos-url", canvos_url, "--ref", ref, "--target", "iso",
            "--buildkit-host", REMOTE_BUILDKIT, "--palette-endpoint", "api.spectrocloud.com",
            "--project-name", "Default", "--k8s-distribution", "k3s", "--k8s-version", k8s,
            "--custom-tag", "fidelity", "--json", *extra]


@contextmanager
def watch_containers(client: Any, workdir: Path) -> Iterator[list[dict[str, Any]]]:
    """What `docker inspect` shows of the work directory's Earthly containers while the build runs."""
    seen: dict[str, dict[str, Any]] = {}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            label = f"{WORKDIR_LABEL}={workdir.resolve()}"
            for c in client.containers.list(all=True, filters={"label": label}, ignore_removed=True):
                seen.setdefault(c.id, c.attrs)
            stop.wait(0.1)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    shown: list[dict[str, Any]] = []
    try:
        yield shown
    finally:
        stop.set()
        thread.join()
        shown.extend(seen.values())


def inspection_checks(report: dict[str, Any]) -> dict[str, str]:
    """The collect step's `iso inspect` checks, by name; every one ok (a warning or failure shows its text)."""
    checks = report["iso"]["inspect"]["checks"]
    assert [c for c in checks if c["status"] != "ok"] == []
    return {c["name"]: c["detail"] for c in checks}


def cleanup(client: Any, image: str, workdir: Path) -> None:
    remove_root_owned(client, image, workdir / "CanvOS")


@pytest.mark.parametrize("ref, k8s, earthly", [
    ("v4.4.12", "1.29.6", "gcr.io/spectro-images-public/earthly/earthly:v0.8.5"),
    ("v4.9.38", "1.30.10", "us-docker.pkg.dev/palette-images/third-party/edge/earthly/earthly:v0.8.15"),
    ("main", "1.30.10", "us-docker.pkg.dev/palette-images/third-party/edge/earthly/earthly:v0.8.15"),
])
def test_iso_builds_at_each_tag_with_the_tags_own_earthly(
    ref, k8s, earthly, docker_client, standin_earthly_image, real_earthly_names, canvos_repo, tmp_path, env, capsys
):
    real_earthly_names()
    workdir = tmp_path / "w"
    try:
        code = run(iso_build(workdir, canvos_repo.url, ref, k8s=k8s))
        captured = capsys.readouterr()
        assert code == 0, captured.err[-3000:]
        report = json.loads(captured.out)
        # The image the tag's earthly.sh pins (here: the double, tagged under that name).
        assert report["earthly"] == {"image": earthly, "image_from": "earthly.sh",
                                     "id": docker_client.images.get(standin_earthly_image).id}
        arg = (workdir / "CanvOS" / ".arg").read_text()
        # No empty value: it would erase the Earthfile's default (BASE_IMAGE is derived that way).
        assert all(not line.endswith("=") for line in arg.splitlines() if line and not line.startswith("#"))
        assert "BASE_IMAGE" not in arg
        iso = Path(report["iso"]["path"])
        assert report["iso"]["sha256"] == sha256_file(iso)
        checks = inspection_checks(report)
        assert checks["user-data"].startswith("/files-iso/config.yaml is the rendered user-data")
        assert "bios-entry" in checks and "uefi-entry" in checks
    finally:
        cleanup(docker_client, standin_earthly_image, workdir)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def everything_shown(workdir: Path, captured: Any, containers: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Where a secret must never be: .arg, the log, the report, stdout/stderr, `docker inspect`."""
    out = workdir / "output"
    return [(".arg", (workdir / "CanvOS" / ".arg").read_text()),
            ("log", (out / "edgeforge-build.log").read_text()),
            ("report", (out / "edgeforge-report.json").read_text()),
            ("stdout", captured.out), ("stderr", captured.err),
            ("docker inspect", json.dumps(containers))]


@pytest.mark.parametrize("ref, how", [("v4.9.38", "build arg in a private .arg"),
                                      ("v4.10.0", "Earthly secret")])
def test_ubuntu_pro_token_reaches_the_step_and_nothing_else(
    ref, how, docker_client, standin_earthly_image, canvos_repo, tmp_path, env, capsys
):
    """v4.9.38 takes UBUNTU_PRO_KEY as a build arg (kept out of the checkout's .arg: --arg-file-path to a
    private file); v4.10.0 takes it as `RUN --secret UBUNTU_PRO_KEY` with UBUNTU_PRO_ATTACH=true."""
    key_file = tmp_path / "pro.token"
    key_file.write_text(PRO_TOKEN + "\n")
    workdir = tmp_path / "w"
    try:
        with watch_containers(docker_client, workdir) as containers:
            code = run(iso_build(workdir, canvos_repo.url, ref, "--earthly-image", standin_earthly_image,
                                 "--ubuntu-pro-key-file", str(key_file)))
        captured = capsys.readouterr()
        assert code == 0, captured.err[-3000:]
        log = (workdir / "output" / "edgeforge-build.log").read_text()
        assert f"(token sha256 {token_hash(PRO_TOKEN)})" in log  # the step got the token ...
        assert containers, "no Earthly container was seen"
        for where, text in everything_shown(workdir, captured, containers):  # ... and nothing else did
            assert PRO_TOKEN not in text, f"the Ubuntu Pro token is in the {where}"
        if ref == "v4.10.0":
            assert "UBUNTU_PRO_ATTACH=true" in (workdir / "CanvOS" / ".arg").read_text()
    finally:
        cleanup(docker_client, standin_earthly_image, workdir)


def test_proxy_credentials_stay_out_of_arg_inspect_and_log(
    docker_client, standin_earthly_image, canvos_repo, tmp_path, env, capsys, monkeypatch
):
    proxy = f"http://builder:{PROXY_PASSWORD}@proxy.edgeforge.test:3128"
    monkeypatch.setenv("EDGEFORGE_BUILD_HTTPS_PROXY", proxy)
    workdir = tmp_path / "w"
    try:
        with watch_containers(docker_client, workdir) as containers:
            code = run(iso_build(workdir, canvos_repo.url, "v4.10.0", "--earthly-image", standin_earthly_image))
        captured = capsys.readouterr()
        assert code == 0, captured.err[-3000:]
        log = (workdir / "output" / "edgeforge-build.log").read_text()
        assert "HTTPS_PROXY=" in log  # Earthly got it (its override-args line), masked in our log
        for where, text in everything_shown(workdir, captured, containers):
            assert PROXY_PASSWORD not in text, f"the proxy password is in the {where}"
        assert "HTTPS_PROXY" not in (workdir / "CanvOS" / ".arg").read_text()
    finally:
        cleanup(docker_client, standin_earthly_image, workdir)


def test_earthly_build_args_from_the_environment_reach_earthly(
    docker_client, standin_earthly_image, canvos_repo, tmp_path, env, capsys, monkeypatch
):
    """EARTHLY_BUILD_ARGS (Earthly's own variable, passed through as earthly.sh does) beats .arg; a key the
    Earthfile does not declare is refused before anything runs."""
    workdir = tmp_path / "w"
    args = iso_build(workdir, canvos_repo.url, "v4.10.0", "--earthly-image", standin_earthly_image)
    monkeypatch.setenv("EARTHLY_BUILD_ARGS", "STANDIN_LOG_LINES=3,NO_SUCH_ARG=1")
    assert run(args) == 5
    err = capsys.readouterr().err
    assert "EARTHLY_BUILD_ARGS NO_SUCH_ARG" in err and "declares no ARG NO_SUCH_ARG" in err
    assert not (workdir / "output" / "edgeforge-build.log").exists()
    monkeypatch.setenv("EARTHLY_BUILD_ARGS", "STANDIN_LOG_LINES=3")
    try:
        code = run(args)
        captured = capsys.readouterr()
        assert code == 0, captured.err[-3000:]
        log = (workdir / "output" / "edgeforge-build.log").read_text()
        assert "standin log line 3" in log and "standin log line 4" not in log
    finally:
        cleanup(docker_client, standin_earthly_image, workdir)


def test_mtls_remote_buildkit_gets_the_client_certificates(
    docker_client, standin_earthly_image, canvos_repo, tmp_path, env, capsys
):
    """--buildkit-tls-*: the files go where Earthly's client reads them (~/.earthly/certs/, config.go
    146-166); the double fails 'could not read ca certificate' when they are missing."""
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("ca.pem", "client.pem", "client-key.pem"):
        (certs / name).write_text(f"-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n")
    workdir = tmp_path / "w"
    try:
        with watch_containers(docker_client, workdir) as containers:
            code = run(iso_build(workdir, canvos_repo.url, "v4.10.0", "--earthly-image", standin_earthly_image,
                                 "--buildkit-tls-ca", str(certs / "ca.pem"),
                                 "--buildkit-tls-cert", str(certs / "client.pem"),
                                 "--buildkit-tls-key", str(certs / "client-key.pem")))
        captured = capsys.readouterr()
        assert code == 0, captured.err[-3000:]
        (env_list,) = {tuple(c["Config"]["Env"]) for c in containers
                       if c["Config"]["Labels"].get(LABEL) == "earthly"}  # not the chown of a non-root run
        global_config = next(e for e in env_list if e.startswith("GLOBAL_CONFIG="))
        assert "tls_enabled: false" not in global_config  # TLS on, with the client's certificates
        assert f"Connecting to {REMOTE_BUILDKIT}..." in \
            (workdir / "output" / "edgeforge-build.log").read_text()
    finally:
        cleanup(docker_client, standin_earthly_image, workdir)


def test_uki_build_needs_the_keys_then_collects_without_a_checksum_file(
    docker_client, standin_earthly_image, canvos_repo, tmp_path, env, capsys
):
    """+build-uki-iso puts user-data at /config.yaml and writes no .sha256 (CanvOS v4.10.0 Earthfile); the
    Secure Boot keys come from `earthly.sh +uki-genkey` on the host."""
    workdir = tmp_path / "w"
    args = iso_build(workdir, canvos_repo.url, "v4.10.0", "--earthly-image", standin_earthly_image, "--uki")
    try:
        assert run(args) == 5  # validation: refused before anything slow runs
        err = capsys.readouterr().err
        assert "Secure Boot keys" in err and "+uki-genkey" in err
        assert not (workdir / "output" / "edgeforge-build.log").exists()  # refused before Earthly ran
        keys = run_double(docker_client, standin_earthly_image, workdir / "CanvOS", ["+uki-genkey"])
        assert keys.code == 0, keys.output
        code = run(args)
        captured = capsys.readouterr()
        assert code == 0, captured.err[-3000:]
        report = json.loads(captured.out)
        iso = Path(report["iso"]["path"])
        assert report["iso"]["sha256"] == sha256_file(iso)  # computed: CanvOS gives none for a UKI ISO
        checks = {c["name"]: c for c in report["iso"]["inspect"]["checks"]}
        assert checks["user-data"]["status"] == "ok" and checks["user-data"]["detail"].startswith("/config.yaml")
        assert checks["uefi-entry"]["status"] == "ok"
        assert checks["bios-entry"]["status"] == "warning"  # a UKI ISO boots with UEFI only
        # Without the build's word for it (no report beside it), iso inspect tells a UKI ISO by its EFI image
        # (systemd-boot's loader/, as AuroraBoot's build-uki makes it)
        alone_iso = tmp_path / "alone" / iso.name
        alone_iso.parent.mkdir()
        shutil.copyfile(iso, alone_iso)
        assert run(["iso", "inspect", "--json", str(alone_iso)]) == 0
        alone = json.loads(capsys.readouterr().out)
        assert alone["uki"] is True and alone["ok"] is True
    finally:
        cleanup(docker_client, standin_earthly_image, workdir)
