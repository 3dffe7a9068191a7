"""The Earthly container: its command line, its spec (image, mounts, env) and running it via engine.

What upstream `earthly.sh` does (palette-edge.md §6.4), done through the Docker SDK so we control
secrets, logs, cleanup and caching: the checkout at /workspace, the Docker socket, analytics off,
`+target` before its build args. Differences on purpose: the BuildKit cache lives in a named,
labelled volume kept between builds (upstream deletes everything each run), and with extra CA
certificates the checkout's own `earthly-entrypoint.sh` (which runs update-ca-certificates and then
execs earthly) is the entrypoint, as upstream's proxy mode does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeforge_ext import engine
from edgeforge_ext.build.plan import workdir_digest
from edgeforge_ext.canvos.earthly_script import CERTS_DIR, PROXY_CERT_PATH
from edgeforge_ext.engine import CACHE_VOLUME_PREFIX, ContainerSpec, Mount
from edgeforge_ext.errors import UsageError
from edgeforge_ext.logrelay import LogRelay
from edgeforge_ext.secrets import Redactor, quoted

WORKSPACE = "/workspace"
DOCKER_SOCKET = "/var/run/docker.sock"
CACHE_VOLUME = CACHE_VOLUME_PREFIX  # "edgeforge-buildkit-cache-<workdir hash>": kept between builds
CACHE_TARGET = "/tmp/earthly"  # where Earthly's embedded BuildKit keeps its state
CA_DIR = "/usr/local/share/ca-certificates"
PROXY_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
IMAGE_HINT = "--earthly-image (earthly.image) chooses another image; it must be pullable or already loaded"
# The user's registry logins, where earthly.sh mounts them (`-v ~/.docker/config.json:/root/.docker/...`).
DOCKER_CONFIG_TARGET = "/root/.docker/config.json"
# Earthly's client looks for its BuildKit TLS files here by default: `certs/ca_cert.pem`,
# `certs/earthly_cert.pem`, `certs/earthly_key.pem` relative to ~/.earthly (Earthly v0.8.15
# config/config.go ~38-48 and ~515-545).
EARTHLY_CERTS = "/root/.earthly/certs"
TLS_FILES = {"ca": "ca_cert.pem", "cert": "earthly_cert.pem", "key": "earthly_key.pem"}
# Files only this build's container sees (0600 on the host, read-only inside): the .arg with secret
# build args, the secrets Earthly reads with --secret-file, the proxy environment with credentials.
PRIVATE_TARGET = "/run/edgeforge"
PRIVATE_ARG = "arg"
PRIVATE_ENV = "env"
PRIVATE_SECRETS = "secrets"
# The Earthly image's ENTRYPOINT (earthly Earthfile v0.8.15 ~464-465).
IMAGE_ENTRYPOINT = "/usr/bin/earthly-entrypoint.sh"
UPDATE_CA = "update-ca-certificates >/dev/null 2>&1"


def earthly_command(target: str, build_args: dict[str, str], *, push: bool = False,
                    secret_files: dict[str, str] | None = None, arg_file: str | None = None) -> list[str]:
    """`[flags] +target --ARG=value ...`: Earthly needs build args AFTER the target (CanvOS 75ac96c).

    `--allow-privileged` is always given, as earthly.sh does: Earthly grants a `RUN --privileged` step
    only with it, in every mode (CanvOS main has such steps). `secret_files` maps an Earthly secret to
    a file path inside the container (`--secret-file NAME=PATH`: the value never enters an argv);
    `arg_file` replaces ./.arg (`--arg-file-path`). Values go in one argv element each, so no quoting
    is needed; none may be a secret (the container's command shows in `docker inspect`).
    """
    name = target.lstrip("+")
    if not name or any(ch.isspace() for ch in name):
        raise UsageError(f"invalid Earthly target {quoted(target)}")
    flags: list[str] = []
    if arg_file:
        flags.append(f"--arg-file-path={arg_file}")
    flags.append("--allow-privileged")
    if push:
        flags.append("--push")
    for secret, path in (secret_files or {}).items():
        flags.extend(["--secret-file", f"{secret}={path}"])
    args = []
    for key, value in build_args.items():
        if not key or "=" in key or key.startswith("-"):
            raise UsageError(f"invalid Earthly build argument name {quoted(key)}")
        args.append(f"--{key}={value}")
    return [*flags, f"+{name}", *args]


def cache_volume(workdir: Path) -> str:
    """One BuildKit cache per work directory: variants of one workdir share it (warm), two builds in
    different work directories never run two BuildKit daemons on one cache."""
    return f"{CACHE_VOLUME}-{workdir_digest(workdir)}"


def container_name(workdir: Path, run_id: str) -> str:
    """Unique per workdir and run, so two builds on one host never clash."""
    digest = workdir_digest(workdir)
    safe = "".join(ch if ch.isalnum() or ch in "_.-" else "-" for ch in run_id)
    return f"edgeforge-earthly-{digest}-{safe}"


def user_certs(checkout: Path) -> list[Path]:
    """Non-hidden files in the checkout's certs/ (the CanvOS v4.5+ way to trust extra CAs)."""
    certs = checkout / "certs"
    if not certs.is_dir():
        return []
    return sorted(p for p in certs.iterdir() if p.is_file() and not p.name.startswith("."))


def docker_config_file(env: dict[str, str] | None = None, home: Path | None = None) -> Path | None:
    """The invoking user's Docker client config (`$DOCKER_CONFIG/config.json`, else
    `~/.docker/config.json`) when it exists: earthly.sh mounts it so Earthly's pulls use the logins."""
    import os

    source = os.environ if env is None else env
    base = Path(source["DOCKER_CONFIG"]) if source.get("DOCKER_CONFIG") else (home or Path.home()) / ".docker"
    path = base.expanduser() / "config.json"
    return path if path.is_file() else None


@dataclass(frozen=True)
class BuildkitTls:
    """Client files for an mTLS remote BuildKit (host paths)."""

    ca: Path
    cert: Path
    key: Path


def global_config(buildkit_host: str | None, tls: BuildkitTls | None) -> str:
    """GLOBAL_CONFIG, which the image's entrypoint writes into Earthly's config. Earthly's client
    speaks TLS to a tcp:// BuildKit unless `tls_enabled: false` (config/config.go ~158, used in
    cmd/earthly/base/init_frontend.go ~36-51); BUILDKIT_TLS_ENABLED is read by the daemon only."""
    if buildkit_host and buildkit_host.startswith("tcp://") and tls is None:
        return "{disable_analytics: true, tls_enabled: false}"
    return "{disable_analytics: true}"


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
    tls: BuildkitTls | None = None,
    docker_config: Path | None = None,
    private_dir: Path | None = None,
    cert_mechanism: str = CERTS_DIR,
    earthly_build_args: str = "",
    buildkit_config: str = "",
) -> ContainerSpec:
    """The Earthly container: checkout at /workspace (working dir), the Docker socket, analytics off.

    With `buildkit_host` Earthly uses that BuildKit and runs unprivileged (NO_BUILDKIT=1); otherwise it
    starts its own BuildKit (privileged) with the cache volume at /tmp/earthly. Secrets reach it only
    as files in `private_dir` (mounted read-only); its environment and command hold none.
    """
    checkout = Path(checkout).resolve()
    env: dict[str, str] = {"GLOBAL_CONFIG": global_config(buildkit_host, tls)}
    for name in PROXY_NAMES:
        value = proxies.get(name) or proxies.get(name.lower())
        if value:
            env[name] = value
            env[name.lower()] = value
    if earthly_build_args:
        env["EARTHLY_BUILD_ARGS"] = earthly_build_args  # earthly.sh passes it through (--env EARTHLY_BUILD_ARGS)
    if buildkit_config and not buildkit_host:
        # Appended to buildkitd.toml by the image's entrypoint, which starts the embedded BuildKit (Earthly's
        # own `buildkit_additional_config` in GLOBAL_CONFIG is ignored there: the entrypoint starts BuildKit
        # itself). The registry mirrors for build.inputs_registry.
        env["EARTHLY_ADDITIONAL_BUILDKIT_CONFIG"] = buildkit_config
    mounts = [
        Mount(DOCKER_SOCKET, DOCKER_SOCKET),
        Mount(str(checkout), WORKSPACE),
    ]
    if docker_config is not None:
        mounts.append(Mount(str(docker_config), DOCKER_CONFIG_TARGET, read_only=True))
    if buildkit_host:
        env["EARTHLY_BUILDKIT_HOST"] = buildkit_host
        env["NO_BUILDKIT"] = "1"
        privileged = False
        if tls is not None:
            for part, name in TLS_FILES.items():
                mounts.append(Mount(str(getattr(tls, part)), f"{EARTHLY_CERTS}/{name}", read_only=True))
    else:
        mounts.append(Mount(cache_volume(workdir), CACHE_TARGET, kind="volume"))
    # Steps before the image's own entrypoint runs; the entrypoint is replaced only when there are any.
    inner = [IMAGE_ENTRYPOINT]
    before: list[str] = []
    if private_dir is not None:
        mounts.append(Mount(str(private_dir), PRIVATE_TARGET, read_only=True))
        if (private_dir / PRIVATE_ENV).is_file():
            # Proxy URLs with credentials: read from the 0600 file, so `docker inspect` never shows them.
            before.append(f"set -a; . {PRIVATE_TARGET}/{PRIVATE_ENV}; set +a")
    if cert_mechanism == CERTS_DIR and user_certs(checkout):
        # CanvOS v4.5+ (earthly.sh build_with_proxy): certs/ at the CA directory and the checkout's own
        # entrypoint, which runs update-ca-certificates before Earthly's.
        mounts.append(Mount(str(checkout / "certs"), CA_DIR, read_only=True))
        if (checkout / "earthly-entrypoint.sh").is_file():
            inner = [f"{WORKSPACE}/earthly-entrypoint.sh"]
        else:
            before.append(UPDATE_CA)
    elif cert_mechanism == PROXY_CERT_PATH and (checkout / "sc.crt").is_file():
        # CanvOS v4.4.x: the proxy CA is /workspace/sc.crt for the Earthfile; Earthly's own BuildKit,
        # which pulls through the same proxy, trusts it too.
        mounts.append(Mount(str(checkout / "sc.crt"), f"{CA_DIR}/sc.crt", read_only=True))
        before.append(UPDATE_CA)
    entrypoint: list[str] | None = None
    if before:
        entrypoint = ["/bin/sh", "-c", "; ".join(before) + '; exec "$0" "$@"', *inner]
    elif inner != [IMAGE_ENTRYPOINT]:
        entrypoint = inner
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
    attached: list[engine.AttachedOutput] = []
    try:
        with log_path.open("a", encoding="utf-8") as sink, \
                engine.managed_container(c, spec, redactor=redactor,
                                         on_created=lambda ctr: attached.append(engine.AttachedOutput(c, ctr))
                                         ) as container:
            relay = LogRelay(redactor=redactor, sink=sink, on_line=on_line, tail_lines=tail_lines)
            for chunk in attached[0].chunks():
                relay.feed(chunk)
            relay.close()
            code = engine.wait_exit(container)
    finally:
        for output in attached:
            output.close()
    return EarthlyResult(code, list(relay.tail), relay.current_target, time.monotonic() - started, relay.lines)


def root_owned_outputs(checkout: Path) -> list[str]:
    """What the Earthly container (root) left in the checkout that this user cannot move: `build/`
    (SAVE ARTIFACT … AS LOCAL ./build/) and any other top-level entry owned by root."""
    names = {"build"} if (checkout / "build").exists() else set()
    for entry in checkout.iterdir():
        try:
            if entry.lstat().st_uid == 0:
                names.add(entry.name)
        except OSError:
            continue
    return sorted(names)


def hand_back_outputs(c: Any, image: str, checkout: Path, workdir: Path, run_id: str,
                      uid: int, gid: int) -> list[str]:
    """chown what Earthly wrote in the checkout to the invoking user, from a container (root there), so a
    non-root member of the docker group can collect it. Returns the entries handed back."""
    from edgeforge_ext.errors import ArtifactError

    checkout = Path(checkout).resolve()
    names = root_owned_outputs(checkout) if uid != 0 else []
    if not names:
        return []
    spec = ContainerSpec(
        image=image, entrypoint=["chown"], command=["-R", f"{uid}:{gid}", *(f"{WORKSPACE}/{n}" for n in names)],
        mounts=[Mount(str(checkout), WORKSPACE)], network_mode="none", role="chown",
        name=container_name(workdir, f"{run_id}-chown"), workdir=str(Path(workdir).resolve()), stop_timeout=2,
    )
    with engine.managed_container(c, spec) as container:
        code = engine.wait_exit(container)
    if code != 0:
        raise ArtifactError(f"could not hand the build outputs in {checkout} back to uid {uid} (chown exited {code})",
                            hint="run the build as root, or chown the files yourself")
    return names
