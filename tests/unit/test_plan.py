"""Pure planning: tags, Earthly runs, push destinations, the OS pack."""

from __future__ import annotations

import pytest

from edgeforge_ext.build.plan import Source, make_plan
from edgeforge_ext.errors import UsageError, ValidationError
from tests.configs import make_config

K8S = {"k3s": ["1.29.14", "1.30.10", "1.31.6", "1.32.3"], "rke2": ["1.30.4"]}
TARGETS = ("build-all-images", "build-provider-images", "iso", "provider-image")


def source(**over):
    base = dict(url="file:///canvos", ref="latest", tag="v4.10.0", sha="a" * 40, pe_version="v4.9.21",
                k8s_versions=K8S, targets=TARGETS)
    base.update(over)
    return Source(**base)


cfg = make_config

def test_tag_formula_uses_earthfile_pe_version_and_warns_when_it_differs(tmp_path):
    plan = make_plan(cfg(tmp_path, **{"build.k8s_versions": ["1.32.3"], "build.image_registry": "reg.local/edge"}),
                     source())
    assert [i.ref for i in plan.provider_images] == ["reg.local/edge/ubuntu:k3s-1.32.3-v4.9.21-demo"]
    assert any("v4.10.0" in w and "v4.9.21" in w for w in plan.warnings)


def test_empty_custom_tag_drops_the_suffix(tmp_path):
    plan = make_plan(cfg(tmp_path, **{"build.k8s_versions": ["1.32.3"], "build.custom_tag": ""}), source())
    assert plan.provider_images[0].tag == "v4.9.21"


def test_no_k8s_version_stops_before_building(tmp_path):
    with pytest.raises(UsageError) as e:
        make_plan(cfg(tmp_path), source())
    assert e.value.exit_code == 2 and "all 4 k3s versions" in e.value.message
    assert "--k8s-version" in (e.value.hint or "")


def test_all_k8s_versions_is_explicit(tmp_path):
    plan = make_plan(cfg(tmp_path, **{"build.all_k8s_versions": True}), source())
    assert [i.k8s_version for i in plan.provider_images] == K8S["k3s"]
    assert len(plan.runs) == 1 and plan.runs[0].build_args["K8S_VERSION"] == ""


def test_runs_for_all_target_build_the_iso_once(tmp_path):
    plan = make_plan(cfg(tmp_path, **{"build.k8s_versions": ["1.31.6", "1.32.3"]}), source())
    assert [(r.target, r.build_args["K8S_VERSION"], r.makes_iso) for r in plan.runs] == [
        ("build-all-images", "1.31.6", True), ("build-provider-images", "1.32.3", False)]
    assert all(r.build_args["PE_VERSION"] == "v4.9.21" for r in plan.runs)
    assert plan.iso_file == "palette-edge-installer.iso"


def test_iso_target_has_no_provider_images(tmp_path):
    plan = make_plan(cfg(tmp_path, **{"build.target": "iso"}), source())
    assert plan.provider_images == () and [r.target for r in plan.runs] == ["iso"]


def test_push_goes_external_when_a_registry_is_configured(tmp_path):
    c = cfg(tmp_path, **{"build.k8s_versions": ["1.32.3"], "build.image_registry": "10.10.254.254",
                         "registry.domain": "10.10.254.254:8000/spectro-images/"})
    image = make_plan(c, source()).provider_images[0]
    assert image.push_refs == ("10.10.254.254:8000/spectro-images/10.10.254.254/ubuntu:k3s-1.32.3-v4.9.21-demo",)


def test_push_to_origin_and_external(tmp_path):
    c = cfg(tmp_path, **{"build.k8s_versions": ["1.32.3"], "build.image_registry": "127.0.0.1",
                         "registry.domain": "127.0.0.1:5000/spectro-images", "push.to": ["origin", "external"]})
    assert make_plan(c, source()).provider_images[0].push_refs == (
        "127.0.0.1/ubuntu:k3s-1.32.3-v4.9.21-demo",
        "127.0.0.1:5000/spectro-images/127.0.0.1/ubuntu:k3s-1.32.3-v4.9.21-demo")


def test_image_registry_with_a_port_cannot_be_prefixed(tmp_path):
    c = cfg(tmp_path, **{"build.k8s_versions": ["1.32.3"], "build.image_registry": "127.0.0.1:5000",
                         "registry.domain": "10.10.254.254:8000/spectro-images"})
    with pytest.raises(ValidationError) as e:
        make_plan(c, source())
    assert "holds a port" in e.value.details[0] and e.value.exit_code == 5


def test_push_external_without_registry_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="needs an external registry"):
        make_plan(cfg(tmp_path, **{"build.k8s_versions": ["1.32.3"], "push.to": ["external"]}), source())


def test_target_missing_from_the_earthfile(tmp_path):
    with pytest.raises(ValidationError, match=r"\+build-all-images"):
        make_plan(cfg(tmp_path, **{"build.k8s_versions": ["1.32.3"]}), source(targets=("iso",)))


def test_os_pack_values_have_earthly_sh_flat_dotted_keys(tmp_path):
    # earthly.sh print_os_pack: `options:` with `system.registry: …` (flat keys), not nested maps.
    c = cfg(tmp_path, **{"build.k8s_versions": ["1.32.3"], "build.image_registry": "reg.io/edge",
                         "build.custom_tag": "night"})
    plan = make_plan(c, source())
    options = plan.os_pack["options"]
    assert options["system.registry"] == "reg.io/edge" and options["system.repo"] == "ubuntu"
    assert options["system.peVersion"] == "v4.9.21" and options["system.customTag"] == "night"
    assert options["system.k8sDistribution"] == "k3s" and options["system.osName"] == "ubuntu"
    assert options["system.osVersion"] == "22.04"  # a string: it is a version, not the float 22.04
    assert options["system.uri"].endswith("peVersion }}-{{ .spectro.pack.edge-native-byoi.options.system.customTag }}")
    assert plan.os_pack["pack"]["content"]["images"] == [
        {"image": "{{.spectro.pack.edge-native-byoi.options.system.uri}}"}]
    assert "  system.osVersion: 22.04\n" in plan.os_pack_text and "system:\n" not in plan.os_pack_text


def test_unknown_pe_version_needs_a_checkout(tmp_path):
    with pytest.raises(UsageError, match="PE_VERSION is unknown"):
        make_plan(cfg(tmp_path, **{"build.k8s_versions": ["1.32.3"]}), source(pe_version=None))
    plan = make_plan(cfg(tmp_path, **{"build.k8s_versions": ["1.32.3"], "build.pe_version": "v4.9.38"}),
                     source(pe_version=None))
    assert plan.pe_version == "v4.9.38"
