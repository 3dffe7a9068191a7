"""Planning against the checkout's build contract: what `.arg` holds and leaves to the Earthfile, keys it
refuses, Ubuntu Pro per tag, host-side steps, the Earthly mode and image. Each rule mirrors the real
Earthly/CanvOS behaviour named in its test."""

from __future__ import annotations

from functools import partial

import pytest

from edgeforge_ext.build.plan import Source, make_plan
from edgeforge_ext.canvos.contract import read_contract
from edgeforge_ext.errors import EngineError, UsageError, ValidationError
from edgeforge_ext.render import render_all
from edgeforge_ext.settings import DEFAULT_EARTHLY_IMAGE
from tests.configs import make_config
from tests.unit.test_contract import EARTHFILE_V49, EARTHFILE_V410, SCRIPT_MAIN, SCRIPT_V44

K8S = {"k3s": ["1.31.6", "1.32.3"]}
TARGETS_LINES = "\n".join(f"{t}:\n    FROM alpine\n" for t in ("build-provider-images", "iso"))


def source(earthfile: str = EARTHFILE_V49, script: str | None = SCRIPT_MAIN) -> Source:
    text = earthfile + "\n" + TARGETS_LINES
    contract = read_contract(lambda name: {"Earthfile": text, "earthly.sh": script}.get(name))
    return Source(url="file:///canvos", ref="v4.9.38", tag="v4.9.38", sha="a" * 40, pe_version="v4.9.38",
                  k8s_versions=K8S, targets=contract.earthfile.targets, contract=contract)


cfg = partial(make_config, base={"build.k8s_versions": ["1.32.3"]})

def test_no_empty_override_and_defaults_left_to_the_earthfile(tmp_path):
    # Earthly: an override beats `ARG NAME=default` even when empty (variables/collection.go ~233-264).
    # The tool used to write `BASE_IMAGE=` and so erase CanvOS's derived base image.
    plan = make_plan(cfg(tmp_path), source())
    values = plan.args.values
    assert "BASE_IMAGE" not in values and "HTTP_PROXY" not in values
    assert all(value != "" for value in values.values())
    assert "UPDATE_KERNEL" not in values  # the tool's default equals the Earthfile's: left to it
    assert {"BASE_IMAGE", "UPDATE_KERNEL", "SPECTRO_PUB_REPO"} <= set(plan.args.defaulted)
    assert values["ISO_NAME"] == "palette-edge-installer" and values["OS_DISTRIBUTION"] == "ubuntu"
    assert plan.arg_problems == ()


def test_values_the_user_sets_are_written(tmp_path):
    plan = make_plan(cfg(tmp_path, build__base_image="registry.private.test/rhel:9", build__update_kernel=False,
                         build__os="rhel"), source())
    assert plan.args.values["BASE_IMAGE"] == "registry.private.test/rhel:9"
    assert plan.args.values["UPDATE_KERNEL"] == "false"  # set explicitly: written even though it is the default
    assert "BASE_IMAGE" not in plan.args.defaulted


def test_an_undeclared_key_is_refused_naming_the_nearest(tmp_path):
    plan = make_plan(cfg(tmp_path, build__extra_args={"KAIROS_VERSON": "v4.1.0"}), source())
    assert plan.arg_problems == (
        ".arg KAIROS_VERSON (build.extra_args): the checkout's Earthfile declares no ARG KAIROS_VERSON, so "
        "Earthly would ignore it (nearest declared: KAIROS_VERSION, OS_VERSION, K8S_VERSION)",)
    with pytest.raises(ValidationError) as err:
        render_all(cfg(tmp_path, build__extra_args={"KAIROS_VERSON": "v4.1.0"}), pe_version="v4.9.38",
                   k8s_versions=K8S, contract=source().contract)
    assert err.value.exit_code == 5 and "KAIROS_VERSON" in err.value.details[0]


def test_an_explicit_empty_build_arg_that_would_erase_a_default_is_refused(tmp_path):
    plan = make_plan(cfg(tmp_path, build__extra_args={"SPECTRO_PUB_REPO": ""}), source())
    assert plan.arg_problems and "would erase the Earthfile's default" in plan.arg_problems[0]


def test_earthly_build_args_from_the_environment_obey_the_same_rules(tmp_path):
    # earthly.sh passes EARTHLY_BUILD_ARGS through; Earthly lets it beat .arg (common/shared.go CombineVariables).
    plan = make_plan(cfg(tmp_path, {"EARTHLY_BUILD_ARGS": "KAIROS_BASE_IMAGE_URL=mirror.local/edge,NOPE=1"}),
                     source())
    assert len(plan.arg_problems) == 1 and "ARG NOPE" in plan.arg_problems[0]
    assert "KAIROS_BASE_IMAGE_URL" not in plan.args.defaulted
    assert any("EARTHLY_BUILD_ARGS" in w for w in plan.warnings)


def test_ubuntu_pro_is_a_private_build_arg_up_to_v4_9_and_a_secret_from_v4_10(tmp_path):
    env = {"EDGEFORGE_UBUNTU_PRO_KEY": "C1234567890abcdef"}
    old = make_plan(cfg(tmp_path, env), source(EARTHFILE_V49))
    assert old.args.private == ("UBUNTU_PRO_KEY",) and "UBUNTU_PRO_KEY" not in old.args.values
    new = make_plan(cfg(tmp_path, env), source(EARTHFILE_V410))
    assert new.args.private == () and new.args.values["UBUNTU_PRO_ATTACH"] == "true"
    none = source(EARTHFILE_V49.replace("ARG UBUNTU_PRO_KEY\n", ""))
    assert "takes no Ubuntu Pro token" in make_plan(cfg(tmp_path, env), none).arg_problems[0]
    assert "ubuntu only" in make_plan(cfg(tmp_path, env, build__os="opensuse-leap"), source()).arg_problems[0]


def test_proxy_credentials_never_reach_the_checkouts_arg(tmp_path):
    plan = make_plan(cfg(tmp_path, build__https_proxy="http://user:s3cr3t@proxy:3128",
                         build__http_proxy="http://proxy:3128"), source())
    assert plan.args.private == ("HTTPS_PROXY",)
    assert plan.args.values["HTTP_PROXY"] == "http://proxy:3128"
    assert "s3cr3t" not in repr(plan.args.values)


def test_unlisted_k8s_version_refused_unless_allowed(tmp_path):
    # CanvOS itself does not check K8S_VERSION against k8s_version.json, so the refusal has a way out.
    refused = make_plan(cfg(tmp_path, build__k8s_versions=["1.33.0"]), source())
    assert "--allow-unlisted-k8s-version" in refused.arg_problems[0]
    allowed = make_plan(cfg(tmp_path, build__k8s_versions=["1.33.0"], build__allow_unlisted_k8s_version=True),
                        source())
    assert allowed.arg_problems == () and any("1.33.0 is not in k8s_version.json" in w for w in allowed.warnings)


def test_options_needing_an_earthly_sh_host_step_are_refused(tmp_path):
    # CanvOS main's earthly.sh pre-builds the AMD GPU driver on the host before Earthly when
    # INSTALL_AMD_GPU_DRIVERS=true and AMDGPU_DRIVER_SOURCE=dkms (the default); the tool does not.
    earthfile = EARTHFILE_V410 + "ARG INSTALL_AMD_GPU_DRIVERS=false\nARG AMDGPU_DRIVER_SOURCE=dkms\n"
    with pytest.raises(ValidationError) as err:
        make_plan(cfg(tmp_path, build__extra_args={"INSTALL_AMD_GPU_DRIVERS": "true"}), source(earthfile))
    assert err.value.exit_code == 5 and "Pre-building AMD amdgpu driver" in err.value.details[0]
    inbox = {"INSTALL_AMD_GPU_DRIVERS": "true", "AMDGPU_DRIVER_SOURCE": "inbox"}
    assert make_plan(cfg(tmp_path, build__extra_args=inbox), source(earthfile)).arg_problems == ()


def test_privileged_false_without_a_buildkit_host_is_refused_everywhere(tmp_path):
    # The Earthly image's entrypoint exits 1 unprivileged unless NO_BUILDKIT/BUILDKIT_HOST (earthly-entrypoint.sh).
    config = cfg(tmp_path, {"EDGEFORGE_EARTHLY_PRIVILEGED": "false"})
    with pytest.raises(EngineError) as err:
        make_plan(config, source())
    assert err.value.exit_code == 6 and "--buildkit-host" in (err.value.hint or "")
    ok = make_plan(cfg(tmp_path, {"EDGEFORGE_EARTHLY_PRIVILEGED": "false"},
                       earthly__buildkit_host="tcp://bk:8372"), source())
    assert not ok.privileged


def test_buildkit_tls_files_go_together_and_need_tcp(tmp_path):
    with pytest.raises(UsageError, match="go together"):
        make_plan(cfg(tmp_path, earthly__buildkit_host="tcp://bk:8372", earthly__buildkit_tls_ca="ca.pem"), source())
    with pytest.raises(UsageError, match="tcp://"):
        make_plan(cfg(tmp_path, earthly__buildkit_tls_ca="a", earthly__buildkit_tls_cert="b",
                      earthly__buildkit_tls_key="c"), source())


def test_the_earthly_image_comes_from_the_tags_earthly_sh(tmp_path):
    v44 = make_plan(cfg(tmp_path), source(script=SCRIPT_V44))
    assert (v44.earthly_image, v44.earthly_image_from) == (
        "gcr.io/spectro-images-public/earthly/earthly:v0.8.5", "earthly.sh")
    main = make_plan(cfg(tmp_path), source(script=SCRIPT_MAIN))
    assert main.earthly_image == "us-docker.pkg.dev/palette-images/third-party/edge/earthly/earthly:v0.8.15"
    mine = make_plan(cfg(tmp_path, earthly__image="my/earthly:1"), source(script=SCRIPT_V44))
    assert (mine.earthly_image, mine.earthly_image_from) == ("my/earthly:1", "earthly.image")
    fork = make_plan(cfg(tmp_path), source(script=None))
    assert (fork.earthly_image, fork.earthly_image_from) == (DEFAULT_EARTHLY_IMAGE, "default")


def test_proxy_cert_path_on_v4_4_when_ca_certs_are_given(tmp_path):
    (tmp_path / "corp.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    plan = make_plan(cfg(tmp_path, build__ca_certs=[str(tmp_path / "corp.pem")]),
                     source(EARTHFILE_V49 + "ARG PROXY_CERT_PATH\n", script=SCRIPT_V44))
    assert plan.args.values["PROXY_CERT_PATH"] == "sc.crt"


def test_os_pack_text_is_earthly_sh_print_os_pack_expanded(tmp_path):
    plan = make_plan(cfg(tmp_path, build__image_registry="10.10.254.254", build__os_version="22.04"),
                     source(script=SCRIPT_V44))
    assert plan.os_pack_text == ('pack:\n  content:\noptions:\n  system.uri: "{{ .spectro.x }}"\n\n\n'
                                 "  system.registry: 10.10.254.254\n  system.osVersion: 22.04\n")
