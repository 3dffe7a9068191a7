"""Every image a CanvOS build pulls, read from its Earthfile for the chosen options (canvos/earthfile_eval.py,
canvos/build_inputs.py), on an Earthfile shaped like CanvOS v4.10.0's (its ARG chains, the FIPS LET, the
BASE_IMAGE IF, the provider IF chain, FROM DOCKERFILE, COPY (+t --arg), DO functions, a luet RUN)."""

from __future__ import annotations

from edgeforge_ext.canvos.build_inputs import find_build_inputs
from edgeforge_ext.canvos.contract import BuildContract
from edgeforge_ext.canvos.earthfile import parse_earthfile
from edgeforge_ext.canvos.earthfile_eval import Var, condition, evaluate

EARTHFILE = """\
VERSION --arg-scope-and-set --shell-out-anywhere 0.6
ARG TARGETOS
ARG TARGETARCH

ARG SPECTRO_PUB_REPO=us-docker.pkg.dev/palette-images
ARG BUILDER_3RDPARTY_VERSION=4.8
ARG SPECTRO_THIRD_PARTY_IMAGE=us-docker.pkg.dev/palette-images/third-party/spectro-third-party:$BUILDER_3RDPARTY_VERSION
ARG ALPINE_TAG=3.20
ARG ALPINE_IMG=$SPECTRO_PUB_REPO/edge/canvos/alpine:$ALPINE_TAG
FROM $ALPINE_IMG

ARG FIPS_ENABLED=false
IF [ "$FIPS_ENABLED" = "true" ] && [ "$SPECTRO_PUB_REPO" = "us-docker.pkg.dev/palette-images" ]
    LET SPECTRO_PUB_REPO=us-docker.pkg.dev/palette-images-fips
    LET ALPINE_IMG=$SPECTRO_PUB_REPO/edge/canvos/alpine:$ALPINE_TAG
END
ARG SPECTRO_LUET_REPO=us-docker.pkg.dev/palette-images/edge
ARG KAIROS_BASE_IMAGE_URL=$SPECTRO_PUB_REPO/edge
ARG PE_VERSION=v4.9.21
ARG KAIROS_VERSION=v4.0.4
ARG K3S_FLAVOR_TAG=k3s1
ARG OSBUILDER_VERSION=v0.400.3
ARG OSBUILDER_IMAGE=quay.io/kairos/osbuilder-tools:$OSBUILDER_VERSION
ARG AURORABOOT_IMAGE=quay.io/kairos/auroraboot:v0.16.0
ARG K3S_PROVIDER_VERSION=v4.9.4
ARG RKE2_PROVIDER_VERSION=v4.9.3
ARG OS_DISTRIBUTION
ARG OS_VERSION
ARG K8S_VERSION
ARG K8S_DISTRIBUTION
ARG ARCH
ARG IS_UKI=false

IF [ "$OS_DISTRIBUTION" = "ubuntu" ] && [ "$BASE_IMAGE" = "" ]
    IF [ "$OS_VERSION" == 22 ] || [ "$OS_VERSION" == 20 ]
        ARG BASE_IMAGE_TAG=kairos-$OS_DISTRIBUTION:$OS_VERSION.04-core-$ARCH-generic-$KAIROS_VERSION
    ELSE
        ARG BASE_IMAGE_TAG=kairos-$OS_DISTRIBUTION:$OS_VERSION-core-$ARCH-generic-$KAIROS_VERSION
    END
    ARG BASE_IMAGE=$KAIROS_BASE_IMAGE_URL/$BASE_IMAGE_TAG
ELSE IF [ "$OS_DISTRIBUTION" = "rhel" ] || [ "$OS_DISTRIBUTION" = "sles" ]
    ARG BASE_IMAGE
END

ARG STYLUS_BASE=$SPECTRO_PUB_REPO/edge/stylus-framework-linux-$ARCH:$PE_VERSION
IF [ "$FIPS_ENABLED" = "true" ]
    ARG CLI_IMAGE=$SPECTRO_PUB_REPO/edge/palette-edge-cli-fips-${TARGETARCH}:${PE_VERSION}
ELSE
    ARG CLI_IMAGE=$SPECTRO_PUB_REPO/edge/palette-edge-cli-${TARGETARCH}:${PE_VERSION}
END

build-all-images:
    IF $FIPS_ENABLED
        BUILD +build-provider-images-fips
    ELSE
        BUILD +build-provider-images
    END
    BUILD --platform=linux/amd64 +iso-image
    BUILD --platform=linux/amd64 +iso

build-provider-images:
    FROM $ALPINE_IMG
    IF [ "$K8S_VERSION" = "" ]
        FOR version IN $(cat k8s_version.txt)
            BUILD +provider-image --K8S_VERSION=$version
        END
    ELSE
        BUILD +provider-image --K8S_VERSION=$K8S_VERSION
    END

build-provider-images-fips:
   BUILD +build-provider-images

BASE_ALPINE:
    COMMAND
    COPY --if-exists certs/ /etc/ssl/certs/

provider-image:
    FROM --platform=linux/${ARCH} +base-image
    IF [ -f /etc/logrotate.d/stylus.conf ]
        RUN chmod 644 /etc/logrotate.d/stylus.conf
    END
    COPY --platform=linux/${ARCH} +kairos-provider-image/ /
    COPY +stylus-image/etc/kairos/branding /etc/kairos/branding
    COPY --keep-ts +install-k8s/output/ /
    COPY (+third-party/etcdctl --binary=etcdctl) /usr/bin/

kairos-provider-image:
    IF [ "$K8S_DISTRIBUTION" = "k3s" ]
        ARG PROVIDER_BASE=$SPECTRO_PUB_REPO/edge/kairos-io/provider-k3s:$K3S_PROVIDER_VERSION
    ELSE IF [ "$K8S_DISTRIBUTION" = "rke2" ] && $FIPS_ENABLED
        ARG PROVIDER_BASE=$SPECTRO_PUB_REPO/edge/kairos-io/provider-rke2:$RKE2_PROVIDER_VERSION
    ELSE IF [ "$K8S_DISTRIBUTION" = "rke2" ]
        ARG PROVIDER_BASE=$SPECTRO_PUB_REPO/edge/kairos-io/provider-rke2:$RKE2_PROVIDER_VERSION
    END
    FROM --platform=linux/${ARCH} $PROVIDER_BASE
    SAVE ARTIFACT ./*

base-image:
    FROM DOCKERFILE --build-arg BASE=$BASE_IMAGE \\
    --build-arg OS_DISTRIBUTION=$OS_DISTRIBUTION .

stylus-image:
    FROM --platform=linux/${ARCH} $STYLUS_BASE
    SAVE ARTIFACT --keep-ts --keep-own  ./*

install-k8s:
    FROM --platform=linux/${ARCH} $ALPINE_IMG
    DO +BASE_ALPINE
    COPY (+third-party/luet --binary=luet) /usr/bin/luet
    LET LUET_REPO=luet-repo-amd
    RUN luet repo add spectro --type docker --url $SPECTRO_LUET_REPO/$LUET_REPO --priority 1 -y

iso-image:
    FROM --platform=linux/${ARCH} +base-image
    COPY --keep-ts --platform=linux/${ARCH} +stylus-image/ /

iso:
    WORKDIR /build
    IF [ "$IS_UKI" = "true" ]
        COPY --platform=linux/${ARCH} +build-uki-iso/ .
    ELSE
        COPY --keep-ts --platform=linux/${ARCH} +build-iso/ .
    END
    SAVE ARTIFACT /build/* AS LOCAL ./build/

build-iso:
    FROM --platform=linux/${ARCH} $OSBUILDER_IMAGE
    COPY --if-exists +validate-user-data/user-data /overlay/files-iso/config.yaml

validate-user-data:
    FROM --platform=linux/${TARGETARCH} $CLI_IMAGE

secure-boot-dirs:
    FROM --platform=linux/${ARCH} ubuntu:latest

cloud-image:
    FROM --allow-privileged earthly/dind:alpine-3.19-docker-25.0.5-r0
    WITH DOCKER \\
        --pull $AURORABOOT_IMAGE \\
        --load index.docker.io/library/palette-installer-image:latest=(+iso-image --IS_CLOUD_IMAGE=true)
        RUN docker run $AURORABOOT_IMAGE
    END

download-third-party:
    ARG binary
    FROM --platform=$TARGETPLATFORM ${SPECTRO_THIRD_PARTY_IMAGE}

third-party:
    FROM $ALPINE_IMG
    ARG binary
    COPY (+download-third-party/${binary} --binary=${binary}) /WORKDIR/${binary}
"""
DOCKERFILE = "ARG BASE\nFROM $BASE\nARG OS_DISTRIBUTION\nRUN echo $OS_DISTRIBUTION\n"
UBUNTU_K3S = {"ARCH": "amd64", "OS_DISTRIBUTION": "ubuntu", "OS_VERSION": "22.04", "K8S_DISTRIBUTION": "k3s",
              "K8S_VERSION": "1.32.3", "PE_VERSION": "v4.9.21", "IMAGE_REGISTRY": "ttl.sh", "CUSTOM_TAG": "demo"}
PUB = "us-docker.pkg.dev/palette-images"


def _contract(earthfile: str = EARTHFILE, dockerfile: str | None = DOCKERFILE) -> BuildContract:
    return BuildContract(parse_earthfile(earthfile), None, (), dockerfile)


def _refs(values, target="build-all-images", **kw):
    found = find_build_inputs(_contract(), values, target, None, **kw)
    return {i.ref: i.carried_by for i in found.images}, found


def test_default_ubuntu_k3s_build_pulls_these_images_and_each_registry_has_an_arg():
    refs, found = _refs(UBUNTU_K3S)
    assert refs == {
        f"{PUB}/edge/canvos/alpine:3.20": "SPECTRO_PUB_REPO",
        f"{PUB}/edge/kairos-ubuntu:22.04-core-amd64-generic-v4.0.4": "SPECTRO_PUB_REPO",  # the Dockerfile's FROM
        f"{PUB}/edge/kairos-io/provider-k3s:v4.9.4": "SPECTRO_PUB_REPO",
        f"{PUB}/edge/stylus-framework-linux-amd64:v4.9.21": "SPECTRO_PUB_REPO",
        f"{PUB}/third-party/spectro-third-party:4.8": "SPECTRO_THIRD_PARTY_IMAGE",  # via COPY (+third-party ...)
        "quay.io/kairos/osbuilder-tools:v0.400.3": "OSBUILDER_IMAGE",
        f"{PUB}/edge/palette-edge-cli-amd64:v4.9.21": "SPECTRO_PUB_REPO",  # TARGETARCH from ARCH
    }
    assert "ubuntu:latest" not in " ".join(refs)  # +secure-boot-dirs is not reached by this build
    assert any("$SPECTRO_LUET_REPO" in w and "+install-k8s" in w for w in found.warnings)
    assert not any("named literally" in w for w in found.warnings)


def test_options_choose_the_branches():
    rke2, _ = _refs({**UBUNTU_K3S, "K8S_DISTRIBUTION": "rke2", "OS_VERSION": "22"})
    assert f"{PUB}/edge/kairos-io/provider-rke2:v4.9.3" in rke2
    assert f"{PUB}/edge/kairos-ubuntu:22.04-core-amd64-generic-v4.0.4" in rke2  # the OS_VERSION == 22 branch
    fips, _ = _refs({**UBUNTU_K3S, "FIPS_ENABLED": "true"})
    assert f"{PUB}-fips/edge/canvos/alpine:3.20" in fips  # the base target's LET
    assert f"{PUB}-fips/edge/palette-edge-cli-fips-amd64:v4.9.21" in fips
    rhel, _ = _refs({**UBUNTU_K3S, "OS_DISTRIBUTION": "rhel", "BASE_IMAGE": "registry.example.com/rhel/base:8"})
    assert rhel["registry.example.com/rhel/base:8"] == "BASE_IMAGE"  # the user's own base image
    iso_only, _ = _refs(UBUNTU_K3S, target="iso")
    assert f"{PUB}/edge/kairos-io/provider-k3s:v4.9.4" not in iso_only
    assert "quay.io/kairos/osbuilder-tools:v0.400.3" in iso_only


def test_a_literal_from_is_listed_with_a_warning_and_with_docker_pull_counts():
    refs, found = _refs(UBUNTU_K3S, target="cloud-image")
    assert refs["docker.io/earthly/dind:alpine-3.19-docker-25.0.5-r0"] is None
    assert refs["quay.io/kairos/auroraboot:v0.16.0"] == "AURORABOOT_IMAGE"  # WITH DOCKER --pull
    assert f"{PUB}/edge/kairos-ubuntu:22.04-core-amd64-generic-v4.0.4" in refs  # --load (+iso-image ...)
    assert any(w.startswith("docker.io/earthly/dind") and "named literally" in w for w in found.warnings)


def test_inputs_registry_moves_every_pull_by_args_and_mirrors_the_rest():
    prefix = "10.0.0.5:5000/airgap"
    _refs_before, found = _refs(UBUNTU_K3S, inputs_registry=prefix)
    assert dict(found.overrides) == {
        "SPECTRO_PUB_REPO": f"{prefix}/{PUB}",
        "SPECTRO_THIRD_PARTY_IMAGE": f"{prefix}/{PUB}/third-party/spectro-third-party:4.8",
        "OSBUILDER_IMAGE": f"{prefix}/quay.io/kairos/osbuilder-tools:v0.400.3",
    }
    assert found.mirrors == {} and found.buildkit_config == ""
    moved, _ = _refs({**UBUNTU_K3S, **found.overrides})
    assert set(moved) == {f"{prefix}/{ref}" for ref in _refs_before}  # every image, where mirror puts it

    _, cloud = _refs(UBUNTU_K3S, target="cloud-image", inputs_registry=prefix, insecure=True)
    assert cloud.mirrors == {"docker.io": f"{prefix}/docker.io"}  # the literal FROM: BuildKit's mirror
    assert cloud.buildkit_config.splitlines() == [
        '[registry."docker.io"]', f'  mirrors = ["{prefix}/docker.io"]',
        '[registry."10.0.0.5:5000"]', "  http = true", "  insecure = true"]


def test_fips_is_moved_to_the_fips_repository_it_uses():
    prefix = "reg.local/in"
    _, found = _refs({**UBUNTU_K3S, "FIPS_ENABLED": "true"}, inputs_registry=prefix)
    assert found.overrides["SPECTRO_PUB_REPO"] == f"{prefix}/{PUB}-fips"
    moved, _ = _refs({**UBUNTU_K3S, "FIPS_ENABLED": "true", **found.overrides})
    assert f"{prefix}/{PUB}-fips/edge/canvos/alpine:3.20" in moved
    assert all(ref.startswith(prefix + "/") for ref in moved)


def test_what_cannot_be_read_is_said():
    missing = EARTHFILE.replace("    COPY --if-exists +validate-user-data/user-data /overlay/files-iso/config.yaml\n",
                                "    COPY +elsewhere/thing /x\n")
    found = find_build_inputs(_contract(missing, None), UBUNTU_K3S, "build-all-images", "earthly/earthly:v0.8.15")
    assert any("+elsewhere is not in this Earthfile" in w for w in found.warnings)
    assert any("FROM DOCKERFILE" in w and "not read" in w for w in found.warnings)  # no Dockerfile given
    assert found.images[-1].ref == "docker.io/earthly/earthly:v0.8.15" and found.images[-1].uses == (
        "the Earthly container (pulled by edgeforge-ext through the Docker daemon)",)


def test_conditions():
    scope = {"A": Var("ubuntu"), "F": Var("false"), "T": Var("true"), "V": Var("22.04")}
    assert condition('[ "$A" = "ubuntu" ] && [ "$B" = "" ]', scope) is True  # B not declared yet: empty
    assert condition('[ "$V" == 22 ] || [ "$V" == 20 ]', scope) is False
    assert condition("$F", scope) is False and condition("$T", scope) is True
    assert condition('[ "$A" = "rke2" ] && $T', scope) is False
    assert condition('[[ "$A" =~ "ubu" ]]', scope) is True
    assert condition('[ -n "$A" ]', scope) is True and condition('[ -z "$A" ]', scope) is False
    assert condition("[ -f /etc/logrotate.d/stylus.conf ]", scope) is None
    assert condition('[ -f /x ] || [ "$A" = "ubuntu" ]', scope) is True
    assert condition('[ -f /x ] && [ "$A" = "ubuntu" ]', scope) is None


def test_an_undecidable_if_counts_every_branch():
    text = EARTHFILE.replace("stylus-image:\n    FROM --platform=linux/${ARCH} $STYLUS_BASE",
                             "stylus-image:\n    IF [ -f /etc/os-release ]\n        FROM $STYLUS_BASE\n"
                             "    ELSE\n        FROM $SPECTRO_PUB_REPO/edge/other:1\n    END")
    images = {use.ref for use in evaluate(parse_earthfile(text), DOCKERFILE, "stylus-image", UBUNTU_K3S).images}
    assert images == {f"{PUB}/edge/stylus-framework-linux-amd64:v4.9.21", f"{PUB}/edge/other:1"}


def test_a_plan_with_inputs_registry_moves_the_build_args_the_earthly_image_and_tells_buildkit(tmp_path):
    from edgeforge_ext.build.earthly_inputs import plan_inputs
    from edgeforge_ext.build.plan import Source, make_plan
    from tests.configs import make_config

    contract = _contract(EARTHFILE.replace("build-iso:\n    FROM --platform=linux/${ARCH} $OSBUILDER_IMAGE",
                                           "build-iso:\n    FROM alpine:3.20"))
    source = Source(url="file:///c", ref="v4.10.0", tag="v4.10.0", sha="a" * 40, pe_version="v4.9.21",
                    k8s_versions={"k3s": ["1.32.3"]}, targets=tuple(contract.earthfile.targets), contract=contract)
    config = make_config(tmp_path, **{"build.k8s_versions": ["1.32.3"], "build.inputs_registry": "127.0.0.1:5000/in"})
    plan = make_plan(config, source)
    assert plan.args.values["SPECTRO_PUB_REPO"] == f"127.0.0.1:5000/in/{PUB}"
    assert plan.earthly_image == "127.0.0.1:5000/in/us-docker.pkg.dev/palette-images/third-party/edge/earthly/" \
                                 "earthly:v0.8.15"  # the default image, from the internal registry
    assert '[registry."docker.io"]\n  mirrors = ["127.0.0.1:5000/in/docker.io"]' in plan.buildkit_config
    env = plan_inputs(config, plan).spec(plan.runs[0], "run").env
    assert env["EARTHLY_ADDITIONAL_BUILDKIT_CONFIG"] == plan.buildkit_config  # what Earthly's BuildKit reads

    remote = make_config(tmp_path, **{"build.k8s_versions": ["1.32.3"], "build.inputs_registry": "reg.local/in",
                                      "earthly.buildkit_host": "tcp://bk:8372"})
    remote_plan = make_plan(remote, source)
    assert "EARTHLY_ADDITIONAL_BUILDKIT_CONFIG" not in plan_inputs(remote, remote_plan).spec(
        remote_plan.runs[0], "run").env
    assert any("remote BuildKit: add to its buildkitd.toml" in w for w in remote_plan.warnings)
