"""CanvOS-shaped git repositories for tests (see ../shared/reference/canvos-fixture.md).

`make_canvos_repo(base)` builds `base/CanvOS.git` (bare, served as a file:// URL) with the history

    v4.4.12 -> v4.9.38 (lightweight tag) -> v4.10.0 (Earthfile PE_VERSION=v4.9.21) -> v4.10.1-rc.1 -> main

Each commit carries files written here that reproduce, small, the structures of the real tree at that tag
(spectrocloud/CanvOS; line numbers below are of the real files) that a wrapper depends on: the Earthfile's
top-level ARG block (defaults, ARGs without, BASE_IMAGE derived only as an ARG default inside IF blocks),
the targets users invoke with the real call structure, `earthly.sh` with the lines a wrapper parses,
`.arg.template`, `earthly-entrypoint.sh`, `Dockerfile`, `k8s_version.json`, ... Target bodies run in the
Earthly double in seconds: the ISO is made with xorriso, images are busybox filesystems.

Test-only knobs (NOT in CanvOS): STANDIN_FAIL, STANDIN_LOG_LINES, STANDIN_SLEEP, STANDIN_SHOW_ENV,
STANDIN_ECHO_FILE are declared ARGs of every Earthfile here, used by the user-defined command
STANDIN_KNOBS that +iso, +build-provider-images and +build-all-images run first, so they obey the same
override rules as every other build arg (set them in .arg or as --K=V).

The fixture uses the git command line (not GitPython) so it does not depend on the code under test.
Dates are fixed, so the SHAs are the same on every run.
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

# The targets a user invokes (present at v4.9.38 and later; v4.4.12 has no cloud-image/kairos-raw-image).
TARGETS = (
    "base-image", "build-all-images", "build-provider-images", "build-provider-images-fips", "iso",
    "iso-image", "provider-image", "validate-user-data", "uki-genkey", "cloud-image",
    "kairos-raw-image", "iso-disk-image",
)
SHAPES = ("v4.4.12", "v4.9.38", "v4.10.0", "main")

K8S_VERSIONS_V44: dict[str, list[str]] = {
    "k3s": ["1.27.15", "1.28.11", "1.29.6"],
    "rke2": ["1.27.15", "1.28.11", "1.29.6"],
    "kubeadm": ["1.27.15", "1.28.11", "1.29.6"],
    "kubeadm-fips": ["1.27.15", "1.28.11"],
}
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

# -------------------------------------------------------------------------------------------------------
# .arg.template (real: v4.4.12 .arg.template:1-25; v4.10.0 .arg.template:1-55)

_ARG_TEMPLATE_HEAD = """\
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
"""
_ARG_TEMPLATE_SB = """
# For enabling Secure Boot with Full Disk Encryption
# IS_UKI=true
# MY_ORG="ACME Corporation"
# UKI_BRING_YOUR_OWN_KEYS=false         # See sb-private-ca/howto.md
# INCLUDE_MS_SECUREBOOT_KEYS=true       # Adds Microsoft Secure Boot certificates
# AUTO_ENROLL_SECUREBOOT_KEYS=false     # Enroll certificates on devices in Setup Mode
"""


def arg_template(shape: str) -> str:
    if shape == "v4.4.12":
        return (_ARG_TEMPLATE_HEAD + "PROXY_CERT_PATH=\nUPDATE_KERNEL=false\nCLUSTERCONFIG=spc.tgz\n"
                "CIS_HARDENING=false\nEDGE_CUSTOM_CONFIG=.edge-custom-config.yaml\n\n"
                "# If you have Ubuntu Pro, use the UBUNTU_PRO_KEY variable to activate it as part of the image build\n"
                "# UBUNTU_PRO_KEY=your-key\n" + _ARG_TEMPLATE_SB)
    text = (_ARG_TEMPLATE_HEAD + "UPDATE_KERNEL=false\nCLUSTERCONFIG=spc.tgz\nCIS_HARDENING=false\n"
            "EDGE_CUSTOM_CONFIG=.edge-custom-config.yaml\nFORCE_INTERACTIVE_INSTALL=false\n\n"
            "# MAAS Image Configuration\n"
            "# MAAS_IMAGE_NAME=kairos-ubuntu-maas    # name of the final MAAS image (without .raw.gz)\n")
    if shape in ("v4.10.0", "main"):
        text += ("\n# Ubuntu Pro (optional)\n"
                 "# Do NOT put your Pro token in this file or in any build arg - it would end up\n"
                 "# in `docker history`, the Earthly build cache, and shell history.\n"
                 "#   1. Uncomment the toggle below:  UBUNTU_PRO_ATTACH=true\n"
                 "#   2. ./earthly.sh +iso prompts for the token (or export UBUNTU_PRO_KEY for CI) and forwards\n"
                 "#      it to Earthly as a secret (--secret UBUNTU_PRO_KEY).\n"
                 "#\n# UBUNTU_PRO_ATTACH=true\n")
    text += _ARG_TEMPLATE_SB
    if shape == "main":
        text += ("\n# BUNDLE_K8S_AND_AGENT_PROVIDER=false\n"
                 "\n# AMD Instinct GPU driver pre-install (mutually exclusive with the NVIDIA options)\n"
                 "# INSTALL_AMD_GPU_DRIVERS=true\n# AMDGPU_DRIVER_SOURCE=dkms                  # dkms | inbox\n"
                 "# AMDGPU_DRIVER_RELEASE=31.40\n# AMDGPU_INSTALL_SMI=true\n# AMDGPU_REBUILD_INITRD=false\n")
    return text


# The real file is an uncommented example (placeholders the wrapper must refuse to ship).
USER_DATA_TEMPLATE = """\
#cloud-config
stylus:
  site:
    # host for hubble api to register device.
    paletteEndpoint: api.spectrocloud.com
    # newly added field to use for auto registration
    edgeHostToken: aUAxxxxxxxxx0ChYCrO
    projectName: stores
    tags:
      key1: value1
    name: edge-randomid
  # Optional: sets up external registry to pull images
  registryCredentials:
    domain: registry.example.com
    username: bob
    password: ####
    insecure: false
install:
  poweroff: true
"""

# -------------------------------------------------------------------------------------------------------
# Earthfile


def _header(shape: str, pe_version: str) -> list[str]:
    """The base recipe up to the variables block (real v4.9.38 Earthfile:1-36; v4.4.12 Earthfile:1-26)."""
    if shape == "v4.4.12":
        return [
            "VERSION 0.6",
            "ARG TARGETOS",
            "ARG TARGETARCH",
            "",
            "# Default image repositories used in the builds.",
            "ARG SPECTRO_PUB_REPO=gcr.io/spectro-images-public",
            "ARG SPECTRO_LUET_REPO=gcr.io/spectro-dev-public",
            "ARG KAIROS_BASE_IMAGE_URL=gcr.io/spectro-images-public",
            "ARG ALPINE_TAG=3.20",
            "ARG ALPINE_IMG=$SPECTRO_PUB_REPO/canvos/alpine:$ALPINE_TAG",
            "FROM $ALPINE_IMG",
            "",
            "# Spectro Cloud and Kairos tags.",
            f"ARG PE_VERSION={pe_version}",
            "ARG SPECTRO_LUET_VERSION=v1.3.7",
            "ARG KAIROS_VERSION=v3.0.14",
            "ARG K3S_FLAVOR_TAG=k3s1",
            "ARG RKE2_FLAVOR_TAG=rke2r1",
            "ARG BASE_IMAGE_URL=quay.io/kairos",
            "ARG OSBUILDER_VERSION=v0.201.0",
            "ARG OSBUILDER_IMAGE=quay.io/kairos/osbuilder-tools:$OSBUILDER_VERSION",
            "",
        ]
    lines = [
        "VERSION --arg-scope-and-set --shell-out-anywhere 0.6",
        "ARG TARGETOS",
        "ARG TARGETARCH",
        "",
        "# Default image repositories used in the builds.",
        "ARG SPECTRO_PUB_REPO=us-docker.pkg.dev/palette-images",
        "ARG BUILDER_3RDPARTY_VERSION=4.8",
        "ARG SPECTRO_THIRD_PARTY_IMAGE=us-docker.pkg.dev/palette-images/third-party/spectro-third-party:"
        "$BUILDER_3RDPARTY_VERSION",
        "ARG ALPINE_TAG=3.20",
        "ARG ALPINE_IMG=$SPECTRO_PUB_REPO/edge/canvos/alpine:$ALPINE_TAG",
        "FROM $ALPINE_IMG",
        "",
        "ARG FIPS_ENABLED=false",
        'IF [ "$FIPS_ENABLED" = "true" ] && [ "$SPECTRO_PUB_REPO" = "us-docker.pkg.dev/palette-images" ]',
        "    LET SPECTRO_PUB_REPO=us-docker.pkg.dev/palette-images-fips",
        "    LET ALPINE_IMG=$SPECTRO_PUB_REPO/edge/canvos/alpine:$ALPINE_TAG",
        "END",
        "",
        "ARG SPECTRO_LUET_REPO=us-docker.pkg.dev/palette-images/edge",
        "ARG KAIROS_BASE_IMAGE_URL=$SPECTRO_PUB_REPO/edge",
        "",
        "# Spectro Cloud and Kairos tags.",
        f"ARG PE_VERSION={pe_version}",
    ]
    if shape == "main":
        lines += ["ARG KAIROS_VERSION=v4.1.2",
                  "# Version component of the base image tags (tracks kairos-init, NOT KAIROS_VERSION).",
                  "ARG KAIROS_INIT_VERSION=v0.17.1"]
    else:
        lines += ["ARG KAIROS_VERSION=v4.0.4"]
    lines += [
        "ARG K3S_FLAVOR_TAG=k3s1",
        "ARG RKE2_FLAVOR_TAG=rke2r1",
        "ARG BASE_IMAGE_URL=quay.io/kairos",
        "ARG OSBUILDER_VERSION=v0.400.3",
        "ARG OSBUILDER_IMAGE=quay.io/kairos/osbuilder-tools:$OSBUILDER_VERSION",
        f"ARG AURORABOOT_VERSION={'v0.26.2' if shape == 'main' else 'v0.16.0'}",
        "ARG AURORABOOT_IMAGE=quay.io/kairos/auroraboot:$AURORABOOT_VERSION",
        "",
    ]
    return lines


def _variables(shape: str) -> list[str]:
    """The user variables (real v4.9.38 Earthfile:38-97, v4.10.0 :38-99, v4.4.12 :28-76, main :38-120)."""
    lines = [
        "# Variables used in the builds. Update for ADVANCED use cases only. Modify in .arg file or via CLI "
        "arguments.",
        "ARG OS_DISTRIBUTION",
        "ARG OS_VERSION",
        "ARG K8S_VERSION",
        "ARG IMAGE_REGISTRY",
        "ARG IMAGE_REPO=$OS_DISTRIBUTION",
        "ARG ISO_NAME=installer",
        "ARG K8S_DISTRIBUTION",
        "ARG CUSTOM_TAG",
        "ARG CLUSTERCONFIG",
        "ARG EDGE_CUSTOM_CONFIG=.edge-custom-config.yaml",
        "ARG ARCH",
        "ARG DISABLE_SELINUX=true",
        "ARG CIS_HARDENING=false",
    ]
    if shape in ("v4.10.0", "main"):
        lines += [
            "# Ubuntu Pro toggle. The token itself is NEVER passed as a build arg: earthly.sh forwards it",
            "# as an Earthly --secret (RUN --secret UBUNTU_PRO_KEY in +base-image).",
            "ARG UBUNTU_PRO_ATTACH=false",
        ]
    else:
        lines += ["ARG UBUNTU_PRO_KEY"]
    if shape == "v4.4.12":
        lines += ["", "ARG FIPS_ENABLED=false"]
    lines += [
        "",
        "ARG HTTP_PROXY",
        "ARG HTTPS_PROXY",
        "ARG NO_PROXY",
        "ARG http_proxy=${HTTP_PROXY}",
        "ARG https_proxy=${HTTPS_PROXY}",
        "ARG no_proxy=${NO_PROXY}",
    ]
    if shape == "v4.4.12":
        lines += ["ARG PROXY_CERT_PATH"]
    lines += ["", "ARG UPDATE_KERNEL=false"]
    if shape != "v4.4.12":
        lines += [
            'IF [ "$FIPS_ENABLED" = "true" ] && [ "$UPDATE_KERNEL" = "true" ]',
            '    RUN echo "ERROR: UPDATE_KERNEL and FIPS_ENABLED are mutually exclusive. Cannot set both to true." >&2 '
            "&& \\",
            "        exit 1",
            "END",
        ]
    if shape == "main":
        lines += [
            "",
            "ARG INSTALL_NVIDIA_GPU_DRIVERS=false",
            "ARG INSTALL_AMD_GPU_DRIVERS=false",
            "ARG AMDGPU_DRIVER_SOURCE=dkms",
            "ARG AMDGPU_DRIVER_RELEASE=31.40",
            'ARG AMDGPU_ARTIFACT_PATH=""',
            "ARG AMDGPU_REBUILD_INITRD=false",
            "ARG AMDGPU_INSTALL_SMI=true",
            "",
            'IF [ "$INSTALL_NVIDIA_GPU_DRIVERS" = "true" ] && [ "$INSTALL_AMD_GPU_DRIVERS" = "true" ]',
            '    RUN echo "ERROR: INSTALL_NVIDIA_GPU_DRIVERS and INSTALL_AMD_GPU_DRIVERS are mutually exclusive. '
            'Enable only one." >&2 && \\',
            "        exit 1",
            "END",
            "",
            "ARG BUNDLE_K8S_AND_AGENT_PROVIDER=false",
        ]
    lines += [
        "",
        "# MAAS Variables",
        "ARG IS_MAAS=false",
        "",
        "# UKI Variables",
        "ARG IS_UKI=false",
        "ARG INCLUDE_MS_SECUREBOOT_KEYS=true",
        "ARG AUTO_ENROLL_SECUREBOOT_KEYS=false",
        "ARG UKI_BRING_YOUR_OWN_KEYS=false",
        "",
        'ARG CMDLINE="stylus.registration"',
        'ARG BRANDING="Palette eXtended Kubernetes Edge"',
    ]
    if shape != "v4.4.12":
        lines += ["ARG FORCE_INTERACTIVE_INSTALL=false"]
    lines += [
        "",
        "# internal variables",
        "ARG DEBUG=false",
        "",
        "# ---- Test-only (NOT in CanvOS): edgeforge-ext's test knobs, used by STANDIN_KNOBS below. Ordinary",
        "# declared ARGs, so .arg and --K=V override them like any other build arg.",
        "ARG STANDIN_FAIL=0",
        "ARG STANDIN_LOG_LINES=0",
        "ARG STANDIN_SLEEP",
        "ARG STANDIN_SHOW_ENV=0",
        "ARG STANDIN_ECHO_FILE",
        "ARG STANDIN_NESTED=0",
        "",
    ]
    if shape in ("v4.9.38", "v4.10.0"):
        lines += [
            "# Pin UKI to Kairos v3.5.9 (systemd 257.x broke boot assessment)",
            'IF [ "$IS_UKI" = "true" ]',
            "    LET KAIROS_VERSION=v3.5.9",
            "END",
            "",
        ]
    return lines


def _base_image_block(shape: str) -> list[str]:
    """BASE_IMAGE only as an ARG default inside IF blocks (real v4.9.38 Earthfile:107-124)."""
    tag_version = "$KAIROS_INIT_VERSION" if shape == "main" else "$KAIROS_VERSION"
    lines = [
        'IF [ "$OS_DISTRIBUTION" = "ubuntu" ] && [ "$BASE_IMAGE" = "" ]',
        '    IF [ "$OS_VERSION" == 22 ] || [ "$OS_VERSION" == 20 ]',
        f"        ARG BASE_IMAGE_TAG=kairos-$OS_DISTRIBUTION:$OS_VERSION.04-core-$ARCH-generic-{tag_version}",
        "    ELSE",
        '        IF [ "$IS_UKI" = "true" ]',
        f"            ARG BASE_IMAGE_TAG=kairos-$OS_DISTRIBUTION:$OS_VERSION-core-$ARCH-generic-{tag_version}-uki",
        "        ELSE",
        f"            ARG BASE_IMAGE_TAG=kairos-$OS_DISTRIBUTION:$OS_VERSION-core-$ARCH-generic-{tag_version}",
        "        END",
        "    END",
        "    ARG BASE_IMAGE=$KAIROS_BASE_IMAGE_URL/$BASE_IMAGE_TAG",
        'ELSE IF [ "$OS_DISTRIBUTION" = "opensuse-leap" ] && [ "$BASE_IMAGE" = "" ]',
        f"    ARG BASE_IMAGE_TAG=kairos-opensuse:leap-$OS_VERSION-core-$ARCH-generic-{tag_version}",
        "    ARG BASE_IMAGE=$KAIROS_BASE_IMAGE_URL/$BASE_IMAGE_TAG",
    ]
    if shape == "main":
        lines += ["ELSE", "    ARG BASE_IMAGE", "END"]
    else:
        lines += ['ELSE IF [ "$OS_DISTRIBUTION" = "rhel" ] || [ "$OS_DISTRIBUTION" = "sles" ]',
                  "    # Check for default value for rhel", "    ARG BASE_IMAGE", "END"]
    lines += [
        "",
        'IF [[ "$BASE_IMAGE" =~ "nvidia-jetson-agx-orin" ]]',
        "    ARG IS_JETSON=true",
        "END",
        "",
    ]
    if shape == "v4.4.12":
        lines += [
            'IF [ "$FIPS_ENABLED" = "true" ]',
            "    ARG BIN_TYPE=vertex",
            "    ARG STYLUS_BASE=$SPECTRO_PUB_REPO/stylus-framework-fips-linux-$ARCH:$PE_VERSION",
            "    ARG CLI_IMAGE=$SPECTRO_PUB_REPO/palette-edge-cli-fips-${TARGETARCH}:${PE_VERSION}",
            "ELSE",
            "    ARG BIN_TYPE=palette",
            "    ARG STYLUS_BASE=$SPECTRO_PUB_REPO/stylus-framework-linux-$ARCH:$PE_VERSION",
            "    ARG CLI_IMAGE=$SPECTRO_PUB_REPO/palette-edge-cli-${TARGETARCH}:${PE_VERSION}",
            "END",
        ]
    else:
        lines += [
            "ARG STYLUS_BASE=$SPECTRO_PUB_REPO/edge/stylus-framework-linux-$ARCH:$PE_VERSION",
            "",
            'IF [ "$FIPS_ENABLED" = "true" ]',
            "    ARG BIN_TYPE=vertex",
            "    ARG CLI_IMAGE=$SPECTRO_PUB_REPO/edge/palette-edge-cli-fips-${TARGETARCH}:${PE_VERSION}",
            "ELSE",
            "    ARG BIN_TYPE=palette",
            "    ARG CLI_IMAGE=$SPECTRO_PUB_REPO/edge/palette-edge-cli-${TARGETARCH}:${PE_VERSION}",
            "END",
        ]
    lines += [
        "",
        'IF [ "$CUSTOM_TAG" != "" ]',
        "    ARG IMAGE_TAG=$PE_VERSION-$CUSTOM_TAG",
        "ELSE",
        "    ARG IMAGE_TAG=$PE_VERSION",
        "END",
        "",
        "ARG IMAGE_PATH=$IMAGE_REGISTRY/$IMAGE_REPO:$K8S_DISTRIBUTION-$K8S_VERSION-$IMAGE_TAG",
    ]
    if shape == "v4.4.12":
        lines += ['ARG CMDLINE="stylus.registration"']  # declared twice upstream (fine without --arg-scope-and-set)
    lines += [""]
    return lines


def _targets(shape: str) -> dict[str, list[str]]:
    """Target bodies: the real call structure, bodies that run in the double in seconds."""
    proxy_cert = ["    # Add proxy certificate if present", "    IF [ ! -z $PROXY_CERT_PATH ]",
                  "        COPY sc.crt /etc/ssl/certs", "        RUN update-ca-certificates", "    END"]
    if shape in ("v4.10.0", "main"):
        pro = [
            '        IF [ "$UBUNTU_PRO_ATTACH" = "true" ]',
            "            # The token is mounted via Earthly's secret store as an env var of this RUN only.",
            "            # upstream: apt-get install snapd && pro attach --attach-config /tmp/.pro-attach.yaml",
            "            # (test-only: the step prints which token reached it, as a hash)",
            "            RUN --secret UBUNTU_PRO_KEY \\",
            "                umask 077 && \\",
            "                printf 'token: %s\\n' \"$UBUNTU_PRO_KEY\" > /tmp/.pro-attach.yaml && \\",
            "                unset UBUNTU_PRO_KEY && \\",
            "                echo \"pro attach --attach-config /tmp/.pro-attach.yaml (token sha256 \\",
            "                    $(sed -n 's/^token: //p' /tmp/.pro-attach.yaml | tr -d '\\n' | "
            "sha256sum | cut -c1-16))\" && \\",
            "                rm -f /tmp/.pro-attach.yaml",
            "        END",
        ]
    else:
        pro = [
            '        IF [ ! -z "$UBUNTU_PRO_KEY" ]',
            "            # upstream: apt update && apt-get install -y snapd && pro attach $UBUNTU_PRO_KEY",
            "            # (test-only: the step prints which token reached it, as a hash)",
            '            RUN sed -i "/^[[:space:]]*$/d" /etc/os-release && \\',
            '                echo "pro attach $UBUNTU_PRO_KEY" > /var/log/ubuntu-advantage.log && \\',
            '                echo "pro attach (token sha256 $(printf %s "$UBUNTU_PRO_KEY" | sha256sum | cut -c1-16))"',
            "        END",
        ]
    amd: list[str] = []
    if shape == "main":
        amd = [
            '        IF [ "$INSTALL_AMD_GPU_DRIVERS" = "true" ]',
            '            IF [ "$AMDGPU_DRIVER_SOURCE" = "dkms" ] && [ "$AMDGPU_ARTIFACT_PATH" != "" ]',
            '                COPY "$AMDGPU_ARTIFACT_PATH" /tmp/amdgpu-artifact.tar.gz',
            "                # upstream: scripts/install-amdgpu-drivers.sh (dkms prebuilt by earthly.sh)",
            "                RUN --privileged \\",
            '                    echo "installing amdgpu $AMDGPU_DRIVER_RELEASE from the prebuilt artifact" && \\',
            "                    rm -f /tmp/amdgpu-artifact.tar.gz",
            "            ELSE",
            "                RUN --privileged \\",
            '                    echo "installing amdgpu ($AMDGPU_DRIVER_SOURCE) $AMDGPU_DRIVER_RELEASE"',
            "            END",
            "        END",
        ]
    base_image = [
        "    FROM DOCKERFILE --build-arg BASE=$BASE_IMAGE \\",
        "    --build-arg OS_DISTRIBUTION=$OS_DISTRIBUTION --build-arg OS_VERSION=$OS_VERSION \\",
        "    --build-arg HTTP_PROXY=$HTTP_PROXY --build-arg HTTPS_PROXY=$HTTPS_PROXY \\",
        "    --build-arg NO_PROXY=$NO_PROXY .",
        "",
        '    IF [ "$IS_JETSON" = "true" ]',
        "        COPY cloudconfigs/mount.yaml /etc/kairos/mount.yaml",
        "    END",
        "",
        "    # OS == Ubuntu",
        '    IF [ "$OS_DISTRIBUTION" = "ubuntu" ] &&  [ "$ARCH" = "amd64" ]',
        *pro,
        "",
        '        LET APT_UPGRADE_FLAGS="-y"' if shape != "v4.4.12" else "        # (apt-get install ... -y)",
        '        IF [ "$UPDATE_KERNEL" = "false" ]',
        '            RUN echo "apt-mark hold linux-image-generic" >> /var/log/apt-history.log',
        "        ELSE",
        '            SET APT_UPGRADE_FLAGS="-y --with-new-pkgs"' if shape != "v4.4.12"
        else '            RUN echo "install linux-image-generic-hwe-$OS_VERSION" >> /var/log/apt-history.log',
        "        END",
        *amd,
    ]
    if shape == "v4.4.12":
        base_image += proxy_cert
    base_image += [
        "    END",
        "",
        '    IF [ "$CIS_HARDENING" = "true" ]',
        '        RUN echo "cis hardening" >> /var/log/harden.log',
        "    END",
        '    RUN echo "PE_VERSION=$PE_VERSION" > /etc/spectro-base',
    ]
    iso_body_cmd = [
        "    # upstream: osbuilder's /entrypoint.sh build-iso --overlay-iso /overlay dir:/build/image "
        "(auroraboot on main); here the double's build-iso (xorriso) over the same overlay",
        '    RUN mkdir -p /iso && build-iso COS_LIVE "/iso/$ISO_NAME.iso" /overlay',
    ]
    targets: dict[str, list[str]] = {
        "build-all-images": [
            "    DO +STANDIN_KNOBS",
            "    IF $FIPS_ENABLED",
            "        BUILD +build-provider-images-fips --STANDIN_NESTED=1",
            "    ELSE",
            "        BUILD +build-provider-images --STANDIN_NESTED=1",
            "    END",
            '    IF [ "$ARCH" = "arm64" ]',
            "        BUILD --platform=linux/arm64 +iso-image",
            "        BUILD --platform=linux/arm64 +iso --STANDIN_NESTED=1",
            '    ELSE IF [ "$ARCH" = "amd64" ]',
            "        BUILD --platform=linux/amd64 +iso-image",
            "        BUILD --platform=linux/amd64 +iso --STANDIN_NESTED=1",
            "    END",
        ],
        "build-provider-images": [
            "    FROM $ALPINE_IMG",
            "    DO +STANDIN_KNOBS",
            "",
            '    IF [ !-n "$K8S_DISTRIBUTION"]',
            '        RUN echo "K8S_DISTRIBUTION is not set. Please set K8S_DISTRIBUTION to kubeadm, kubeadm-fips, k3s, '
            'nodeadm, rke2 or canonical." && exit 1',
            "    END",
            "",
            '    IF [ "$IS_UKI" = "true" ]',
            "        ARG TARGET=uki-provider-image",
            "    ELSE",
            "        ARG TARGET=provider-image",
            "    END",
            "",
            '    IF [ "$K8S_VERSION" = "" ]',
            "        WORKDIR /workdir",
            "        COPY k8s_version.json k8s_version.json",
            "        ENV K8S_DISTRIBUTION=$K8S_DISTRIBUTION",
            "        # upstream: jq -r --arg key \"$K8S_DISTRIBUTION\" 'if .[$key] then .[$key][] else empty end'",
            "        RUN tr -d ' \\n\\t' < k8s_version.json | \\",
            "            sed -n \"s/.*\\\"$K8S_DISTRIBUTION\\\":\\[\\([^]]*\\)\\].*/\\1/p\" | \\",
            "            tr -d '\"' | tr ',' '\\n' > k8s_version.txt",
            "        FOR version IN $(cat k8s_version.txt)",
            "            BUILD +$TARGET --K8S_VERSION=$version",
            "        END",
            "    ELSE",
            "        BUILD +$TARGET --K8S_VERSION=$K8S_VERSION",
            "    END",
        ],
        "build-provider-images-fips": ["   BUILD +build-provider-images"],
        "iso-image-rootfs": [
            "    FROM --platform=linux/${ARCH} +iso-image",
            "    SAVE ARTIFACT --keep-own /. rootfs",
        ],
        "uki-provider-image": [
            "    FROM --platform=linux/${ARCH} +base-image",
            "    COPY +kairos-agent/kairos-agent /usr/bin/kairos-agent",
            '    COPY --if-exists "$EDGE_CUSTOM_CONFIG" /oem/.edge_custom_config.yaml',
            "    SAVE IMAGE --push $IMAGE_PATH",
        ],
        "kairos-agent": [
            "    FROM --platform=linux/${ARCH} $BASE_IMAGE",
            "    SAVE ARTIFACT /usr/bin/kairos-agent /kairos-agent",
        ],
        "build-uki-iso": [
            "    FROM --platform=linux/${ARCH} $OSBUILDER_IMAGE",
            "    ENV ISO_NAME=${ISO_NAME}",
            "    COPY overlay/files-iso/ /overlay/",
            "    COPY --if-exists +validate-user-data/user-data /overlay/config.yaml",
            '    COPY --if-exists "$EDGE_CUSTOM_CONFIG" /overlay/.edge_custom_config.yaml',
            "    WORKDIR /build",
            "    COPY --platform=linux/${ARCH} --keep-own +iso-image-rootfs/rootfs /build/image",
            "    COPY secure-boot/enrollment/ secure-boot/private-keys/ secure-boot/public-keys/ /keys",
            "    # upstream: enki build-uki dir:/build/image --overlay-iso /overlay -t iso -d /iso -k /keys",
            '    RUN mkdir -p /iso && build-iso --uefi-only UKI_ISO /iso/uki.iso /overlay',
            "    WORKDIR /iso",
            "    RUN mv /iso/*.iso $ISO_NAME.iso",
            "    SAVE ARTIFACT /iso/*",
        ],
        "iso": [
            "    DO +STANDIN_KNOBS",
            "    WORKDIR /build",
            '    IF [ "$IS_UKI" = "true" ]',
            "        COPY --platform=linux/${ARCH} +build-uki-iso/ .",
            "    ELSE",
            "        COPY --keep-ts --platform=linux/${ARCH} +build-iso/ .",
            "    END",
            "    SAVE ARTIFACT /build/* AS LOCAL ./build/",
        ],
        "validate-user-data": [
            "    FROM --platform=linux/${TARGETARCH} $CLI_IMAGE",
            "    COPY --if-exists user-data /user-data",
            "    # upstream: /usr/local/bin/palette-edge-cli validate -f /user-data",
            "    RUN if [ -f /user-data ]; then \\",
            "            head -n 1 /user-data | grep -q '^#cloud-config' && echo \"user-data is valid\"; \\",
            "        else \\",
            '            echo "user-data file does not exist."; \\',
            "        fi",
            "    SAVE ARTIFACT --if-exists /user-data",
        ],
        "build-iso": [
            "    FROM --platform=linux/${ARCH} " + ("$AURORABOOT_IMAGE" if shape == "main" else "$OSBUILDER_IMAGE"),
            "    ENV ISO_NAME=${ISO_NAME}",
            "    COPY overlay/files-iso/ /overlay/",
            "    COPY --if-exists +validate-user-data/user-data /overlay/files-iso/config.yaml",
            '    COPY --if-exists "$EDGE_CUSTOM_CONFIG" /overlay/.edge_custom_config.yaml',
            *([] if shape == "v4.4.12" else [
                "",
                "    # Generate grub.cfg based on FORCE_INTERACTIVE_INSTALL setting (without modifying source)",
                '    RUN if [ "$FORCE_INTERACTIVE_INSTALL" = "true" ]; then \\',
                "        sed 's/{{DEFAULT_ENTRY}}/2/g' /overlay/boot/grub2/grub.cfg > \\",
                "            /overlay/boot/grub2/grub.cfg.tmp && \\",
                "        mv /overlay/boot/grub2/grub.cfg.tmp /overlay/boot/grub2/grub.cfg; \\",
                "    else \\",
                "        sed 's/{{DEFAULT_ENTRY}}/0/g' /overlay/boot/grub2/grub.cfg > \\",
                "            /overlay/boot/grub2/grub.cfg.tmp && \\",
                "        mv /overlay/boot/grub2/grub.cfg.tmp /overlay/boot/grub2/grub.cfg; \\",
                "    fi",
            ]),
            "",
            "    # Add cluster config (SPC) if provided",
            '    IF [ "$CLUSTERCONFIG" != "" ]',
            '        COPY --if-exists "$CLUSTERCONFIG" /overlay/opt/spectrocloud/clusterconfig/spc.tgz',
            "    END",
            "",
            "    WORKDIR /build",
            "    COPY --platform=linux/${ARCH} --keep-ts --keep-own +iso-image-rootfs/rootfs /build/image",
            *iso_body_cmd,
            "    WORKDIR /iso",
            '    RUN sha256sum "$ISO_NAME.iso" > "$ISO_NAME.iso.sha256"',
            "    SAVE ARTIFACT --keep-ts /iso/*",
        ],
        "uki-genkey": [
            '    ARG MY_ORG="ACME Corp"',
            "    ARG EXPIRATION_IN_DAYS=5475",
            "    FROM --platform=linux/${ARCH} $OSBUILDER_IMAGE",
            "    # upstream: enki genkey -e $EXPIRATION_IN_DAYS -o /keys \"$MY_ORG\"",
            "    RUN mkdir -p /keys /private-keys /public-keys && \\",
            '        for k in PK KEK db; do echo "$MY_ORG $k" > /keys/$k.auth; \\',
            '            echo "$k key" > /private-keys/$k.key; \\',
            '            echo "$k cert" > /public-keys/$k.pem; done',
            "    SAVE ARTIFACT --if-exists /keys AS LOCAL ./secure-boot/enrollment",
            '    IF [ "$UKI_BRING_YOUR_OWN_KEYS" = "false" ]',
            "        SAVE ARTIFACT --if-exists /private-keys AS LOCAL ./secure-boot/private-keys",
            "        SAVE ARTIFACT --if-exists /public-keys AS LOCAL ./secure-boot/public-keys",
            "    END",
        ],
        "provider-image": [
            "    FROM --platform=linux/${ARCH} +base-image",
            "    # upstream: the Kubernetes packages (+install-k8s) and the agent provider (+kairos-provider-image)",
            '    RUN mkdir -p /k8s && echo "$K8S_DISTRIBUTION $K8S_VERSION" > /k8s/version',
            '    COPY --if-exists "$EDGE_CUSTOM_CONFIG" /oem/.edge_custom_config.yaml',
            "    COPY overlay/files/ /",
            "    SAVE IMAGE --push $IMAGE_PATH",
        ],
        "stylus-image": [
            "    FROM --platform=linux/${ARCH} $STYLUS_BASE",
            "    RUN mkdir -p /opt/spectrocloud/bin && echo stylus > /opt/spectrocloud/bin/stylus-agent",
            "    SAVE ARTIFACT --keep-own /opt",
        ],
        "base-image": base_image,
        "iso-image": [
            "    FROM --platform=linux/${ARCH} +base-image",
            "    ARG IS_CLOUD_IMAGE=false",
            "    ARG IMAGE_REGISTRY",
            "",
            "    COPY --keep-ts --platform=linux/${ARCH} +stylus-image/ /",
            "    COPY overlay/files/ /",
            "    RUN rm -f /etc/ssh/ssh_host_* /etc/ssh/moduli",
            "    RUN touch /etc/machine-id \\",
            "        && chmod 444 /etc/machine-id",
            "",
            '    IF [ "$IS_MAAS" = "false" ]',
            "        SAVE IMAGE palette-installer-image:$IMAGE_TAG",
            "    ELSE",
            "        SAVE IMAGE index.docker.io/library/palette-installer-image:latest",
            "    END",
        ],
        "iso-disk-image": [
            "    FROM scratch",
            "    COPY +iso/*.iso /disk/",
            "    SAVE IMAGE --push $IMAGE_REGISTRY/$IMAGE_REPO/$ISO_NAME:$IMAGE_TAG",
        ],
    }
    if shape != "v4.4.12":
        targets["cloud-image"] = [
            "    # upstream: auroraboot in Docker-in-Docker (WITH DOCKER, privileged)",
            "    FROM --allow-privileged earthly/dind:alpine-3.19-docker-25.0.5-r0",
            "    RUN --privileged mkdir -p /output && echo cloud > /output/cloud-image.raw",
            "    SAVE ARTIFACT /output/* AS LOCAL ./build/",
        ]
        targets["kairos-raw-image"] = [
            "    FROM --platform=linux/amd64 --allow-privileged earthly/dind:alpine-3.19-docker-25.0.5-r0",
            "    RUN --privileged echo raw > /kairos.raw",
            "    SAVE ARTIFACT /kairos.raw AS LOCAL ./build/",
        ]
    if shape == "v4.4.12":
        targets["BASE_ALPINE"] = [
            "    COMMAND",
            "    IF [ ! -z $PROXY_CERT_PATH ]",
            "        COPY sc.crt /etc/ssl/certs",
            "        RUN update-ca-certificates",
            "    END",
        ]
    else:
        targets["BASE_ALPINE"] = [
            "    COMMAND",
            "    COPY --if-exists certs/ /etc/ssl/certs/",
            "    RUN update-ca-certificates",
        ]
    targets["STANDIN_KNOBS"] = [
        "    # Test-only (NOT in CanvOS): edgeforge-ext's test knobs as ordinary RUN steps.",
        "    COMMAND",
        "    ARG EARTHLY_TARGET_NAME",
        '    IF [ "$STANDIN_NESTED" != "1" ]',
        '        RUN echo "--> standin earthly building +$EARTHLY_TARGET_NAME (PE_VERSION=$PE_VERSION)"',
        '        IF [ "$STANDIN_SHOW_ENV" = "1" ]',
        "            RUN env | sort | sed 's/^/STANDIN_ENV /'",
        "        END",
        '        IF [ "$STANDIN_ECHO_FILE" != "" ]',
        '            COPY "$STANDIN_ECHO_FILE" /tmp/standin-echo',
        "            RUN cat /tmp/standin-echo",
        "        END",
        '        IF [ "$STANDIN_LOG_LINES" -gt 0 ]',
        '            RUN i=1; while [ "$i" -le "$STANDIN_LOG_LINES" ]; do echo "standin log line $i"; '
        "i=$((i + 1)); done",
        "        END",
        '        IF [ "$STANDIN_SLEEP" != "" ]',
        '            RUN echo "sleeping $STANDIN_SLEEP s" && sleep "$STANDIN_SLEEP"',
        "        END",
        '        IF [ "$STANDIN_FAIL" = "1" ]',
        '            RUN echo "ERROR: the stand-in was told to fail (STANDIN_FAIL=1)" && exit 2',
        "        END",
        "    END",
    ]
    return targets


_ORDER = ("build-all-images", "build-provider-images", "build-provider-images-fips", "BASE_ALPINE",
          "iso-image-rootfs", "uki-provider-image", "kairos-agent", "build-uki-iso", "iso", "validate-user-data",
          "build-iso", "uki-genkey", "provider-image", "stylus-image", "base-image", "iso-image", "cloud-image",
          "iso-disk-image", "kairos-raw-image", "STANDIN_KNOBS")


def earthfile(pe_version: str, shape: str = "v4.10.0") -> str:
    """The Earthfile of the fixture at `shape` (one of SHAPES) with `ARG PE_VERSION=<pe_version>`."""
    if shape not in SHAPES:
        raise ValueError(f"unknown CanvOS shape {shape!r}")
    lines = [*_header(shape, pe_version), *_variables(shape), *_base_image_block(shape)]
    bodies = _targets(shape)
    for name in _ORDER:
        if name in bodies:
            lines.append(f"{name}:")
            lines.extend(bodies[name])
            lines.append("")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------------
# earthly.sh (shortened; the lines a wrapper parses, in the real shape)


def earthly_sh(shape: str) -> str:
    if shape == "v4.4.12":  # real v4.4.12 earthly.sh:1-106
        run = ("docker run --privileged -v ~/.docker/config.json:/root/.docker/config.json "
               "-v /var/run/docker.sock:/var/run/docker.sock --rm --env EARTHLY_BUILD_ARGS -t "
               '-e GLOBAL_CONFIG="$global_config"')
        image = "$SPECTRO_PUB_REPO/earthly/earthly:$EARTHLY_VERSION"
        with_proxy = (
            f"    {run} -e EARTHLY_BUILDKIT_HOST=tcp://0.0.0.0:8372 -e BUILDKIT_TLS_ENABLED=false "
            f'-v "$(pwd)":/workspace -v "$PROXY_CERT_PATH:/workspace/sc.crt:ro" {image} --allow-privileged "$@"\n')
        without_proxy = f'    {run} -v "$(pwd)":/workspace {image} --allow-privileged "$@"\n'
        repo, version, secret = "gcr.io/spectro-images-public", "v0.8.5", ""
        proxy_test = 'if [ -z "$HTTP_PROXY" ] && [ -z "$HTTPS_PROXY"]; then'
        maas = ""
    else:  # real v4.10.0 earthly.sh:1-403
        mount = '${DOCKER_CONFIG_MOUNT:+"$DOCKER_CONFIG_MOUNT"}'
        docker_cfg = ('    DOCKER_CONFIG_MOUNT=""\n    if [ -f "$HOME/.docker/config.json" ]; then\n'
                      '        DOCKER_CONFIG_MOUNT="-v$HOME/.docker/config.json:/root/.docker/config.json"\n    fi\n')
        image = '"$SPECTRO_PUB_REPO"/third-party/edge/earthly/earthly:"$EARTHLY_VERSION"'
        secret_args = ' "${EARTHLY_SECRET_ARGS[@]}"' if shape in ("v4.10.0", "main") else ""
        secret_env = ' "${DOCKER_SECRET_ENV[@]}"' if shape in ("v4.10.0", "main") else ""
        with_proxy = (
            docker_cfg +
            f"    docker run --privileged {mount} -v /var/run/docker.sock:/var/run/docker.sock \\\n"
            '        --rm --env EARTHLY_BUILD_ARGS -t -e GLOBAL_CONFIG="$global_config" \\\n'
            "        -e EARTHLY_BUILDKIT_HOST=tcp://0.0.0.0:8372 -e BUILDKIT_TLS_ENABLED=false \\\n"
            '        -e http_proxy="$HTTP_PROXY" -e HTTPS_PROXY="$HTTPS_PROXY" \\\n'
            f'        -e NO_PROXY="$NO_PROXY"{secret_env} \\\n'
            '        -v "$(pwd)":/workspace -v "$(pwd)/certs:/usr/local/share/ca-certificates:ro" \\\n'
            "        --entrypoint /workspace/earthly-entrypoint.sh \\\n"
            f'        {image} --allow-privileged{secret_args} "$@"\n')
        without_proxy = (
            docker_cfg +
            f"    docker run --privileged {mount} -v /var/run/docker.sock:/var/run/docker.sock --rm --env "
            f'EARTHLY_BUILD_ARGS -t -e GLOBAL_CONFIG="$global_config"{secret_env} -v "$(pwd)":/workspace '
            f'{image} --allow-privileged{secret_args} "$@"\n')
        repo, version = "us-docker.pkg.dev/palette-images", "v0.8.15"
        secret = ""
        if shape in ("v4.10.0", "main"):
            secret = (
                "\n# Secret handling: the Ubuntu Pro token never appears in .arg, argv or docker history.\n"
                "EARTHLY_SECRET_ARGS=()\nDOCKER_SECRET_ENV=()\n"
                'if [ "${UBUNTU_PRO_ATTACH:-false}" = "true" ]; then\n'
                '    if [ -z "${UBUNTU_PRO_KEY:-}" ]; then\n'
                '        read -rs -p "Enter Ubuntu Pro token (input hidden): " UBUNTU_PRO_KEY\n    fi\n'
                "    export UBUNTU_PRO_KEY\n    DOCKER_SECRET_ENV=(-e UBUNTU_PRO_KEY)\n"
                "    EARTHLY_SECRET_ARGS=(--secret UBUNTU_PRO_KEY)\nfi\n")
        secret += ('\n# Workaround to support deprecated field PROXY_CERT_PATH\nif [ -n "$PROXY_CERT_PATH" ]; then\n'
                   "    cp $PROXY_CERT_PATH certs/\nfi\n")
        proxy_test = ('if [ -z "$HTTP_PROXY" ] && [ -z "$HTTPS_PROXY" ] && '
                      "[ -z \"$(find certs -type f ! -name '.*' -print -quit)\" ]; then")
        maas = ('\n# Special handling for MAAS image build: build kairos-raw-image first, then build-kairos-maas.sh\n'
                'if [[ "$1" == "+maas-image" ]]; then\n'
                '    build_without_proxy "+kairos-raw-image" --IS_MAAS=true\n'
                '    bash cloudconfigs/build-kairos-maas.sh build/kairos.raw "${MAAS_IMAGE_NAME:-kairos-ubuntu-maas}"\n'
                "    exit 0\nfi\n")
    amd = ""
    if shape == "main":
        amd = ("\n# AMD GPU driver prebuild (dkms mode only): compiled in a privileged container on the host,\n"
               "# then handed to Earthly as --AMDGPU_ARTIFACT_PATH.\n"
               'if [ "${INSTALL_AMD_GPU_DRIVERS:-false}" = "true" ] && \\\n'
               '        [ "${AMDGPU_DRIVER_SOURCE:-dkms}" = "dkms" ]; then\n'
               '    prebuild_out="$(AMDGPU_ARTIFACT_DIR="$(pwd)/build" bash scripts/prebuild-amdgpu-artifact.sh)"\n'
               "    AMDGPU_ARTIFACT_PATH=\"$(printf '%s\\n' \"$prebuild_out\" | tail -1 | "
               "sed -n 's/^AMDGPU_ARTIFACT_PATH=//p')\"\n"
               '    set -- "$@" "--AMDGPU_ARTIFACT_PATH=${AMDGPU_ARTIFACT_PATH#$(pwd)/}"\nfi\n')
    return (
        "#!/bin/bash\n# CanvOS's Earthly wrapper, shortened for the test fixture (edgeforge-ext does not run it).\n\n"
        f"function build_with_proxy() {{\n{with_proxy}}}\n\n"
        f"function build_without_proxy() {{\n{without_proxy}}}\n\n"
        "function print_os_pack() {\n"
        "    echo -e 'options:'\n"
        "    echo -e '  system.uri: \"{{ .spectro.pack.edge-native-byoi.options.system.registry }}/"
        "{{ .spectro.pack.edge-native-byoi.options.system.repo }}:"
        "{{ .spectro.pack.edge-native-byoi.options.system.k8sDistribution }}-{{ .spectro.system.kubernetes.version }}-"
        "{{ .spectro.pack.edge-native-byoi.options.system.peVersion }}-"
        "{{ .spectro.pack.edge-native-byoi.options.system.customTag }}\"'\n"
        '    echo -e "  system.registry: $IMAGE_REGISTRY"\n    echo -e "  system.repo: $IMAGE_REPO"\n'
        '    echo -e "  system.k8sDistribution: $K8S_DISTRIBUTION"\n    echo -e "  system.osName: $OS_DISTRIBUTION"\n'
        '    echo -e "  system.peVersion: $PE_VERSION"\n    echo -e "  system.customTag: $CUSTOM_TAG"\n'
        '    echo -e "  system.osVersion: $OS_VERSION"\n}\n\n'
        'global_config="{disable_analytics: true}"\n'
        "PE_VERSION=$(git describe --abbrev=0 --tags)\n"
        f"SPECTRO_PUB_REPO={repo}\n"
        f"EARTHLY_VERSION={version}\n"
        "source .arg\n"
        f"{secret}{maas}{amd}\n"
        f"{proxy_test}\n"
        '    build_without_proxy "$@"\nelse\n    build_with_proxy "$@"\nfi\n\n'
        '# Verify the command was successful\nif [ $? -ne 0 ]; then\n'
        '    echo "An error occurred while running the command."\n    exit 1\nfi\n\n'
        'if [[ "$1" == "+uki-genkey" ]]; then\n    ./keys.sh secure-boot/\nfi\n\n'
        'targets=("+build-provider-images" "+build-provider-images-fips" "+build-all-images")\n'
        'for arg in "${targets[@]}"; do\n    if [[ "$1" == "$arg" ]]; then\n        print_os_pack\n    fi\ndone\n'
    )


# Real v4.9.38 earthly-entrypoint.sh (CanvOS's copy of Earthly's, update-ca-certificates first), shortened.
EARTHLY_ENTRYPOINT = """\
#!/bin/sh
# uncomment the line below to enable debug mode
set -ex
update-ca-certificates

# reference: https://github.com/earthly/earthly/blob/main/earthly-entrypoint.sh
earthly_config="/etc/.earthly/config.yml"
if [ ! -f "$earthly_config" ]; then
    mkdir -p "$(dirname $earthly_config)" && touch "$earthly_config"
    if [ -n "$GLOBAL_CONFIG" ]; then
        earthly --config "$earthly_config" config global "$GLOBAL_CONFIG"
    fi
fi

if [ -z "$NO_BUILDKIT" ]; then
    if [ -z "$BUILDKIT_HOST" ]; then
        if ! captest --text | grep sys_admin >/dev/null; then
            echo 1>&2 "Container appears to be running unprivileged." \
                "Currently, privileged mode is required when buildkit runs inside the container."
            echo 1>&2 "To run this image without buildkit, set the environment variable NO_BUILDKIT=1"
            exit 1
        fi
        earthly --config "$earthly_config" --buildkit-host=tcp://127.0.0.1:8372 bootstrap \
            --certs-hostname="$(hostname)" --no-buildkit --force-certificate-generation
        [ -f /etc/ca.pem ] || ln -s /root/.earthly/certs/ca_cert.pem /etc/ca.pem
        [ -f /etc/cert.pem ] || ln -s /root/.earthly/certs/buildkit_cert.pem /etc/cert.pem
        [ -f /etc/key.pem ] || ln -s /root/.earthly/certs/buildkit_key.pem /etc/key.pem
        export BUILDKIT_TCP_TRANSPORT_ENABLED=true
        export BUILDKIT_TLS_ENABLED=true
        /usr/bin/entrypoint.sh buildkitd --config=/etc/buildkitd.toml >/var/log/buildkitd.log 2>&1 &
        EARTHLY_BUILDKIT_HOST="tcp://$(hostname):8372"
        export EARTHLY_BUILDKIT_HOST
    else
        export EARTHLY_BUILDKIT_HOST="$BUILDKIT_HOST"
    fi
fi

# Run earthly with given args.
exec earthly --config "$earthly_config" "$@"
"""


def dockerfile(shape: str) -> str:
    if shape == "v4.4.12":  # real v4.4.12 Dockerfile:1-20
        return ("ARG BASE\nFROM $BASE\n\nARG OS_DISTRIBUTION\nARG PROXY_CERT_PATH\nARG HTTP_PROXY\nARG HTTPS_PROXY\n"
                "ARG NO_PROXY\n\nCOPY sc.cr[t] /tmp/sc.crt\n"
                'RUN if [ "${OS_DISTRIBUTION}" = "ubuntu" ] && [ "${PROXY_CERT_PATH}" != "" ]; then \\\n'
                "    cp /tmp/sc.crt /etc/ssl/certs && \\\n    update-ca-certificates; \\\n    fi\n\n"
                "########################### Add any other image customizations here #######################\n")
    return ("ARG BASE\nFROM $BASE\n\nARG OS_DISTRIBUTION\nARG PROXY_CERT_PATH\nARG HTTP_PROXY\nARG HTTPS_PROXY\n"
            "ARG NO_PROXY\n\nRUN mkdir -p /certs\nCOPY certs/ /certs/\n"
            'RUN if [ "${OS_DISTRIBUTION}" = "ubuntu" ]; then \\\n'
            "    cp -a /certs/. /usr/local/share/ca-certificates/ && \\\n    update-ca-certificates; \\\n    fi\n"
            "RUN rm -rf /certs\n\n"
            "# This file provides the ability to extend or override GPU specifications in the default lookup table\n"
            "COPY overlay/files/etc/spectrocloud/custom-hardware-specs-lookup.json "
            "/etc/spectrocloud/custom-hardware-specs-lookup.json\n\n"
            "########################### Add any other image customizations here #######################\n")


GRUB_CFG = """\
set default={{DEFAULT_ENTRY}}
set timeout=5
menuentry "Palette eXtended Kubernetes Edge Install" {
    linux /boot/kernel rd.immucore.sysrootwait
}
"""


def tag_files(shape: str, pe_version: str) -> dict[str, str | None]:
    """Every committed file of the fixture in the shape of `shape` (None: the file does not exist there)."""
    k8s = {"v4.4.12": K8S_VERSIONS_V44, "v4.9.38": K8S_VERSIONS_OLD}.get(shape, K8S_VERSIONS)
    files: dict[str, str | None] = {
        "Earthfile": earthfile(pe_version, shape),
        "earthly.sh": earthly_sh(shape),
        ".arg.template": arg_template(shape),
        "Dockerfile": dockerfile(shape),
        "user-data.template": USER_DATA_TEMPLATE,
        "k8s_version.json": json.dumps(k8s, indent=2) + "\n",
        "os_version.json": json.dumps(OS_VERSIONS, indent=2) + "\n",
        ".gitignore": "*.iso\n*.iso.sha256\n*user-data\ncontent-*/*\n.arg\n.secret\nbuild/\nsecure-boot/\nspc.tgz\n",
        ".earthlyignore": "build/\n",
        "overlay/files/Readme.txt": "Files here are copied into the provider and installer images.\n",
        "overlay/files-iso/opt/spectrocloud/content/Readme.txt": "Content bundles go here.\n",
        "README.md": "# CanvOS (test fixture)\n",
    }
    if shape == "v4.4.12":
        files.update({"earthly-entrypoint.sh": None, "certs/.gitkeep": None,
                      "overlay/files-iso/boot/grub2/grub.cfg": None,
                      "overlay/files/etc/spectrocloud/custom-hardware-specs-lookup.json": None})
    else:
        files.update({
            "earthly-entrypoint.sh": EARTHLY_ENTRYPOINT,
            "certs/.gitkeep": "",
            "overlay/files-iso/boot/grub2/grub.cfg": GRUB_CFG,
            "overlay/files/etc/spectrocloud/custom-hardware-specs-lookup.json": "{}\n",
        })
    return files


# -------------------------------------------------------------------------------------------------------
# The repository


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
    done = subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "advice.detachedHead=false",
                           "-c", "safe.directory=*", *args],
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
    shape: str = "v4.10.0"  # the Earthfile shape new commits get (`commit(pe_version=...)`, `add_tag`)

    def commit(self, message: str, files: Mapping[str, str | None] | None = None,
               *, pe_version: str | None = None, push: bool = True) -> str:
        """Commit on main in the work clone (None deletes a file) and push main; returns the SHA."""
        changes = dict(files or {})
        if pe_version is not None and "Earthfile" not in changes:
            changes["Earthfile"] = earthfile(pe_version, self.shape)
        for name, text in changes.items():
            path = self.work / name
            if text is None:
                if path.exists():
                    path.unlink()
                git(self.work, "rm", "-q", "--cached", "--ignore-unmatch", name)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if name.endswith(".sh"):
                path.chmod(0o755)
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

    History: v4.4.12 -> v4.9.38 (lightweight tag) -> v4.10.0 (Earthfile PE_VERSION=v4.9.21) -> v4.10.1-rc.1
    -> main (one commit ahead, Earthfile PE_VERSION=v4.10.0-rc.2, the main-branch shape).
    """
    base.mkdir(parents=True, exist_ok=True)
    bare = base / "CanvOS.git"
    work = base / "canvos-work"
    git(base, "init", "-q", "--bare", str(bare))
    git(base, "init", "-q", str(work))
    repo = CanvosRepo(bare=bare, url=bare.resolve().as_uri(), work=work)
    git(work, "remote", "add", "origin", repo.url)
    repo.shape = "v4.4.12"
    repo.add_tag("v4.4.12", files=tag_files("v4.4.12", "v4.4.12"))
    repo.shape = "v4.9.38"
    repo.add_tag("v4.9.38", files=tag_files("v4.9.38", "v4.9.38"), annotated=False)
    repo.shape = "v4.10.0"
    repo.add_tag("v4.10.0", files=tag_files("v4.10.0", "v4.9.21"))
    repo.add_tag("v4.10.1-rc.1", files={"README.md": "# CanvOS (test fixture)\n\nrc notes\n"})
    repo.shape = "main"
    repo.commit("main: work towards the next release", tag_files("main", "v4.10.0-rc.2"))
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
