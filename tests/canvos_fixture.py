"""CanvOS-like git repositories for tests (see ../shared/reference/canvos-fixture.md).

`make_canvos_repo(base)` builds `base/CanvOS.git` (bare, served as a file:// URL) with the tags
v4.9.38, v4.10.0 (whose Earthfile says PE_VERSION=v4.9.21) and v4.10.1-rc.1, plus `main` one
commit ahead. The fixture uses the git command line (not GitPython) so it does not depend on the
code under test. Dates are fixed, so the SHAs are the same on every run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

TARGETS = (
    "base-image", "build-all-images", "build-provider-images", "build-provider-images-fips", "iso",
    "iso-image", "provider-image", "validate-user-data", "uki-genkey", "cloud-image",
    "kairos-raw-image", "iso-disk-image",
)

ARG_TEMPLATE = """\
# Copy to .arg and edit. Earthly reads .arg as build arguments.
CUSTOM_TAG=demo
IMAGE_REGISTRY=ttl.sh
OS_DISTRIBUTION=ubuntu
IMAGE_REPO=$OS_DISTRIBUTION
OS_VERSION=22.04
K8S_DISTRIBUTION=k3s
ISO_NAME=palette-edge-installer
ARCH=amd64
HTTPS_PROXY=
HTTP_PROXY=
UPDATE_KERNEL=false
CLUSTERCONFIG=spc.tgz
CIS_HARDENING=false
EDGE_CUSTOM_CONFIG=.edge-custom-config.yaml
FORCE_INTERACTIVE_INSTALL=false

# Options
# MAAS_IMAGE_NAME=kairos-ubuntu-maas
# UBUNTU_PRO_ATTACH=true
# IS_UKI=false
# MY_ORG="ACME Corporation"
# BUNDLE_K8S_AND_AGENT_PROVIDER=false
"""

USER_DATA_TEMPLATE = """\
#cloud-config
#stylus:
#  site:
#    edgeHostToken: <token>
#    projectName: Default
#    paletteEndpoint: api.spectrocloud.com
#  registryCredentials:
#    domain: 10.10.254.254:8000/spectro-images
#    username: ubuntu
#    password: <password>
#    insecure: true
#install:
#  poweroff: true
"""

K8S_VERSIONS_OLD: dict[str, list[str]] = {
    "k3s": ["1.29.14", "1.30.10", "1.31.6"],
    "rke2": ["1.29.13", "1.30.9", "1.31.5"],
    "kubeadm": ["1.29.14", "1.30.10", "1.31.6"],
    "kubeadm-fips": ["1.29.14", "1.30.10"],
    "nodeadm": ["1.29.0", "1.30.0", "1.31.0"],
    "canonical": ["1.31.3"],
}
K8S_VERSIONS: dict[str, list[str]] = {
    "k3s": ["1.29.14", "1.30.10", "1.31.6", "1.32.3"],
    "rke2": ["1.29.13", "1.30.9", "1.31.5", "1.32.3"],
    "kubeadm": ["1.29.14", "1.30.10", "1.31.6", "1.32.3"],
    "kubeadm-fips": ["1.29.14", "1.30.10", "1.31.6"],
    "nodeadm": ["1.29.0", "1.30.0", "1.31.0", "1.32.0"],
    "canonical": ["1.31.3", "1.32.3"],
}
OS_VERSIONS = {"ubuntu": ["22.04", "20.04"], "opensuse-leap": ["15.6"]}


def earthfile(pe_version: str) -> str:
    """An Earthfile with CanvOS's VERSION line, top-level ARGs and target names."""
    lines = [
        "VERSION 0.6",
        "ARG TARGETOS",
        "ARG TARGETARCH",
        "",
        "# Default image repositories used in the builds.",
        "ARG SPECTRO_PUB_REPO=us-docker.pkg.dev/palette-images",
        "ARG SPECTRO_LUET_REPO=us-docker.pkg.dev/palette-images",
        "ARG KAIROS_BASE_IMAGE_URL=$SPECTRO_PUB_REPO",
        "ARG ALPINE_IMG=$SPECTRO_PUB_REPO/edge/canvos/alpine:3.20",
        "",
        "# Variables used in the builds. Update for ADVANCED use cases only.",
        "ARG OS_DISTRIBUTION",
        "ARG OS_VERSION",
        "ARG IMAGE_REGISTRY",
        "ARG IMAGE_REPO=$OS_DISTRIBUTION",
        "ARG K8S_DISTRIBUTION",
        "ARG K8S_VERSION",
        "ARG CUSTOM_TAG",
        "ARG ARCH",
        f"ARG PE_VERSION={pe_version}",
        "ARG KAIROS_VERSION=v4.1.2",
        "ARG ISO_NAME=installer",
        "ARG K3S_FLAVOR_TAG=k3s1",
        "ARG RKE2_FLAVOR_TAG=rke2r1",
        "ARG DISABLE_SELINUX=true",
        "ARG FIPS_ENABLED=false",
        "ARG IS_UKI=false",
        "",
        "IF [ \"$CUSTOM_TAG\" != \"\" ]",
        "    ARG IMAGE_TAG=$PE_VERSION-$CUSTOM_TAG",
        "ELSE",
        "    ARG IMAGE_TAG=$PE_VERSION",
        "END",
        "ARG IMAGE_PATH=$IMAGE_REGISTRY/$IMAGE_REPO:$K8S_DISTRIBUTION-$K8S_VERSION-$IMAGE_TAG",
        "",
    ]
    bodies = {
        "build-all-images": ["IF $FIPS_ENABLED", "    BUILD +build-provider-images-fips", "ELSE",
                             "    BUILD +build-provider-images", "END", "BUILD +iso-image", "BUILD +iso"],
        "build-provider-images": ["IF [ \"$K8S_VERSION\" = \"\" ]",
                                  "    FROM alpine", "    COPY k8s_version.json ./",
                                  "    RUN jq -r --arg d $K8S_DISTRIBUTION '.[$d][]' k8s_version.json",
                                  "ELSE", "    BUILD +provider-image --K8S_VERSION=$K8S_VERSION", "END"],
        "build-provider-images-fips": ["BUILD +build-provider-images"],
        "iso": ["FROM +build-iso", "SAVE ARTIFACT /build/* AS LOCAL ./build/"],
        "iso-image": ["FROM +base-image", "SAVE IMAGE palette-installer-image:$IMAGE_TAG"],
        "provider-image": ["FROM +base-image", "COPY overlay/files/ /", "SAVE IMAGE --push $IMAGE_PATH"],
        "validate-user-data": ["FROM alpine", "COPY user-data /user-data", "RUN test -s /user-data"],
        "uki-genkey": ["FROM alpine", "SAVE ARTIFACT /keys AS LOCAL ./secure-boot/"],
        "cloud-image": ["FROM +iso-image", "SAVE ARTIFACT /build/* AS LOCAL ./build/"],
        "kairos-raw-image": ["FROM +iso-image", "SAVE ARTIFACT /build/* AS LOCAL ./build/"],
        "iso-disk-image": ["FROM scratch", "COPY +iso/* /", "SAVE IMAGE --push "
                           "$IMAGE_REGISTRY/$IMAGE_REPO/$ISO_NAME:$IMAGE_TAG"],
        "base-image": ["FROM DOCKERFILE --build-arg BASE=$KAIROS_BASE_IMAGE_URL .",
                       "COPY certs/ /usr/local/share/ca-certificates/"],
    }
    for name in TARGETS:
        lines.append(f"{name}:")
        lines.extend(f"    {cmd}" for cmd in bodies[name])
        lines.append("")
    return "\n".join(lines)


def base_files(pe_version: str, k8s: Mapping[str, list[str]]) -> dict[str, str]:
    """Every committed file of the fixture at one version."""
    return {
        "Earthfile": earthfile(pe_version),
        ".arg.template": ARG_TEMPLATE,
        "user-data.template": USER_DATA_TEMPLATE,
        "k8s_version.json": json.dumps(dict(k8s), indent=2) + "\n",
        "os_version.json": json.dumps(OS_VERSIONS, indent=2) + "\n",
        ".gitignore": ".arg\n.secret\nuser-data\nbuild/\nsecure-boot/\n",
        "certs/.gitkeep": "",
        "overlay/files/.gitkeep": "",
        "overlay/files-iso/.gitkeep": "",
        "earthly.sh": "#!/bin/bash\n# upstream wrapper (not used by edgeforge-ext)\nexit 1\n",
        "earthly-entrypoint.sh": "#!/bin/sh\nupdate-ca-certificates\nexec earthly \"$@\"\n",
        "Dockerfile": "ARG BASE\nFROM $BASE\nCOPY certs/ /usr/local/share/ca-certificates/\n",
        "README.md": "# CanvOS (test fixture)\n",
    }


def _git_env(when: int) -> dict[str, str]:
    stamp = f"{1_700_000_000 + when * 3600} +0000"
    env = dict(os.environ)
    env.update({
        "GIT_AUTHOR_NAME": "Fixture", "GIT_AUTHOR_EMAIL": "fixture@example.invalid",
        "GIT_COMMITTER_NAME": "Fixture", "GIT_COMMITTER_EMAIL": "fixture@example.invalid",
        "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp,
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
    })
    return env


def git(cwd: Path, *args: str, when: int = 0) -> str:
    """Run git in `cwd` (fixed identity and dates) and return its stripped stdout."""
    done = subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "advice.detachedHead=false", *args],
                          cwd=cwd, env=_git_env(when), check=True, capture_output=True, text=True)
    return done.stdout.strip()


@dataclass
class CanvosRepo:
    """A bare CanvOS-like repository (`url` is its file:// URL) and a work clone that pushes to it."""

    bare: Path
    url: str
    work: Path
    tags: dict[str, str] = field(default_factory=dict)  # tag -> commit SHA
    main: str = ""  # SHA of the main branch in the bare repository
    _clock: int = 10

    def commit(self, message: str, files: Mapping[str, str | None] | None = None,
               *, pe_version: str | None = None, push: bool = True) -> str:
        """Commit on main in the work clone (None deletes a file) and push main; returns the SHA."""
        changes = dict(files or {})
        if pe_version is not None:
            changes["Earthfile"] = earthfile(pe_version)
        for name, text in changes.items():
            path = self.work / name
            if text is None:
                path.unlink()
                git(self.work, "rm", "-q", "--cached", "--ignore-unmatch", name)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self._clock += 1
        git(self.work, "add", "-A", when=self._clock)
        git(self.work, "commit", "-q", "--allow-empty", "-m", message, when=self._clock)
        sha = git(self.work, "rev-parse", "HEAD")
        if push:
            git(self.work, "push", "-q", "origin", "main")
            self.main = sha
        return sha

    def add_tag(self, tag: str, *, pe_version: str | None = None,
                files: Mapping[str, str | None] | None = None, annotated: bool = True) -> str:
        """Commit (Earthfile PE_VERSION defaults to the tag), tag it and push both; returns the SHA."""
        sha = self.commit(f"release {tag}", files, pe_version=pe_version or tag, push=False)
        self.tag(tag, sha, annotated=annotated)
        git(self.work, "push", "-q", "origin", "main", f"refs/tags/{tag}")
        self.main = sha
        return sha

    def tag(self, tag: str, sha: str, *, annotated: bool = True) -> None:
        self._clock += 1
        if annotated:
            git(self.work, "tag", "-a", "-m", tag, tag, sha, when=self._clock)
        else:
            git(self.work, "tag", tag, sha, when=self._clock)
        self.tags[tag] = sha


def make_canvos_repo(base: Path) -> CanvosRepo:
    """Build `base/CanvOS.git` (bare) and `base/canvos-work` (a clone to add commits/tags from).

    History: v4.9.38 (lightweight tag) -> v4.10.0 (Earthfile PE_VERSION=v4.9.21) -> v4.10.1-rc.1
    -> main (one commit ahead, Earthfile PE_VERSION=v4.10.0-rc.2).
    """
    base.mkdir(parents=True, exist_ok=True)
    bare = base / "CanvOS.git"
    work = base / "canvos-work"
    git(base, "init", "-q", "--bare", str(bare))
    git(base, "init", "-q", str(work))
    repo = CanvosRepo(bare=bare, url=bare.resolve().as_uri(), work=work)
    git(work, "remote", "add", "origin", repo.url)
    repo.add_tag("v4.9.38", files=base_files("v4.9.38", K8S_VERSIONS_OLD), annotated=False)
    repo.add_tag("v4.10.0", pe_version="v4.9.21", files={"k8s_version.json": json.dumps(K8S_VERSIONS, indent=2)
                                                         + "\n"})
    repo.add_tag("v4.10.1-rc.1", files={"README.md": "# CanvOS (test fixture)\n\nrc notes\n"})
    repo.commit("main: work towards the next release", pe_version="v4.10.0-rc.2")
    return repo


def copy_canvos_repo(template: CanvosRepo, base: Path) -> CanvosRepo:
    """An independent copy of a repository made by make_canvos_repo (same SHAs), cheaper than
    building it again."""
    shutil.copytree(template.bare.parent, base, symlinks=True)
    bare = base / template.bare.name
    repo = replace(template, bare=bare, url=bare.resolve().as_uri(), work=base / template.work.name,
                   tags=dict(template.tags))
    git(repo.work, "remote", "set-url", "origin", repo.url)
    return repo


@pytest.fixture(scope="session")
def _canvos_template(tmp_path_factory: pytest.TempPathFactory) -> CanvosRepo:
    return make_canvos_repo(tmp_path_factory.mktemp("canvos-template") / "remote")


@pytest.fixture
def canvos_repo(tmp_path: Path, _canvos_template: CanvosRepo) -> CanvosRepo:
    """A fresh CanvOS-like repository for this test (file:// URL, no network); a copy of one built
    per session, so a test may add commits and tags or move it away."""
    return copy_canvos_repo(_canvos_template, tmp_path / "canvos-remote")


@pytest.fixture
def canvos_checkout(tmp_path: Path, canvos_repo: CanvosRepo) -> tuple[Path, CanvosRepo]:
    """A work directory whose `CanvOS/` is a clone of `canvos_repo` at v4.10.0 (detached HEAD, remote
    `origin`), as `edgeforge-ext checkout --ref v4.10.0` leaves it. Load a config with
    flags={"workdir": str(workdir), "canvos.url": repo.url, "canvos.ref": "v4.10.0"}."""
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    git(workdir, "clone", "-q", "--no-checkout", canvos_repo.url, "CanvOS")
    git(workdir / "CanvOS", "checkout", "-q", "--detach", "v4.10.0")
    return workdir, canvos_repo
