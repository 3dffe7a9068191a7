"""The build contract read from a CanvOS tree: Earthfile ARGs and defaults, earthly.sh's image, certificate
mechanism, secrets, host-side steps and BYOOS output. The snippets below are written for these tests in
the shape of the real files at each tag (named in each snippet's comment)."""

from __future__ import annotations

from edgeforge_ext.canvos.contract import PRO_BUILD_ARG, PRO_SECRET, applying_host_steps, read_contract, template_keys
from edgeforge_ext.canvos.earthfile import copy_sources, parse_earthfile
from edgeforge_ext.canvos.earthly_script import CERTS_DIR, NO_CERTS, PROXY_CERT_PATH, parse_earthly_script

# Shape of CanvOS v4.9.38's Earthfile head (~lines 1-125): ARGs with and without defaults, BASE_IMAGE only
# as a default inside IF, a LET switch, a function (BASE_ALPINE), trailing comments.
EARTHFILE_V49 = """\
VERSION --arg-scope-and-set --shell-out-anywhere 0.6
ARG TARGETARCH
ARG SPECTRO_PUB_REPO=us-docker.pkg.dev/palette-images
ARG FIPS_ENABLED=false
IF [ "$FIPS_ENABLED" = "true" ]
    LET SPECTRO_PUB_REPO=us-docker.pkg.dev/palette-images-fips
END
ARG KAIROS_BASE_IMAGE_URL=$SPECTRO_PUB_REPO/edge
ARG PE_VERSION=v4.9.38
ARG KAIROS_VERSION=v4.0.4
ARG OS_DISTRIBUTION
ARG OS_VERSION
ARG K8S_VERSION
ARG IMAGE_REGISTRY
ARG IMAGE_REPO=$OS_DISTRIBUTION
ARG ISO_NAME=installer   # the ISO file name
ARG K8S_DISTRIBUTION
ARG CUSTOM_TAG
ARG CLUSTERCONFIG
ARG EDGE_CUSTOM_CONFIG=.edge-custom-config.yaml
ARG ARCH
ARG CIS_HARDENING=false
ARG HTTP_PROXY
ARG HTTPS_PROXY
ARG NO_PROXY
ARG UPDATE_KERNEL=false
ARG UBUNTU_PRO_KEY
ARG IS_UKI=false
IF [ "$OS_DISTRIBUTION" = "ubuntu" ] && [ "$BASE_IMAGE" = "" ]
    IF [ "$OS_VERSION" == 22 ]
        ARG BASE_IMAGE_TAG=kairos-$OS_DISTRIBUTION:$OS_VERSION.04-core
    ELSE
        ARG BASE_IMAGE_TAG=kairos-$OS_DISTRIBUTION:$OS_VERSION-core
    END
    ARG BASE_IMAGE=$KAIROS_BASE_IMAGE_URL/$BASE_IMAGE_TAG
ELSE IF [ "$OS_DISTRIBUTION" = "rhel" ]
    ARG BASE_IMAGE
END

build-all-images:
    BUILD +build-provider-images
    BUILD +iso

BASE_ALPINE:
    COMMAND
    RUN update-ca-certificates

build-iso:
    FROM alpine
    COPY --if-exists user-data /overlay/files-iso/config.yaml
    RUN sha256sum $ISO_NAME.iso > $ISO_NAME.iso.sha256

build-uki-iso:
    FROM alpine
    COPY overlay/files-iso/ /overlay/
    COPY secure-boot/enrollment/ secure-boot/private-keys/ /keys
    COPY --if-exists "$EDGE_CUSTOM_CONFIG" /overlay/.edge_custom_config.yaml
    COPY +stylus-image-pack/stylus-image.tar /overlay/stylus-image.tar

base-image:
    FROM DOCKERFILE --build-arg BASE=$BASE_IMAGE .
    RUN --privileged \\
        echo hi
"""

# v4.10.0 differs: the Ubuntu Pro token is an Earthly secret behind UBUNTU_PRO_ATTACH.
EARTHFILE_V410 = EARTHFILE_V49.replace("ARG UBUNTU_PRO_KEY\n", "ARG UBUNTU_PRO_ATTACH=false\n").replace(
    "base-image:\n", 'base-image:\n    IF [ "$UBUNTU_PRO_ATTACH" = "true" ]\n'
    "        RUN --secret UBUNTU_PRO_KEY pro attach\n    END\n")

# Shape of CanvOS v4.4.12's earthly.sh: v0.8.5 from gcr.io, PROXY_CERT_PATH at /workspace/sc.crt, the
# Docker config always mounted, keys.sh after +uki-genkey.
SCRIPT_V44 = """\
#!/bin/bash
function build_with_proxy() {
    docker run --privileged -v ~/.docker/config.json:/root/.docker/config.json --rm --env EARTHLY_BUILD_ARGS -t \
-e GLOBAL_CONFIG="$global_config" -v "$(pwd)":/workspace -v "$PROXY_CERT_PATH:/workspace/sc.crt:ro" \
$SPECTRO_PUB_REPO/earthly/earthly:$EARTHLY_VERSION --allow-privileged "$@"
}

function build_without_proxy() {
    docker run --privileged -v ~/.docker/config.json:/root/.docker/config.json \\
        -v /var/run/docker.sock:/var/run/docker.sock --rm --env EARTHLY_BUILD_ARGS -t \\
        -e GLOBAL_CONFIG="$global_config" -v "$(pwd)":/workspace \\
        $SPECTRO_PUB_REPO/earthly/earthly:$EARTHLY_VERSION --allow-privileged "$@"
}

function print_os_pack() {
    echo -e '####'
    echo -e 'pack:'
    echo -e '  content:'
    echo -e 'options:'
    echo -e '  system.uri: "{{ .spectro.x }}"'
    echo -e '\\n'
    echo -e "  system.registry: $IMAGE_REGISTRY"
    echo -e "  system.osVersion: $OS_VERSION"
}

global_config="{disable_analytics: true}"
PE_VERSION=$(git describe --abbrev=0 --tags)
SPECTRO_PUB_REPO=gcr.io/spectro-images-public
EARTHLY_VERSION=v0.8.5
source .arg
if ! docker run --rm --privileged $ALPINE_IMG sh -c 'echo "Privileged container test"' &>/dev/null; then
    echo "Privileged containers are not allowed for the current user."
    exit 1
fi
if [ -z "$HTTP_PROXY" ] && [ -z "$HTTPS_PROXY"]; then
    build_without_proxy "$@"
else
    build_with_proxy "$@"
fi
if [[ "$1" == "+uki-genkey" ]]; then
    ./keys.sh secure-boot/
fi
"""

# Shape of CanvOS main's earthly.sh additions: v0.8.15 from us-docker.pkg.dev, certs/, the Docker config
# when present, the Ubuntu Pro secret, the MAAS special case and the AMD GPU dkms prebuild.
SCRIPT_MAIN = """\
#!/bin/bash
function build_without_proxy() {
    DOCKER_CONFIG_MOUNT=""
    if [ -f "$HOME/.docker/config.json" ]; then
        DOCKER_CONFIG_MOUNT="-v$HOME/.docker/config.json:/root/.docker/config.json"
    fi
    docker run --privileged ${DOCKER_CONFIG_MOUNT:+"$DOCKER_CONFIG_MOUNT"} \\
        -v /var/run/docker.sock:/var/run/docker.sock --rm --env EARTHLY_BUILD_ARGS -t \\
        -e GLOBAL_CONFIG="$global_config" "${DOCKER_SECRET_ENV[@]}" -v "$(pwd)":/workspace \\
        "$SPECTRO_PUB_REPO"/third-party/edge/earthly/earthly:"$EARTHLY_VERSION" --allow-privileged \\
        "${EARTHLY_SECRET_ARGS[@]}" "$@"
}
function build_with_proxy() {
    docker run --privileged -v "$(pwd)/certs:/usr/local/share/ca-certificates:ro" \\
        --entrypoint /workspace/earthly-entrypoint.sh \\
        "$SPECTRO_PUB_REPO"/third-party/edge/earthly/earthly:"$EARTHLY_VERSION" --allow-privileged "$@"
}
SPECTRO_PUB_REPO=us-docker.pkg.dev/palette-images
EARTHLY_VERSION=v0.8.15
source .arg
# Avoid `earthly --secret UBUNTU_PRO_KEY=<token>` on the command line (a comment, not a secret).
EARTHLY_SECRET_ARGS=()
if [ "${UBUNTU_PRO_ATTACH:-false}" = "true" ]; then
    if [ -z "${UBUNTU_PRO_KEY:-}" ]; then
        echo "Error: Empty Ubuntu Pro token. Aborting."
        exit 1
    fi
    EARTHLY_SECRET_ARGS=(--secret UBUNTU_PRO_KEY)
fi
if [ -n "$PROXY_CERT_PATH" ]; then
    cp $PROXY_CERT_PATH certs/
fi
if [[ "$1" == "+maas-image" ]]; then
    echo "=== Building MAAS image: Step 1 ==="
    build_without_proxy "+kairos-raw-image" --IS_MAAS=true
    exit 0
fi
peek_arg() {
    local key="$1"
}
INSTALL_AMD_GPU_DRIVERS_EFFECTIVE="$(peek_arg INSTALL_AMD_GPU_DRIVERS "$@")"
INSTALL_AMD_GPU_DRIVERS_EFFECTIVE="${INSTALL_AMD_GPU_DRIVERS_EFFECTIVE:-${INSTALL_AMD_GPU_DRIVERS:-false}}"
AMDGPU_DRIVER_SOURCE_EFFECTIVE="$(peek_arg AMDGPU_DRIVER_SOURCE "$@")"
AMDGPU_DRIVER_SOURCE_EFFECTIVE="${AMDGPU_DRIVER_SOURCE_EFFECTIVE:-${AMDGPU_DRIVER_SOURCE:-dkms}}"
if [ "$INSTALL_AMD_GPU_DRIVERS_EFFECTIVE" = "true" ] && [ "$AMDGPU_DRIVER_SOURCE_EFFECTIVE" = "dkms" ]; then
    if [ -z "$X" ]; then
        echo "nested, not the name"
    fi
    echo "=== Pre-building AMD amdgpu driver (dkms mode) ==="
    bash scripts/prebuild-amdgpu-artifact.sh
fi
if [ -z "$HTTP_PROXY" ] && [ -z "$HTTPS_PROXY" ] && [ -z "$(find certs -type f ! -name '.*' -print -quit)" ]; then
    build_without_proxy "$@"
else
    build_with_proxy "$@"
fi
"""


def test_earthfile_args_defaults_and_derived_ones():
    earthfile = parse_earthfile(EARTHFILE_V49)
    assert earthfile.version.endswith("0.6")
    assert {"PE_VERSION", "OS_DISTRIBUTION", "BASE_IMAGE", "BASE_IMAGE_TAG", "TARGETARCH"} <= earthfile.declared
    assert earthfile.base_default("ISO_NAME") == "installer"  # the trailing comment is not the value
    assert earthfile.base_default("OS_DISTRIBUTION") is None and not earthfile.has_default("OS_DISTRIBUTION")
    assert earthfile.has_default("BASE_IMAGE") and earthfile.base_default("BASE_IMAGE") is None
    assert earthfile.derived() == ("BASE_IMAGE_TAG", "BASE_IMAGE")
    assert earthfile.defaults()["SPECTRO_PUB_REPO"] == "us-docker.pkg.dev/palette-images"


def test_earthfile_targets_exclude_functions_and_see_secrets_and_privileges():
    earthfile = parse_earthfile(EARTHFILE_V410)
    assert earthfile.targets == ("build-all-images", "build-iso", "build-uki-iso", "base-image")
    assert earthfile.run_secrets == ("UBUNTU_PRO_KEY",)
    assert earthfile.privileged_runs == ("base-image",)  # a continued `RUN --privileged \\` line
    # What +build-uki-iso needs from the checkout (no --if-exists, no artifact, no variable).
    assert copy_sources(earthfile, "build-uki-iso") == (
        "overlay/files-iso/", "secure-boot/enrollment/", "secure-boot/private-keys/")


def test_ubuntu_pro_mode_follows_the_tag():
    def contract(earthfile: str):
        return read_contract(lambda name: earthfile if name == "Earthfile" else None)

    assert contract(EARTHFILE_V49).ubuntu_pro == PRO_BUILD_ARG
    assert contract(EARTHFILE_V410).ubuntu_pro == PRO_SECRET
    assert contract(EARTHFILE_V410.replace("ARG UBUNTU_PRO_ATTACH=false\n", "")
                    .replace("RUN --secret UBUNTU_PRO_KEY", "RUN true")).ubuntu_pro is None


def test_earthly_sh_v4_4_image_certs_docker_config_and_os_pack():
    script = parse_earthly_script(SCRIPT_V44)
    assert script.earthly_image == "gcr.io/spectro-images-public/earthly/earthly:v0.8.5"
    assert script.earthly_version == "v0.8.5"
    assert script.cert_mechanism == PROXY_CERT_PATH
    assert script.docker_config == "always"
    assert script.secrets == ()
    assert script.os_pack_lines == ("pack:", "  content:", "options:", '  system.uri: "{{ .spectro.x }}"', "", "",
                                    "  system.registry: $IMAGE_REGISTRY", "  system.osVersion: $OS_VERSION")
    # The privilege check and the proxy dispatch are done by the tool itself; keys.sh is for another target.
    [step] = script.host_steps
    assert step.condition.target == "uki-genkey" and step.summary == "./keys.sh secure-boot/"


def test_earthly_sh_main_secrets_and_host_steps():
    script = parse_earthly_script(SCRIPT_MAIN)
    assert script.earthly_image == "us-docker.pkg.dev/palette-images/third-party/edge/earthly/earthly:v0.8.15"
    assert script.cert_mechanism == CERTS_DIR and script.docker_config == "if-present"
    assert [s.name for s in script.secrets] == ["UBUNTU_PRO_KEY"]  # not the one in a comment
    [secret] = script.secrets
    assert secret.condition is not None and secret.condition.args == (("UBUNTU_PRO_ATTACH", "false", "=", "true"),)
    maas, amd = script.host_steps
    assert maas.condition.target == "maas-image" and maas.summary == "Building MAAS image: Step 1"
    assert amd.summary == "Pre-building AMD amdgpu driver (dkms mode)"
    assert amd.condition.args == (("INSTALL_AMD_GPU_DRIVERS", "false", "=", "true"),
                                  ("AMDGPU_DRIVER_SOURCE", "dkms", "=", "dkms"))


def test_host_steps_apply_only_for_the_options_that_trigger_them():
    contract = read_contract(lambda name: {"Earthfile": EARTHFILE_V410, "earthly.sh": SCRIPT_MAIN}.get(name))
    assert applying_host_steps(contract, "build-all-images", {"OS_DISTRIBUTION": "ubuntu"}) == ([], [])
    certain, unknown = applying_host_steps(contract, "iso", {"INSTALL_AMD_GPU_DRIVERS": "true"})
    assert [s.summary for s in certain] == ["Pre-building AMD amdgpu driver (dkms mode)"] and unknown == []
    inbox = {"INSTALL_AMD_GPU_DRIVERS": "true", "AMDGPU_DRIVER_SOURCE": "inbox"}
    assert applying_host_steps(contract, "iso", inbox) == ([], [])
    assert [s.summary for s in applying_host_steps(contract, "maas-image", {})[0]] == ["Building MAAS image: Step 1"]


def test_a_tree_without_earthly_sh_or_with_an_unknown_image():
    contract = read_contract(lambda name: EARTHFILE_V49 if name == "Earthfile" else None)
    assert contract.script is None and contract.earthly_image is None and contract.cert_mechanism == NO_CERTS
    odd = parse_earthly_script("function build_without_proxy() {\n  docker run $IMAGE_FROM_ELSEWHERE "
                               "--allow-privileged \"$@\"\n}\n")
    assert odd.earthly_image is None and "could not be expanded" in odd.warnings[0]


def test_template_keys_include_commented_options():
    text = "CUSTOM_TAG=demo\nHTTP_PROXY=\n# IS_UKI=true\n# MY_ORG=\"ACME\"\n# prose, not a key\n"
    assert template_keys(text) == ("CUSTOM_TAG", "HTTP_PROXY", "IS_UKI", "MY_ORG")
