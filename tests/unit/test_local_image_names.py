"""Each work directory's Earthly runs save provider images under names of their own (issue 16): two
builds on one daemon with the same IMAGE_REGISTRY/IMAGE_REPO can no longer swap images. Only where the
Earthfile uses IMAGE_REGISTRY for names alone; the fingerprint never sees the local names."""

from __future__ import annotations

from functools import partial

from edgeforge_ext.build.earthly import cache_volume, container_name
from edgeforge_ext.build.earthly_inputs import plan_inputs
from edgeforge_ext.build.plan import Source, local_image_registry, make_plan
from edgeforge_ext.canvos.contract import read_contract
from edgeforge_ext.edgeforge_lock import fingerprint
from tests.configs import make_config

# The lines of CanvOS v4.10.0's Earthfile that touch IMAGE_REGISTRY / IMAGE_REPO (git show v4.10.0:Earthfile:
# 42-43, 155-160, 537, 678, 940, 993), and the targets a build runs.
EARTHFILE = """VERSION 0.6
ARG OS_DISTRIBUTION
ARG IMAGE_REGISTRY
ARG IMAGE_REPO=$OS_DISTRIBUTION
ARG K8S_DISTRIBUTION
ARG K8S_VERSION
ARG PE_VERSION=v4.9.21
ARG CUSTOM_TAG
ARG ISO_NAME=installer
IF [ "$CUSTOM_TAG" != "" ]
    ARG IMAGE_TAG=$PE_VERSION-$CUSTOM_TAG
ELSE
    ARG IMAGE_TAG=$PE_VERSION
END
ARG IMAGE_PATH=$IMAGE_REGISTRY/$IMAGE_REPO:$K8S_DISTRIBUTION-$K8S_VERSION-$IMAGE_TAG

build-all-images:
    BUILD +build-provider-images
    BUILD +iso-image
    BUILD +iso
build-provider-images:
    BUILD +provider-image --K8S_VERSION=$K8S_VERSION
provider-image:
    FROM alpine
    ARG IMAGE_REPO
    RUN echo building
    SAVE IMAGE --push $IMAGE_PATH
iso-image:
    FROM alpine
    ARG IMAGE_REGISTRY
    SAVE IMAGE palette-installer-image:$IMAGE_TAG
iso:
    FROM alpine
"""
cfg = partial(make_config, base={"build.k8s_versions": ["1.32.3"], "build.image_registry": "10.10.254.254",
                                 "build.image_repo": "edge"})


def source(earthfile: str) -> Source:
    contract = read_contract(lambda name: {"Earthfile": earthfile}.get(name))
    return Source(url="file:///canvos", ref="v4.10.0", tag="v4.10.0", sha="a" * 40, pe_version="v4.9.21",
                  k8s_versions={"k3s": ["1.32.3"]}, targets=contract.earthfile.targets, contract=contract)


def test_earthly_saves_under_the_work_directorys_own_name(tmp_path):
    plan = make_plan(cfg(tmp_path), source(EARTHFILE))
    (image,) = plan.provider_images
    local = local_image_registry(tmp_path / "wd")
    assert image.ref == "10.10.254.254/edge:k3s-1.32.3-v4.9.21-demo"  # the user's name: os-pack, origin push
    assert image.saved_as == f"{local}/edge:k3s-1.32.3-v4.9.21-demo"
    assert plan.local_args == {"IMAGE_REGISTRY": local}
    # Given to Earthly after the target, where it beats .arg (which still says the user's registry).
    command = plan_inputs(cfg(tmp_path), plan).command(plan.runs[0])
    assert command[command.index("+build-all-images") + 1:][-1] == f"--IMAGE_REGISTRY={local}"
    assert plan.args.values["IMAGE_REGISTRY"] == "10.10.254.254"


def test_names_are_per_work_directory_and_stable(tmp_path):
    one, two = tmp_path / "a", tmp_path / "b"
    assert local_image_registry(one) != local_image_registry(two)
    assert local_image_registry(one) == local_image_registry(tmp_path / "x" / ".." / "a")  # the same next time
    assert local_image_registry(one).startswith("edgeforge.invalid/")  # never resolves: no accidental push
    assert cache_volume(one) != cache_volume(two)
    assert len({container_name(one, "r1"), container_name(one, "r2"), container_name(two, "r1")}) == 3


def test_the_fingerprint_does_not_depend_on_the_work_directory(tmp_path):
    def fp(workdir: str) -> str:
        config = cfg(tmp_path, workdir=str(tmp_path / workdir))
        plan = make_plan(config, source(EARTHFILE))
        return fingerprint(user_data="#cloud-config\n", arg_text="K=v\n", plan=plan)

    assert fp("runner-1") == fp("runner-2")


def test_an_earthfile_that_uses_image_registry_in_a_run_keeps_the_users_names(tmp_path):
    used = EARTHFILE.replace("    ARG IMAGE_REGISTRY\n",
                             "    ARG IMAGE_REGISTRY\n    RUN echo $IMAGE_REGISTRY > /etc/reg\n")
    assert used != EARTHFILE
    plan = make_plan(cfg(tmp_path), source(used))
    (image,) = plan.provider_images
    assert image.saved_as == image.ref and plan.local_args == {}  # collect then refuses on a clash (exit 8)
    other = EARTHFILE.replace("ARG IMAGE_PATH=$IMAGE_REGISTRY/$IMAGE_REPO:", "ARG IMAGE_PATH=fixed/name:")
    assert make_plan(cfg(tmp_path), source(other)).local_args == {}
