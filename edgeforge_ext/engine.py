"""The only docker-SDK user: the client, version and privilege probes, containers, log streaming.

`docker` is imported inside functions so `edgeforge-ext --help` never pays for it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from edgeforge_ext.errors import PRIVILEGED_WAYS_OUT, EngineError, RegistryError
from edgeforge_ext.secrets import Redactor, Secret

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
    """Run a privileged no-op container of `image` (which must already be present, nothing is pulled).

    Through managed_container, so the probe container is removed even when the start is refused
    (`containers.run(remove=True)` leaves a "Created" container behind in that case).
    """
    from docker.errors import APIError, DockerException

    if not image_present(c, image):
        return ProbeResult(False, False, f"image {image} is not present locally, so nothing could be run")
    spec = ContainerSpec(image=image, command=[], entrypoint=["true"], privileged=True, network_mode="none",
                         role="probe", stop_timeout=1)
    try:
        with managed_container(c, spec) as ctr:
            code = wait_exit(ctr)
    except EngineError as exc:
        cause = exc.__cause__
        text = _one_line(cause) if cause is not None else exc.message
        if _refused_privileged(text):
            return ProbeResult(True, False, f"the daemon refused a privileged container: {text}")
        return ProbeResult(True, False, f"privileged probe failed: {text}")
    except (APIError, DockerException) as exc:
        return ProbeResult(True, False, f"privileged probe failed: {_one_line(exc)}")
    # It started privileged; a non-zero exit (`true` missing in the image) still proves the privilege.
    return ProbeResult(True, True, "privileged container ran" + (f" (exit {code})" if code else ""))


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc)
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------------
# Containers

WORKDIR_LABEL = "io.edgeforge-ext.workdir"  # which workdir a container belongs to (for `clean`)
CACHE_VOLUME_PREFIX = "edgeforge-buildkit-cache"


@dataclass(frozen=True)
class Mount:
    """A bind mount (host path) or a named volume (created with our label when missing)."""

    source: str
    target: str
    read_only: bool = False
    kind: str = "bind"  # "bind" | "volume"


@dataclass
class ContainerSpec:
    """Everything needed to create one container; no secret may appear in env or command."""

    image: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    working_dir: str | None = None
    privileged: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    network_mode: str | None = None
    entrypoint: list[str] | None = None
    user: str | None = None
    workdir: str = ""  # host workdir, recorded in the WORKDIR_LABEL label
    role: str = "container"  # value of LABEL: "earthly", "probe", ...
    stop_timeout: int = 10

    def all_labels(self) -> dict[str, str]:
        return {**self.labels, LABEL: self.role, WORKDIR_LABEL: self.workdir}

    def leaks(self, redactor: Redactor) -> bool:
        """True when a known secret value appears in the env or the command (inspect would show it)."""
        if not redactor.active:
            return False
        texts = [*self.command, *(self.entrypoint or []), *self.env.keys(), *self.env.values()]
        return any(redactor(t) != t for t in texts)


def ensure_volume(c: Any, name: str, role: str = "buildkit-cache") -> None:
    """Create the named volume with our label when missing (Docker would create it unlabelled)."""
    from docker.errors import NotFound

    try:
        c.volumes.get(name)
    except NotFound:
        c.volumes.create(name=name, labels={LABEL: role})


def ensure_image(c: Any, ref: str, *, what: str = "image", hint: str | None = None) -> None:
    """Make sure `ref` is present locally, pulling it when missing; EngineError when it cannot be had."""
    from docker.errors import APIError, DockerException, ImageNotFound

    if image_present(c, ref):
        return
    repo, tag = _split_ref(ref)
    try:
        c.images.pull(repo, tag=tag)
    except (APIError, ImageNotFound, DockerException) as exc:
        raise EngineError(
            f"the {what} {ref} is not present locally and cannot be pulled: {_one_line(exc)}",
            hint=hint,
        ) from exc


def _create(c: Any, spec: ContainerSpec) -> Any:
    from docker.types import Mount as DockerMount

    for m in spec.mounts:
        if m.kind == "volume":
            ensure_volume(c, m.source)
    mounts = [DockerMount(m.target, m.source, type=m.kind, read_only=m.read_only) for m in spec.mounts]
    return c.containers.create(
        spec.image,
        command=spec.command,
        environment=dict(spec.env),
        mounts=mounts,
        working_dir=spec.working_dir,
        privileged=spec.privileged,
        labels=spec.all_labels(),
        name=spec.name,
        network_mode=spec.network_mode,
        entrypoint=spec.entrypoint,
        user=spec.user,
        detach=True,
        tty=False,
        stdin_open=False,
    )


def _refused_privileged(text: str) -> bool:
    low = text.lower()
    return "caps" in low or "privileged" in low or "operation not permitted" in low


def _remove_quietly(c: Any, container: Any, name: str | None, stop_timeout: int) -> None:
    from docker.errors import APIError, NotFound

    try:
        if container is None:
            if not name:
                return
            container = c.containers.get(name)
        with suppress(NotFound, APIError):
            container.stop(timeout=stop_timeout)
        container.remove(force=True)
    except NotFound:
        pass
    except APIError as exc:
        if exc.status_code != 409:  # 409 Conflict: "removal of container ... is already in progress"
            raise


@contextmanager
def managed_container(c: Any, spec: ContainerSpec, *, redactor: Redactor | None = None,
                      on_created: Callable[[Any], None] | None = None) -> Iterator[Any]:
    """Create and start a container, yield it, and ALWAYS stop and remove it (also on Ctrl-C).

    A privileged container the daemon refuses becomes an EngineError naming privileged containers.
    With `redactor`, a spec that carries a known secret in env/command is refused before creation.
    `on_created(container)` runs between create and start (to attach to its output, as `docker run`).
    """
    from docker.errors import APIError

    if redactor is not None and spec.leaks(redactor):
        raise EngineError("refusing to start a container with a secret in its environment or command "
                          "(docker inspect would show it); this is a bug in edgeforge-ext")
    from docker.errors import ImageNotFound

    container = None
    try:
        try:
            container = _create(c, spec)
        except ImageNotFound as exc:
            raise EngineError(f"the image {spec.image} is not present locally") from exc
        except APIError as exc:
            raise EngineError(f"cannot create a container from {spec.image}: {_one_line(exc)}") from exc
        if on_created is not None:
            on_created(container)
        try:
            container.start()
        except APIError as exc:
            text = _one_line(exc)
            if spec.privileged and _refused_privileged(text):
                raise EngineError(
                    f"the Docker daemon refused to start a privileged container ({text})",
                    hint=PRIVILEGED_WAYS_OUT,
                ) from exc
            raise EngineError(f"cannot start the container from {spec.image}: {text}") from exc
        yield container
    finally:
        # Shield the cleanup from a second Ctrl-C: finish removing, then re-raise it.
        interrupted: BaseException | None = None
        for _attempt in range(2):
            try:
                _remove_quietly(c, container, spec.name, spec.stop_timeout)
                break
            except KeyboardInterrupt as exc:
                interrupted = exc
        if interrupted is not None:
            raise interrupted


class AttachedOutput:
    """The container's stdout+stderr from an attach made before it starts, as `docker run` does.

    Why not `logs?follow=1`: Docker 20.10's follow reader can end before it has read everything the
    container wrote when the container exits under load (seen here: 4 of 25 runs lost up to 2,800 of
    5,000 lines, the error lines included). An attach made before `start` gets every byte."""

    def __init__(self, c: Any, container: Any) -> None:
        # No `logs`: attached before start there is nothing to replay, and a replay read after the start
        # (under load) returns lines the stream also delivers: each line twice.
        params = {"stdout": 1, "stderr": 1, "stream": 1}
        self._sock = c.api.attach_socket(container.id, params=params)

    def chunks(self) -> Iterator[bytes]:
        """Payloads (Docker's 8-byte frame headers removed) until the container's output closes."""
        from edgeforge_ext.logrelay import demux

        sock = self._sock
        read = sock.read if hasattr(sock, "read") else sock.recv

        def reads() -> Iterator[bytes]:
            while True:
                data = read(1 << 16)
                if not data:
                    return
                yield data

        yield from demux(reads())

    def close(self) -> None:
        with suppress(OSError):
            self._sock.close()


def log_chunks(c: Any, container: Any, *, follow: bool = True) -> Iterator[bytes]:
    """The container's stdout+stderr as byte chunks (from its start), until it exits when following.

    Fast path: read the raw HTTP body in large socket reads and decode chunking and Docker's frame
    headers ourselves (one library read per log line is 1.5x slower than `docker logs`). Falls back
    to the SDK's stream when the response is not what we expect.
    """
    from edgeforge_ext.logrelay import dechunk, demux

    api = c.api
    url = f"{api.base_url}/v{api.api_version}/containers/{container.id}/logs"
    params = {"stdout": 1, "stderr": 1, "follow": 1 if follow else 0, "timestamps": 0}
    res = api.get(url, params=params, stream=True, timeout=None)
    try:
        api._raise_for_status(res)
        raw = res.raw
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        if raw.chunked and fp is not None and hasattr(fp, "read1"):
            reads = iter(lambda: fp.read1(1 << 16), b"")
            yield from demux(dechunk(reads))
        else:
            yield from demux(raw.stream(1 << 16))
    finally:
        res.close()


def wait_exit(container: Any) -> int:
    result = container.wait()
    return int(result.get("StatusCode", 1))


# --------------------------------------------------------------------------------------------------
# Images


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: list[str]
    repo_digests: list[str]
    size: int
    created: str


def _split_ref(ref: str) -> tuple[str, str]:
    """("repo", "tag") of "host:port/repo:tag"; the tag defaults to "latest"."""
    name = ref.partition("@")[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:]
    return name, "latest"


def _info(img: Any) -> ImageInfo:
    attrs = img.attrs
    return ImageInfo(
        id=str(img.id),
        tags=list(img.tags),
        repo_digests=list(attrs.get("RepoDigests") or []),
        size=int(attrs.get("Size") or 0),
        created=str(attrs.get("Created", "")),
    )


def image_info(c: Any, ref: str) -> ImageInfo | None:
    from docker.errors import ImageNotFound

    try:
        return _info(c.images.get(ref))
    except ImageNotFound:
        return None


def has_repo_digest(c: Any, image: str, digest: str) -> bool:
    """Whether the daemon records `digest` as a pushed manifest of `image` (an id or a name). A push
    records the digest on the image it sent: when it is not on ours, the name was moved meanwhile."""
    info = image_info(c, image)
    return info is not None and any(d.endswith("@" + digest) for d in info.repo_digests)


def read_image_files(c: Any, image: str, paths: list[str], *, max_bytes: int = 256 << 20) -> dict[str, bytes | None]:
    """The bytes of files in an image's file system (None for those it lacks), read without running it:
    a created, never started container and the daemon's archive API, so nothing of the image executes and
    the image's size does not matter. Symbolic links are followed inside the image (Ubuntu's
    /etc/os-release is one). The container carries our label and is removed whatever happens."""
    import io
    import posixpath
    import tarfile

    from docker.errors import APIError, DockerException, NotFound

    out: dict[str, bytes | None] = {}
    try:
        # An entrypoint that exists nowhere: the container is only created, and an image without a
        # command (most provider images have none) is accepted.
        ctr = c.containers.create(image, entrypoint=["/edgeforge-ext-never-runs"], command=[],
                                  network_disabled=True, labels={LABEL: "read"})
    except (APIError, DockerException) as exc:
        raise EngineError(f"cannot read files of the image {image}: {_one_line(exc)}") from exc
    try:
        for wanted in paths:
            path, data = wanted, None
            for _hop in range(8):  # a chain of links longer than this is not followed
                try:
                    stream, _stat = ctr.get_archive(path)
                except NotFound:
                    break
                buffer = io.BytesIO()
                for chunk in stream:
                    buffer.write(chunk)
                    if buffer.tell() > max_bytes + (1 << 20):
                        raise EngineError(f"{wanted} in the image {image} is larger than {max_bytes >> 20} MiB")
                buffer.seek(0)
                with tarfile.open(fileobj=buffer) as tar:
                    member = tar.next()
                    if member is None:
                        break
                    if member.issym():
                        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
                        continue
                    extracted = tar.extractfile(member) if member.isfile() else None
                    data = extracted.read() if extracted is not None else None
                break
            out[wanted] = data
    except (APIError, DockerException) as exc:
        raise EngineError(f"cannot read files of the image {image}: {_one_line(exc)}") from exc
    finally:
        with suppress(APIError, DockerException):
            ctr.remove(force=True)
    return out


def tag_image(c: Any, src: str, dst: str) -> None:
    from docker.errors import APIError, ImageNotFound

    try:
        img = c.images.get(src)
    except ImageNotFound as exc:
        raise RegistryError(f"image {src} is not in the Docker daemon, so it cannot be tagged {dst}") from exc
    repo, tag = _split_ref(dst)
    try:
        tagged = img.tag(repo, tag=tag)
    except APIError as exc:
        raise RegistryError(f"cannot name {src} {dst}: {_one_line(exc)}") from exc
    if not tagged:
        raise EngineError(f"the Docker daemon did not tag {src} as {dst}")


# Words of the daemon's push errors worth another attempt, e.g. "received unexpected HTTP status: 500 Internal
# Server Error" (docker-registry answers 500 to a storage race under concurrent pushes). Another race of two
# pushes into one repository: docker-registry rewrites a blob's link file in place, and a manifest PUT that
# reads it mid-write finds it empty, "errors: digest invalid manifest blob unknown: blob unknown to registry",
# although the daemon has just pushed that blob (seen in CI: two builds pushing the same names at once). A
# second push finds every blob there and only puts the manifest again.
_TRANSIENT = ("timeout", "timed out", "connection reset", "connection refused", "broken pipe", "eof",
              "internal server error", "bad gateway", "service unavailable", "gateway timeout",
              "503", "502", "504", "429", "too many requests", "temporarily unavailable", "tls handshake",
              "blob unknown to registry")
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def _transient(text: str) -> bool:
    low = text.lower()
    if "unauthorized" in low or "denied" in low or "authentication required" in low:
        return False
    return any(word in low for word in _TRANSIENT)


def push_image(
    c: Any,
    ref: str,
    *,
    username: str | None,
    password: Secret | None,
    on_progress: Callable[[str], None] | None = None,
    retries: int = 3,
    backoff: float = 2.0,
) -> str:
    """Push `ref` (which must be in the daemon) and return the pushed manifest digest ("sha256:...").

    Errors in the push stream become RegistryError; transient ones (timeouts, resets, 5xx, 429)
    are retried `retries` times with exponential backoff. `on_progress` gets one line per layer and
    status change ("3f4a5b6c7d8e: Pushing 12.0/48.3 MB", "3f4a5b6c7d8e: Pushed"). The password goes only into the
    X-Registry-Auth header of the daemon API call, never into argv or a log line.
    """
    from docker.errors import APIError, DockerException, ImageNotFound
    from requests.exceptions import RequestException

    if not image_present(c, ref):
        raise RegistryError(f"image {ref} is not in the Docker daemon, so it cannot be pushed")
    repo, tag = _split_ref(ref)
    registry = repo.split("/", 1)[0] if "/" in repo else "docker.io"
    auth = None
    if username and password is not None:
        # docker-py sends this as JSON (X-Registry-Auth); the daemon logs in with it as UTF-8, like docker login.
        auth = {"username": username, "password": password.reveal(), "serveraddress": registry}
    redact = Redactor([password.for_login(username) if username and password else password])
    attempt = 0
    while True:
        attempt += 1
        try:
            return _push_once(c, ref, repo, tag, auth, on_progress)
        except (_PushStreamError, APIError, ImageNotFound, DockerException, RequestException) as exc:
            text = redact(_one_line(exc))
            if attempt <= retries and _transient(text):
                time.sleep(backoff * 2 ** (attempt - 1))
                continue
            hint = None
            low = text.lower()
            if "unauthorized" in low or "authentication required" in low or "denied" in low:
                hint = "check the registry username and password (or token) for " + registry
            raise RegistryError(f"pushing {ref} failed: {text}", hint=hint) from None


class _PushStreamError(Exception):
    pass


def _push_once(c: Any, ref: str, repo: str, tag: str, auth: dict[str, str] | None,
               on_progress: Callable[[str], None] | None) -> str:
    digest = ""
    last: dict[str, str] = {}  # layer -> last status reported (progress is throttled to changes)
    for msg in c.images.push(repo, tag=tag, stream=True, decode=True, auth_config=auth):
        if not isinstance(msg, dict):
            continue
        if "error" in msg or "errorDetail" in msg:
            detail = msg.get("errorDetail") or {}
            raise _PushStreamError(str(detail.get("message") or msg.get("error")))
        aux = msg.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            digest = str(aux["Digest"])
        status = str(msg.get("status", ""))
        found = _DIGEST.search(status)
        if found and not digest:
            digest = found.group(1)
        layer = str(msg.get("id") or "")
        if on_progress is not None and layer and status and last.get(layer) != status:
            last[layer] = status
            detail = msg.get("progressDetail") or {}
            size = ""
            if detail.get("total"):
                size = f" {int(detail.get('current') or 0) / 1e6:.1f}/{int(detail['total']) / 1e6:.1f} MB"
            on_progress(f"{layer}: {status}{size}")
    if not digest:
        raise _PushStreamError("the daemon reported no digest for the pushed image")
    return digest


# --------------------------------------------------------------------------------------------------
# Cleanup


@dataclass
class CleanSummary:
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "what: why" for things still in use

    def as_dict(self) -> dict[str, list[str]]:
        return {"containers": self.containers, "volumes": self.volumes, "images": self.images,
                "skipped": self.skipped}


IMAGES_LABEL = "io.edgeforge-ext.images"  # the provider image names an Earthly container will save


def other_builds_of(c: Any, refs: list[str], *, since: float, workdir: str) -> list[str]:
    """Work directories whose Earthly containers, running at any time since `since` (epoch seconds),
    were to save one of `refs`: another build that may have replaced one of our images in the daemon.

    Read from the daemon's event log (container events carry the labels), so a build that started and
    ended between our checks is seen too."""
    wanted = set(refs)
    found: list[str] = []
    events = c.events(since=int(since), until=int(time.time()) + 1, decode=True,
                      filters={"type": "container", "label": [f"{LABEL}=earthly"]})
    for event in events:
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        other = attrs.get(WORKDIR_LABEL, "")
        theirs = set(filter(None, str(attrs.get(IMAGES_LABEL, "")).split(",")))
        if other != workdir and theirs & wanted and other not in found:
            found.append(other)
    return found


def image_id(c: Any, ref: str) -> str | None:
    info = image_info(c, ref)
    return info.id if info is not None else None


def untag(c: Any, ref: str) -> None:
    """Remove one name of an image (its other names and its layers stay)."""
    from docker.errors import APIError, ImageNotFound

    with suppress(ImageNotFound, APIError):
        c.api.remove_image(ref, noprune=True)


def managed_containers(c: Any, workdir: str | None = None) -> list[Any]:
    filters = [LABEL] if workdir is None else [LABEL, f"{WORKDIR_LABEL}={workdir}"]
    # ignore_removed: a container that goes between the SDK's list and its inspect of each is not an error
    return list(c.containers.list(all=True, filters={"label": filters}, ignore_removed=True))


def remove_managed(
    c: Any,
    workdir: str | None = None,
    *,
    volumes: bool = True,
    earthly_image: str | None = None,
    volume_prefix: str = CACHE_VOLUME_PREFIX,
) -> CleanSummary:
    """Remove our labelled containers (of one workdir, or all), our BuildKit cache volumes and,
    when named, the Earthly image. Things still in use are reported in `skipped`, not forced."""
    from docker.errors import APIError, ImageNotFound, NotFound

    summary = CleanSummary()
    for ctr in managed_containers(c, workdir):
        try:
            ctr.remove(force=True)
            summary.containers.append(str(ctr.name))
        except NotFound:
            pass
        except APIError as exc:
            summary.skipped.append(f"container {ctr.name}: {_one_line(exc)}")
    if volumes:
        for vol in c.volumes.list(filters={"label": LABEL}):
            if not str(vol.name).startswith(volume_prefix):
                continue
            try:
                vol.remove()
                summary.volumes.append(str(vol.name))
            except NotFound:
                pass
            except APIError as exc:
                summary.skipped.append(f"volume {vol.name}: {_one_line(exc)}")
    if earthly_image:
        try:
            c.images.remove(earthly_image)
            summary.images.append(earthly_image)
        except ImageNotFound:
            pass
        except APIError as exc:
            summary.skipped.append(f"image {earthly_image}: {_one_line(exc)}")
    return summary


def untag_all(c: Any, prefix: str) -> list[str]:
    """Remove every image name starting with `prefix` (names only: an image that still has another name,
    the user's, stays); the names removed."""
    removed: list[str] = []
    for image in c.images.list():
        for tag in image.tags:
            if tag.startswith(prefix):
                untag(c, tag)
                removed.append(tag)
    return removed


# --------------------------------------------------------------------------------------------------
# Image identity without the SDK (the no-op nightly path)


def local_images(refs: list[str]) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """(image id, repo digests) of local images, None for the absent ones.

    A no-op nightly run only needs these few facts: on the local Unix socket they are asked with one
    small HTTP request each, which saves importing the Docker SDK (a third of a second); any other
    daemon address, or any surprise, goes through the Docker SDK as usual."""
    try:
        return {ref: _inspect_on_socket(ref) for ref in refs}
    except (OSError, ValueError, KeyError, TypeError, _Unsupported):
        pass
    c = client()
    try:
        out: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        for ref in refs:
            if not image_present(c, ref):
                out[ref] = (None, ())
                continue
            found = c.images.get(ref)
            out[ref] = (str(found.id), tuple(sorted(found.attrs.get("RepoDigests") or ())))
        return out
    finally:
        c.close()


class _Unsupported(Exception):
    pass


def _inspect_on_socket(ref: str) -> tuple[str | None, tuple[str, ...]]:
    import http.client
    import os
    import socket
    from urllib.parse import quote

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        raise _Unsupported(host)
    path = host[len("unix://"):]

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(path)

    conn = UnixConnection("localhost")
    try:
        conn.request("GET", f"/images/{quote(ref, safe='/:@')}/json")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status == 404:
        return None, ()
    if response.status != 200:
        raise _Unsupported(f"HTTP {response.status}")
    data = json.loads(body)
    return str(data["Id"]), tuple(sorted(data.get("RepoDigests") or ()))
