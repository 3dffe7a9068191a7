"""What the shard and isolation tests share: a CanvOS tag whose Earthfile declares the Earthly
double's knobs (the tool refuses build args the Earthfile does not declare), a config file with
variants, and the CLI run as a separate process (several at once, as runners would)."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

from tests.canvos_fixture import CanvosRepo
from tests.engine.buildkit import REMOTE_BUILDKIT, TOKEN

KNOBS_TAG = "v4.10.5"  # PE_VERSION v4.9.21, like v4.10.0; its Earthfile also declares the knobs below


def tag_with_knobs(repo: CanvosRepo) -> str:
    """Release KNOBS_TAG (PE_VERSION v4.9.21). The fixture's Earthfile declares the Earthly double's
    STANDIN_SLEEP and STANDIN_FAIL as ARGs, so a test can hold a build in Earthly for a while, or make one
    fail, through `extra_args` like any user arg."""
    return repo.add_tag(KNOBS_TAG, pe_version="v4.9.21")


def write_config(path: Path, canvos_url: str, earthly_image: str, *, variants: str = "", build: str = "",
                 push: str = "enabled = false", registry: str = "", ref: str = KNOBS_TAG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""
[canvos]
url = "{canvos_url}"
ref = "{ref}"

[build]
k8s_versions = ["1.32.3"]
custom_tag = "nightly"
{build}

[site]
palette_endpoint = "api.spectrocloud.com"
project_name = "Default"

[earthly]
image = "{earthly_image}"
buildkit_host = "{REMOTE_BUILDKIT}"

[push]
{push}
{registry}
{variants}
""")
    return path


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEFORGE_", "GITHUB_"))}
    env.update({"EDGEFORGE_EDGE_HOST_TOKEN": TOKEN, "EDGEFORGE_PREFLIGHT_MIN_CPUS": "1",
                "EDGEFORGE_PREFLIGHT_MIN_DISK_GB": "1", "EDGEFORGE_PREFLIGHT_MIN_MEMORY_GB": "1", **extra})
    return env


def cli_process(args: list[str], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edgeforge_ext", *args], env=cli_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def remove_built_images(docker_client: Any, tmp_path: Path) -> None:
    """The provider images the builds of this test saved (under the local names of its work directories,
    tmp_path/*), with every name they carry: nothing piles up in the daemon run after run."""
    from edgeforge_ext.build.plan import local_image_registry

    prefixes = tuple(local_image_registry(d) + "/" for d in tmp_path.iterdir() if d.is_dir())
    for image in docker_client.images.list():
        if any(tag.startswith(prefixes) for tag in image.tags):
            with suppress(Exception):
                docker_client.images.remove(image.id, force=True)
