"""The pod a shard builds in, for the Kubernetes Job and the Argo Workflow alike.

The build talks to a Docker daemon that bind-mounts paths of the pod into the Earthly container (the
checkout, the 0700 secret files under $TMPDIR), so the daemon must see them at the same paths:
- `dind`: a privileged Docker-in-Docker sidecar sharing the `work` volume at the same path; each pod
  has its own daemon, nothing is shared between shards.
- `host`: the node's daemon through its socket; then the work volume is a hostPath at the same path on
  the node, and each shard slot gets its own work directory there: two pods on one node never share a
  checkout, a BuildKit cache or image names (the same slot later finds its cache warm).
Outputs go to a PersistentVolumeClaim every pod mounts (ReadWriteMany), where `gather` reads them.
Secrets come from a Kubernetes Secret as environment variables, never from the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeforge_ext.errors import UsageError

BASE = "/var/lib/edgeforge"
WORK = f"{BASE}/work"
OUTPUT = f"{BASE}/output"
CONF = "/etc/edgeforge"
DIND_PORT = 2375
DOCKER_MODES = ("dind", "host")
# A current Docker-in-Docker image; --dind-image chooses another (a mirror).
DIND_IMAGE = "docker:28-dind"
SECRET_KEYS = {"EDGEFORGE_REGISTRY_PASSWORD": "registry-password", "EDGEFORGE_EDGE_HOST_TOKEN": "edge-host-token",
               "EDGEFORGE_UBUNTU_PRO_KEY": "ubuntu-pro-key"}
# Waits for the sidecar's daemon (Argo starts sidecars beside the main container, not before it).
WAIT_FOR_DIND = ("python3 -c 'import socket,sys,time\n"
                 "for _ in range(180):\n"
                 "    try:\n"
                 f"        socket.create_connection((\"127.0.0.1\", {DIND_PORT}), 1).close(); sys.exit(0)\n"
                 "    except OSError: time.sleep(1)\n"
                 "sys.exit(\"no Docker daemon in the dind sidecar after 180 s\")'")


@dataclass(frozen=True)
class PodOptions:
    image: str = "edgeforge-ext:latest"  # an image with edgeforge-ext, git and python3 (README: Shards)
    docker: str = "dind"
    secret: str = "edgeforge-secrets"
    output_claim: str = "edgeforge-output"
    name: str = "edgeforge-shards"
    parallelism: int | None = None
    dind_image: str = DIND_IMAGE

    def check(self) -> None:
        if self.docker not in DOCKER_MODES:
            raise UsageError(f"--docker takes {' or '.join(DOCKER_MODES)}, not {self.docker!r}")
        if self.parallelism is not None and self.parallelism < 1:
            raise UsageError("--parallelism must be at least 1")


def env(options: PodOptions, slot: str, has_config: bool) -> list[dict[str, Any]]:
    """The build container's environment. `slot` is an env var (defined first) naming the work directory
    of this pod on a shared node (host mode)."""
    work = f"{WORK}/$({slot})" if options.docker == "host" else WORK
    out: list[dict[str, Any]] = [
        {"name": "EDGEFORGE_WORKDIR", "value": work},
        {"name": "TMPDIR", "value": f"{work}/tmp"},  # the secret files the daemon mounts live here
        {"name": "EDGEFORGE_OUTPUT_DIR", "value": OUTPUT},
    ]
    if has_config:
        out.append({"name": "EDGEFORGE_CONFIG", "value": f"{CONF}/edgeforge.toml"})
    if options.docker == "dind":
        out.append({"name": "DOCKER_HOST", "value": f"tcp://127.0.0.1:{DIND_PORT}"})
    out += [{"name": name, "valueFrom": {"secretKeyRef": {"name": options.secret, "key": key, "optional": True}}}
            for name, key in SECRET_KEYS.items()]
    return out


def work_mounts() -> list[dict[str, Any]]:
    return [{"name": "work", "mountPath": WORK}, {"name": "output", "mountPath": OUTPUT}]


def volumes(options: PodOptions) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": "output", "persistentVolumeClaim": {"claimName": options.output_claim}}]
    if options.docker == "host":
        out += [{"name": "work", "hostPath": {"path": WORK, "type": "DirectoryOrCreate"}},
                {"name": "docker-socket", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}]
    else:
        out += [{"name": "work", "emptyDir": {}}, {"name": "docker-storage", "emptyDir": {}}]
    return out


def docker_mounts(options: PodOptions) -> list[dict[str, Any]]:
    """What the build container mounts besides work and output to reach its daemon."""
    return [{"name": "docker-socket", "mountPath": "/var/run/docker.sock"}] if options.docker == "host" else []


def dind_container(options: PodOptions) -> dict[str, Any]:
    """The Docker-in-Docker daemon: privileged (it runs the privileged Earthly container), plain TCP on
    the pod's loopback only, the work volume at the path the build sees."""
    return {
        "name": "dind",
        "image": options.dind_image,
        "securityContext": {"privileged": True},
        "env": [{"name": "DOCKER_TLS_CERTDIR", "value": ""}],
        # TCP on the pod's loopback for the build; the socket for the probe's `docker info`.
        "args": ["--host", f"tcp://127.0.0.1:{DIND_PORT}", "--host", "unix:///var/run/docker.sock"],
        "volumeMounts": [{"name": "work", "mountPath": WORK},
                         {"name": "docker-storage", "mountPath": "/var/lib/docker"}],
    }


def build_script(shard_arg: str) -> str:
    """The build container's shell command: make $TMPDIR (on the volume the daemon sees), then build."""
    return f'mkdir -p "$TMPDIR" && exec edgeforge-ext build {shard_arg}'
