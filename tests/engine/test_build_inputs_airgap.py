"""Every build input, for building inside the air gap, on a real registry pair: a CanvOS tag whose Earthfile
pulls from an "upstream" registry; `images list --build-inputs` names each image, `images mirror
--build-inputs --inputs-registry` copies them, and the plan's build args and BuildKit mirrors send every
pull the build would make to the internal registry, where each is whole (`verify --deep`)."""

from __future__ import annotations

import json
import random

import pytest

from edgeforge_ext.cli import run
from tests.canvos_fixture import git
from tests.engine.registry_push import push_tiny_image

pytestmark = pytest.mark.engine

PASSWORD = "s3cret-Pa55:word#1"


def _earthfile(src: str) -> str:
    """A CanvOS-shaped Earthfile pulling from `src`: registries carried by ARGs, one image written literally."""
    return f"""VERSION 0.6
ARG TARGETARCH
ARG SPECTRO_PUB_REPO={src}/palette-images
ARG ALPINE_IMG=$SPECTRO_PUB_REPO/edge/canvos/alpine:3.20
FROM $ALPINE_IMG
ARG OSBUILDER_IMAGE={src}/kairos/osbuilder-tools:v1
ARG PE_VERSION=v9.0.0
ARG ARCH
ARG OS_DISTRIBUTION
ARG OS_VERSION
ARG IMAGE_REGISTRY
ARG IMAGE_REPO=$OS_DISTRIBUTION
ARG K8S_DISTRIBUTION
ARG K8S_VERSION
ARG CUSTOM_TAG
ARG ISO_NAME=installer
ARG BASE_IMAGE=$SPECTRO_PUB_REPO/edge/kairos-$OS_DISTRIBUTION:$OS_VERSION-core-$ARCH-generic-v1
ARG STYLUS_BASE=$SPECTRO_PUB_REPO/edge/stylus-framework-linux-$ARCH:$PE_VERSION

build-all-images:
    BUILD +build-provider-images
    BUILD +iso

build-provider-images:
    BUILD +provider-image --K8S_VERSION=$K8S_VERSION

provider-image:
    FROM +base-image
    COPY +stylus-image/etc/kairos /etc/kairos
    SAVE IMAGE --push $IMAGE_REGISTRY/$IMAGE_REPO:$K8S_DISTRIBUTION-$K8S_VERSION-$PE_VERSION-$CUSTOM_TAG

base-image:
    FROM DOCKERFILE --build-arg BASE=$BASE_IMAGE .

stylus-image:
    FROM $STYLUS_BASE

iso:
    WORKDIR /build
    COPY +build-iso/ .
    SAVE ARTIFACT /build/* AS LOCAL ./build/

build-iso:
    FROM $OSBUILDER_IMAGE
    COPY +tools/busybox /bin/busybox

tools:
    FROM {src}/library/busybox:1
"""


@pytest.fixture
def upstream(registry_factory, canvos_repo):
    """The "internet" (a registry on a loopback address at port 80, so its references have no port, as
    public ones do), a CanvOS tag v9.0.0 whose Earthfile pulls from it, and the site's internal registry."""
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    src = registry_factory(auth=False, port=80, address=address)
    repos = ["palette-images/edge/canvos/alpine:3.20", "palette-images/edge/kairos-ubuntu:22.04-core-amd64-generic-v1",
             "palette-images/edge/stylus-framework-linux-amd64:v9.0.0", "kairos/osbuilder-tools:v1",
             "library/busybox:1", "earthly/earthly:v0.8.15"]
    for i, ref in enumerate(repos):
        repo, tag = ref.rsplit(":", 1)
        push_tiny_image(src.url, repo, tag, content=f"{ref}\n".encode() * (i + 1))
    sha = canvos_repo.commit("v9.0.0 pulls from upstream", {"Earthfile": _earthfile(src.host),
                                                           "Dockerfile": "ARG BASE\nFROM $BASE\n"}, push=True)
    canvos_repo.tag("v9.0.0", sha)
    git(canvos_repo.work, "push", "-q", "origin", "refs/tags/v9.0.0")
    internal = registry_factory(auth=True)
    return src, internal, canvos_repo, [f"{src.host}/{r}" for r in repos]


def _out(capsys):
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.mark.root  # the upstream registry binds port 80 (names without a port stay as the Earthfile writes them)
def test_list_mirror_and_plan_send_every_build_pull_to_the_internal_registry(upstream, tmp_path, capsys,
                                                                              monkeypatch, make_config):
    src, internal, repo, refs = upstream
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", PASSWORD)
    inputs = f"{internal.host}/airgap"
    wd = ["--workdir", str(tmp_path / "wd")]
    common = ["--canvos-url", repo.url, "--ref", "v9.0.0", "--k8s-version", "1.32.3", "--allow-unlisted-k8s-version"]
    earthly = ["--earthly-image", f"{src.host}/earthly/earthly:v0.8.15"]

    # 1. what the build pulls, read from the Earthfile at that tag for these options
    assert run([*wd, "images", "list", "--build-inputs", "--json", *common, *earthly]) == 0
    out, err = _out(capsys)
    listed = {i["ref"]: i for i in json.loads(out)["images"]}
    assert set(listed) == set(refs)
    assert listed[f"{src.host}/palette-images/edge/canvos/alpine:3.20"]["carried_by"] == "SPECTRO_PUB_REPO"
    assert listed[f"{src.host}/kairos/osbuilder-tools:v1"]["carried_by"] == "OSBUILDER_IMAGE"
    assert listed[f"{src.host}/library/busybox:1"]["carried_by"] is None
    assert f"{src.host}/library/busybox:1 is named literally (+tools FROM" in err

    # 2. into the internal registry, where --inputs-registry says the build finds them
    site = ["--inputs-registry", inputs, "--registry", internal.host, "--registry-username", "builder"]
    assert run([*wd, "images", "mirror", "--build-inputs", "--json", *common, *earthly, *site]) == 0
    out, err = _out(capsys)
    assert json.loads(out)["copied"] == len(refs), err
    assert run([*wd, "images", "verify", "--deep", "--build-inputs", *common, *earthly, *site]) == 0
    _out(capsys)

    # 3. the plan: the Earthfile's ARGs and BuildKit's mirrors point every pull there
    assert run([*wd, "plan", "--json", *common, *site]) == 0
    out, err = _out(capsys)
    plan = json.loads(out)
    args = plan["arg_file"]
    assert args["SPECTRO_PUB_REPO"] == f"{inputs}/{src.host}/palette-images"
    assert args["OSBUILDER_IMAGE"] == f"{inputs}/{src.host}/kairos/osbuilder-tools:v1"
    config = plan["earthly"]["buildkit_config"]
    assert f'[registry."{src.host}"]\n  mirrors = ["{inputs}/{src.host}"]' in config  # the literal FROM
    assert f'[registry."{internal.host}"]\n  http = true' in config

    # 4. walk the Earthfile again with those build args: every pull is in the internal registry, whole
    from edgeforge_ext.canvos.build_inputs import find_build_inputs
    from edgeforge_ext.canvos.contract import read_contract

    contract = read_contract(lambda name: git(repo.work, "show", f"v9.0.0:{name}") if name in (
        "Earthfile", "Dockerfile") else None)
    pulls = [i.ref for i in find_build_inputs(contract, args, "build-all-images", None).images]
    mirrored = [f"{inputs}/{ref}" if ref.startswith(f"{src.host}/library/") else ref for ref in pulls]
    assert all(ref.startswith(f"{inputs}/") for ref in mirrored), mirrored
    images = tmp_path / "pulls.txt"
    images.write_text("".join(f"{ref}\n" for ref in mirrored))
    assert run(["images", "verify", "--deep", "--images", str(images), "--registry", internal.host,
                "--registry-username", "builder", "--json"]) == 0
    out, _ = _out(capsys)
    assert json.loads(out)["broken"] == 0 and len(json.loads(out)["images"]) == len(refs) - 1  # all but Earthly

    # 5. a build's provenance with these options names each input by the digest the internal registry holds,
    # the very image it was mirrored from (a mirror keeps digests)
    from edgeforge_ext.build.attest import build_input_dependencies
    from edgeforge_ext.canvos.sources import build_inputs
    from edgeforge_ext.registry.client import Clients, credentials_for
    from edgeforge_ext.registry.images import parse_ref

    config = make_config(env={"EDGEFORGE_REGISTRY_PASSWORD": PASSWORD}, canvos__url=repo.url, canvos__ref="v9.0.0",
                         build__k8s_versions=["1.32.3"], build__allow_unlisted_k8s_version=True,
                         earthly__image=f"{src.host}/earthly/earthly:v0.8.15", build__inputs_registry=inputs,
                         registry__domain=internal.host, registry__username="builder")
    with Clients(lambda host: credentials_for(config, host)) as clients:
        deps = {d.name: d for d in build_input_dependencies(config, build_inputs(config), clients)}
        at_source = {ref: clients.get(src.host).manifest_digest(parse_ref(ref)) for ref in refs}
    _out(capsys)
    earthly_ref = f"{src.host}/earthly/earthly:v0.8.15"
    assert set(deps) == set(refs) - {earthly_ref}  # the Earthly image is the provenance's `earthly` entry
    for ref, dep in deps.items():
        assert dep.uri == f"{inputs}/{ref}"
        assert "sha256:" + dep.digest["sha256"] == at_source[ref], ref

