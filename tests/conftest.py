"""Shared fixtures: a clean environment for every test, and the real engines (Docker, a registry).

Under CI=true a missing daemon or registry FAILS the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# A shell without job control (a script's `cmd &`, nohup) starts its background jobs with SIGINT ignored, and
# an ignored signal stays ignored across exec: every build the tests start would then ignore the Ctrl-C the
# signal tests send. A user's Ctrl-C reaches a foreground process, so the tests run as one: a handled signal
# is reset to its default in the children.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Fixture plugins: the CanvOS-shaped git repositories, the Earthly double image, the bootable ISOs.
pytest_plugins = ["tests.canvos_fixture", "tests.double_image", "tests.iso_fixtures"]


def require(condition: bool, reason: str) -> None:
    """Skip on a laptop without the engine; fail in CI, where a green run must mean it ran."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required engine missing under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No EDGEFORGE_* or GitHub Actions variables leak in; HOME is a fresh temp dir; no known secrets."""
    for name in list(os.environ):
        if name.startswith("EDGEFORGE_") or name.startswith("GITHUB_"):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    from edgeforge_ext import secrets

    secrets.known.clear()  # the process-wide secrets one test loaded never mask another test's output
    from edgeforge_ext import console

    console.forget_warnings()  # a warning one test printed is printed again in the next


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A Docker SDK client against the real daemon (honours DOCKER_HOST)."""
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # any failure means "no daemon"
        require(False, f"no Docker daemon reachable: {exc}")
        return
    yield client
    client.close()


@dataclass
class Registry:
    """A real `docker-registry serve` on 127.0.0.1."""

    host: str  # "127.0.0.1:PORT" (or "127.0.0.1" on port 80)
    port: int
    username: str | None
    password: str | None
    storage: Path
    process: subprocess.Popen[bytes]
    ca_file: Path | None = None  # the self-signed certificate it serves HTTPS with, when it does

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://{self.host}"

    @property
    def auth(self) -> tuple[str, str] | None:
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)


def _self_signed(base: Path, address: str) -> tuple[Path, Path]:
    """A certificate for `address` (and localhost) and its key, made with openssl."""
    require(shutil.which("openssl") is not None, "openssl is not installed")
    cert, key = base / "cert.pem", base / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=edgeforge-test-registry", "-keyout", str(key),
                    "-out", str(cert), "-addext", f"subjectAltName=IP:{address},DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def _start_registry(base: Path, port: int, username: str | None, password: str | None,
                    address: str = "127.0.0.1", tls: bool = False) -> Registry:
    require(shutil.which("docker-registry") is not None, "docker-registry is not installed")
    base.mkdir(parents=True, exist_ok=True)
    storage = base / "storage"
    storage.mkdir(exist_ok=True)
    auth = ""
    if username is not None and password is not None:
        require(shutil.which("htpasswd") is not None, "htpasswd (apache2-utils) is not installed")
        htpasswd = base / "htpasswd"
        subprocess.run(["htpasswd", "-Bbc", str(htpasswd), username, password], check=True,
                       capture_output=True)
        auth = f"auth:\n  htpasswd:\n    realm: edgeforge-test\n    path: {htpasswd}\n"
    cert: Path | None = None
    https = ""
    if tls:
        cert, key = _self_signed(base, address)
        https = f"  tls:\n    certificate: {cert}\n    key: {key}\n"
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}:{port}\n"
        + https
        + auth
    )
    log = (base / "registry.log").open("wb")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    if not wait_for_port(address, port):
        proc.kill()
        require(False, f"docker-registry did not start on port {port}: {(base / 'registry.log').read_text()}")
    host = address if port == 80 else f"{address}:{port}"
    return Registry(host, port, username, password, storage, proc, cert)


def _stop_registry(reg: Registry) -> None:
    reg.process.terminate()
    try:
        reg.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        reg.process.kill()


@pytest.fixture
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Registry]]:
    """Start extra registries: registry_factory(auth=True, port=None, address="127.0.0.1", tls=False)."""
    started: list[Registry] = []

    def start(auth: bool = True, port: int | None = None, username: str = "builder",
              password: str = "s3cret-Pa55:word#1", address: str = "127.0.0.1", tls: bool = False) -> Registry:
        base = tmp_path_factory.mktemp("registry")
        reg = _start_registry(base, port or free_port(), username if auth else None,
                              password if auth else None, address, tls)
        started.append(reg)
        return reg

    yield start
    for reg in started:
        _stop_registry(reg)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One registry with htpasswd auth for the whole session."""
    reg = _start_registry(tmp_path_factory.mktemp("registry"), free_port(), "builder", "s3cret-Pa55:word#1")
    yield reg
    _stop_registry(reg)


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny image built from local files (no pulls possible here): scratch + busybox-static."""
    busybox = shutil.which("busybox")
    require(busybox is not None, "busybox-static is not installed")
    import io
    import tarfile

    ctx = io.BytesIO()
    with tarfile.open(fileobj=ctx, mode="w") as tar:
        tar.add(str(busybox), arcname="busybox")
        dockerfile = (b'FROM scratch\nCOPY busybox /bin/busybox\n'
                      b'RUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["/bin/sh"]\n')
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    ctx.seek(0)
    tag = "edgeforge-test/busybox:latest"
    docker_client.images.build(fileobj=ctx, custom_context=True, tag=tag, rm=True)
    return tag


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Any]:
    """tests.configs.make_config bound to this test's tmp_path: make_config(env=..., toml=..., **flags)."""
    from functools import partial

    from tests.configs import make_config as make

    return partial(make, tmp_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under scripts/test as root, the engine tests run in a pass of their own as a non-root member of the
    `docker` group (how users build); the root pass keeps only those marked `root`."""
    if os.environ.get("EF_ENGINE_TESTS") != "root-only":
        return
    engine = Path(__file__).parent / "engine"
    keep, moved = [], []
    for item in items:
        as_user = item.path.is_relative_to(engine) and item.get_closest_marker("root") is None
        (moved if as_user else keep).append(item)
    if moved:
        config.hook.pytest_deselected(items=moved)
        items[:] = keep
