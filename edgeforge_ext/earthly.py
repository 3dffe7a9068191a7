"""The Earthly container: its command line, its spec (image, mounts, env) and running it via engine.

What upstream `earthly.sh` does (palette-edge.md §6.4), done through the Docker SDK so we control
secrets, logs, cleanup and caching: the checkout at /workspace, the Docker socket, analytics off,
`+target` before its build args. Differences on purpose: the BuildKit cache lives in a named,
labelled volume kept between builds (upstream deletes everything each run), and with extra CA
certificates the checkout's own `earthly-entrypoint.sh` (which runs update-ca-certificates and then
execs earthly) is the entrypoint, as upstream's proxy mode does.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeforge_ext import engine
from edgeforge_ext.engine import CACHE_VOLUME_PREFIX, ContainerSpec, Mount
from edgeforge_ext.errors import UsageError
from edgeforge_ext.logrelay import LogRelay
from edgeforge_ext.secrets import Redactor

WORKSPACE = "/workspace"
DOCKER_SOCKET = "/var/run/docker.sock"
CACHE_VOLUME = CACHE_VOLUME_PREFIX  # "edgeforge-buildkit-cache-<workdir hash>": kept between builds
CACHE_TARGET = "/tmp/earthly"  # where Earthly's embedded BuildKit keeps its state
CA_DIR = "/usr/local/share/ca-certificates"
PROXY_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
IMAGE_HINT = "--earthly-image (earthly.image) chooses another image; it must be pullable or already loaded"


def earthly_command(target: str, build_args: dict[str, str], *, privileged: bool = True,
                    push: bool = False) -> list[str]:
    """`[flags] +target --ARG=value ...`: Earthly needs build args AFTER the target (CanvOS 75ac96c).

    Values go in one argv element each, so no quoting is needed; none may be a secret (the
    container's command shows in `docker inspect`).
    """
    name = target.lstrip("+")
    if not name or any(ch.isspace() for ch in name):
        raise UsageError(f"invalid Earthly target {target!r}")
    flags: list[str] = []
    if privileged:
        flags.append("--allow-privileged")
    if push:
        flags.append("--push")
    args = []
    for key, value in build_args.items():
        if not key or "=" in key or key.startswith("-"):
            raise UsageError(f"invalid Earthly build argument name {key!r}")
        args.append(f"--{key}={value}")
    return [*flags, f"+{name}", *args]


def _workdir_digest(workdir: Path) -> str:
    return hashlib.sha256(str(Path(workdir).resolve()).encode()).hexdigest()[:10]


def cache_volume(workdir: Path) -> str:
    """One BuildKit cache per work directory: variants of one workdir share it (warm), two builds in
    different work directories never run two BuildKit daemons on one cache."""
    return f"{CACHE_VOLUME}-{_workdir_digest(workdir)}"


def container_name(workdir: Path, run_id: str) -> str:
    """Unique per workdir and run, so two builds on one host never clash."""
    digest = _workdir_digest(workdir)
    safe = "".join(ch if ch.isalnum() or ch in "_.-" else "-" for ch in run_id)
    return f"edgeforge-earthly-{digest}-{safe}"


def _has_certs(checkout: Path) -> bool:
    certs = checkout / "certs"
    return certs.is_dir() and any(p.is_file() and not p.name.startswith(".") for p in certs.iterdir())


def earthly_spec(
    *,
    image: str,
    checkout: Path,
    command: list[str],
    privileged: bool,
    buildkit_host: str | None,
    proxies: dict[str, str],
    workdir: Path,
    run_id: str,
) -> ContainerSpec:
    """The Earthly container: checkout at /workspace (working dir), the Docker socket, analytics off.

    With `buildkit_host` Earthly uses that BuildKit and runs unprivileged (NO_BUILDKIT=1); otherwise it
    starts its own BuildKit (privileged unless `privileged` is False) with the cache volume at
    /tmp/earthly.
    """
    checkout = Path(checkout).resolve()
    env: dict[str, str] = {"GLOBAL_CONFIG": "{disable_analytics: true}"}
    for name in PROXY_NAMES:
        value = proxies.get(name) or proxies.get(name.lower())
        if value:
            env[name] = value
            env[name.lower()] = value
    mounts = [
        Mount(DOCKER_SOCKET, DOCKER_SOCKET),
        Mount(str(checkout), WORKSPACE),
    ]
    if buildkit_host:
        env["EARTHLY_BUILDKIT_HOST"] = buildkit_host
        env["NO_BUILDKIT"] = "1"
        if buildkit_host.startswith("tcp://"):
            env["BUILDKIT_TLS_ENABLED"] = "false"  # as upstream's proxy mode: plain tcp to BuildKit
        privileged = False
    else:
        mounts.append(Mount(cache_volume(workdir), CACHE_TARGET, kind="volume"))
    entrypoint = None
    if _has_certs(checkout):
        mounts.append(Mount(str(checkout / "certs"), CA_DIR, read_only=True))
        if (checkout / "earthly-entrypoint.sh").is_file():
            entrypoint = [f"{WORKSPACE}/earthly-entrypoint.sh"]
    return ContainerSpec(
        image=image,
        command=list(command),
        env=env,
        mounts=mounts,
        working_dir=WORKSPACE,
        privileged=privileged,
        name=container_name(workdir, run_id),
        entrypoint=entrypoint,
        workdir=str(Path(workdir).resolve()),
        role="earthly",
    )


@dataclass(frozen=True)
class EarthlyResult:
    exit_code: int
    tail: list[str]
    current_target: str | None
    seconds: float
    lines: int = 0


def run_earthly(
    c: Any,
    spec: ContainerSpec,
    *,
    log_path: Path,
    redactor: Redactor,
    on_line: Callable[[str], None] | None,
    tail_lines: int = 50,
) -> EarthlyResult:
    """Run Earthly, relay its scrubbed log to `on_line` and `log_path` (appended), return the result.

    The container is removed whatever happens (also on Ctrl-C in `on_line`). A missing image is
    pulled; EngineError (exit 6) when that fails or when the daemon refuses a privileged container.
    """
    engine.ensure_image(c, spec.image, what="Earthly image", hint=IMAGE_HINT)
    started = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as sink, \
            engine.managed_container(c, spec, redactor=redactor) as container:
        relay = LogRelay(redactor=redactor, sink=sink, on_line=on_line, tail_lines=tail_lines)
        for chunk in engine.log_chunks(c, container, follow=True):
            relay.feed(chunk)
        relay.close()
        code = engine.wait_exit(container)
    return EarthlyResult(code, list(relay.tail), relay.current_target, time.monotonic() - started, relay.lines)
