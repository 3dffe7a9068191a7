"""Run the Earthly double's image directly (Docker SDK, the real daemon), as CanvOS's earthly.sh would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.canvos_fixture import CanvosRepo, git

LABEL = "io.edgeforge-test.earthly-double"
REMOTE = "tcp://buildkit.edgeforge.test:8372"
PLAIN_TCP = "{disable_analytics: true, tls_enabled: false}"

# A hand-written .arg of the usual keys, without BASE_IMAGE: an empty override would erase the Earthfile's
# derived default (variables/collection.go:233-241), which the double's own tests show.
ARG_FILE = (
    "ARCH=amd64\nIMAGE_REGISTRY=127.0.0.1:5999/efx-double\nIMAGE_REPO=ubuntu\nOS_DISTRIBUTION=ubuntu\n"
    "OS_VERSION=22.04\nK8S_DISTRIBUTION=k3s\nK8S_VERSION=1.30.10\nCUSTOM_TAG=demo\nISO_NAME=palette-edge-installer\n"
    "HTTP_PROXY=\nHTTPS_PROXY=\nNO_PROXY=\nUPDATE_KERNEL=false\nCIS_HARDENING=false\nFIPS_ENABLED=false\n"
    "CLUSTERCONFIG=spc.tgz\nEDGE_CUSTOM_CONFIG=.edge-custom-config.yaml\n"
)
USER_DATA = b"#cloud-config\nstylus:\n  site:\n    paletteEndpoint: api.spectrocloud.com\n    projectName: Default\n"


@dataclass
class Run:
    code: int
    output: str

    @property
    def lines(self) -> list[str]:
        """Output lines without Earthly's 20-column prefix padding."""
        return [line.lstrip() for line in self.output.splitlines()]


def checkout(repo: CanvosRepo, ref: str, dest: Path, *, arg: str | None = ARG_FILE,
             user_data: bytes | None = USER_DATA) -> Path:
    git(dest.parent, "clone", "-q", "--no-checkout", repo.url, dest.name)
    git(dest, "checkout", "-q", "--detach", ref)
    if arg is not None:
        (dest / ".arg").write_text(arg)
    if user_data is not None:
        (dest / "user-data").write_bytes(user_data)
    return dest


def run_double(client: Any, image: str, workspace: Path, args: list[str], *, env: dict[str, str] | None = None,
               remote: str | None = REMOTE, tls: bool = False, volumes: dict[str, dict[str, str]] | None = None,
               cap_add: list[str] | None = None, entrypoint: list[str] | None = None, timeout: int = 180) -> Run:
    """The container as earthly.sh runs it (socket, checkout at /workspace); `remote` set means
    EARTHLY_BUILDKIT_HOST + NO_BUILDKIT=1, with TLS off in GLOBAL_CONFIG unless `tls`."""
    environment = {"GLOBAL_CONFIG": "{disable_analytics: true}" if tls else PLAIN_TCP}
    if remote:
        environment.update({"EARTHLY_BUILDKIT_HOST": remote, "NO_BUILDKIT": "1"})
    environment.update(env or {})
    binds = {"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
             str(workspace): {"bind": "/workspace", "mode": "rw"}}
    binds.update(volumes or {})
    container = client.containers.run(
        image, args, environment=environment, volumes=binds, working_dir="/workspace", detach=True,
        cap_add=cap_add, entrypoint=entrypoint, labels={LABEL: "1"},
        name=f"edgeforge-double-test-{uuid.uuid4().hex[:10]}")
    try:
        code = int(container.wait(timeout=timeout)["StatusCode"])
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    return Run(code, output)


def remove_root_owned(client: Any, image: str, directory: Path) -> None:
    """Files the double wrote as root (build/, secure-boot/): removed by root, so a non-root test user's
    temporary directories stay removable."""
    if not directory.exists():
        return
    client.containers.run(image, ["-c", "rm -rf /w/build /w/secure-boot"], entrypoint=["/bin/sh"],
                          volumes={str(directory): {"bind": "/w", "mode": "rw"}}, remove=True, labels={LABEL: "1"})
