"""The only docker-SDK user: the client, version and privilege probes, containers, log streaming.

`docker` is imported inside functions so `edgeforge-ext --help` never pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeforge_ext.errors import EngineError

MIN_SERVER_VERSION = (18, 9)
MIN_API_VERSION = "1.39"
LABEL = "io.edgeforge-ext.managed"  # every container/volume we create carries it, so `clean` finds orphans


@dataclass(frozen=True)
class DaemonInfo:
    server_version: str
    api_version: str
    client_api_version: str
    docker_root_dir: str
    os_type: str
    architecture: str

    @property
    def server_tuple(self) -> tuple[int, ...]:
        return _version_tuple(self.server_version)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("+")[0].split("-")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def client(timeout: int = 60) -> Any:
    """A Docker client from the environment (DOCKER_HOST honoured); EngineError when unreachable."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:  # pragma: no cover - a broken install
        raise EngineError("the docker Python package is missing; reinstall edgeforge-ext") from exc
    try:
        c = docker.from_env(timeout=timeout)
        c.ping()
    except DockerException as exc:
        raise EngineError(
            f"cannot reach the Docker daemon: {_one_line(exc)}",
            hint="start Docker (systemctl start docker) or set DOCKER_HOST; run as root or a member "
            "of the docker group",
        ) from exc
    return c


def daemon_info(c: Any) -> DaemonInfo:
    version = c.version()
    info = c.info()
    return DaemonInfo(
        server_version=str(version.get("Version", "0")),
        api_version=str(version.get("ApiVersion", "0")),
        client_api_version=str(c.api.api_version),
        docker_root_dir=str(info.get("DockerRootDir", "/var/lib/docker")),
        os_type=str(info.get("OSType", "linux")),
        architecture=str(info.get("Architecture", "")),
    )


def server_too_old(info: DaemonInfo) -> bool:
    return info.server_tuple[:2] < MIN_SERVER_VERSION


def image_present(c: Any, ref: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        c.images.get(ref)
        return True
    except ImageNotFound:
        return False


@dataclass(frozen=True)
class ProbeResult:
    ran: bool  # False when the probe itself could not run (no image, no daemon)
    allowed: bool
    detail: str


def probe_privileged(c: Any, image: str) -> ProbeResult:
    """Run a privileged no-op container of `image` (which must already be present, nothing is pulled)."""
    from docker.errors import APIError, ContainerError, ImageNotFound

    if not image_present(c, image):
        return ProbeResult(False, False, f"image {image} is not present locally, so nothing could be run")
    try:
        c.containers.run(image, entrypoint=["true"], privileged=True, remove=True,
                         labels={LABEL: "probe"}, network_mode="none")
    except ContainerError as exc:
        # It started privileged; `true` missing in the image still proves the privilege works.
        return ProbeResult(True, True, f"privileged container started (exit {exc.exit_status})")
    except (APIError, ImageNotFound) as exc:
        text = _one_line(exc)
        if "caps" in text or "privileged" in text.lower() or "operation not permitted" in text:
            return ProbeResult(True, False, f"the daemon refused a privileged container: {text}")
        return ProbeResult(True, False, f"privileged probe failed: {text}")
    return ProbeResult(True, True, "privileged container ran")


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc)
    return " ".join(text.split())
