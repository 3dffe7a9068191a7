"""Image references: normalisation, the external-registry prefix rule, mapping rules, image sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeforge_ext.errors import ValidationError
from edgeforge_ext.registry.images import (
    RewriteRules,
    dedupe,
    images_from_list,
    images_from_profile,
    parse_ref,
    rules_from_config,
)
from tests.configs import make_config

SHA = "sha256:" + "a" * 64


@pytest.mark.parametrize(("given", "normal"), [
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.25", "docker.io/library/nginx:1.25"),
    ("library/nginx", "docker.io/library/nginx:latest"),
    ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
    ("docker.io/nginx", "docker.io/library/nginx:latest"),
    ("index.docker.io/library/nginx:1", "docker.io/library/nginx:1"),
    ("quay.io/kairos/core-ubuntu-20-lts-rke2:v1.25.2-rke2r1", "quay.io/kairos/core-ubuntu-20-lts-rke2:v1.25.2-rke2r1"),
    ("localhost/app", "localhost/app:latest"),
    ("localhost:5000/app:dev", "localhost:5000/app:dev"),
    ("10.10.254.254:8000/spectro-images/x/y:1.0", "10.10.254.254:8000/spectro-images/x/y:1.0"),
    (f"nginx@{SHA}", f"docker.io/library/nginx@{SHA}"),
    (f"registry.k8s.io/pause:3.9@{SHA}", f"registry.k8s.io/pause:3.9@{SHA}"),
    (f"host:5000/a/b:t@{SHA}", f"host:5000/a/b:t@{SHA}"),
    ("gcr.io/spectro-images-public/a__b/c-d.e:v1_x", "gcr.io/spectro-images-public/a__b/c-d.e:v1_x"),
])
def test_normalises_like_container_runtimes(given, normal):
    assert str(parse_ref(given)) == normal


def test_parts_of_a_reference():
    ref = parse_ref(f"host:5000/a/b:t@{SHA}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("host:5000", "a/b", "t", SHA)
    assert ref.reference == SHA  # runtimes pull by digest when there is one
    assert parse_ref("nginx").reference == "latest"


@pytest.mark.parametrize("bad", [
    "", "Nginx", "quay.io/Kairos/x", "nginx:", "nginx:-bad", "https://quay.io/x", "a b", "nginx@sha256:abc",
    "quay.io//x", "-host.io/x", "quay.io/x:" + "t" * 200,
])
def test_malformed_references_are_validation_errors(bad):
    with pytest.raises(ValidationError) as err:
        parse_ref(bad, "images.txt:7")
    assert err.value.exit_code == 5
    assert err.value.message.startswith("images.txt:7: invalid image reference")


def test_prefix_rule_docs_example_exactly():
    rules = RewriteRules.make(prefix="10.10.254.254:8000/spectro-images")
    out = rules.rewrite(parse_ref("quay.io/kairos/core-ubuntu-20-lts-rke2:v1.25.2-rke2r1"))
    assert out.target == "10.10.254.254:8000/spectro-images/quay.io/kairos/core-ubuntu-20-lts-rke2:v1.25.2-rke2r1"


def test_prefix_rule_uses_the_fully_qualified_source_and_keeps_digests():
    rules = RewriteRules.make(prefix="https://reg.example.com/palette/")  # scheme and slash dropped
    assert rules.rewrite(parse_ref("nginx")).target == "reg.example.com/palette/docker.io/library/nginx:latest"
    assert rules.rewrite(parse_ref(f"nginx:1@{SHA}")).target == \
        f"reg.example.com/palette/docker.io/library/nginx:1@{SHA}"
    # already under the external registry: not prefixed twice
    already = "reg.example.com/palette/quay.io/x/y:1"
    assert rules.rewrite(parse_ref(already)).target == already


def test_prefix_rule_with_a_source_port_is_reported_not_pulled():
    out = RewriteRules.make(prefix="ext.io/p").rewrite(parse_ref("src.io:5000/a:1"))
    assert out.target == "ext.io/p/src.io:5000/a:1"
    with pytest.raises(ValidationError, match="not a valid image reference"):
        _ = out.target_ref


def test_mapping_docs_example():
    rules = RewriteRules.make(mapping={"somedomain.com/somepath": "targetdomain.com/other/path"})
    out = rules.rewrite(parse_ref("somedomain.com/somepath/example-repo/alpine:latest"))
    assert out.target == "targetdomain.com/other/path/example-repo/alpine:latest"


def test_mapping_longest_prefix_wins_whatever_the_order():
    rules = RewriteRules.make(mapping={"quay.io": "m.io/quay", "quay.io/kairos": "m.io/kairos",
                                       "quay.io/kairos/core": "m.io/core"})
    assert rules.rewrite(parse_ref("quay.io/kairos/core/x:1")).target == "m.io/core/x:1"
    assert rules.rewrite(parse_ref("quay.io/kairos/other:2")).target == "m.io/kairos/other:2"
    assert rules.rewrite(parse_ref("quay.io/prom/node:3")).target == "m.io/quay/prom/node:3"


def test_mapping_matches_on_path_boundaries_only():
    rules = RewriteRules.make(mapping={"quay.io/kairos": "m.io/k"})
    assert rules.rewrite(parse_ref("quay.io/kairosx/y:1")).rule == "unmatched"
    assert rules.rewrite(parse_ref("quay.io/kairos:1")).target == "m.io/k:1"  # the whole name matches


def test_unmatched_images_are_pulled_from_their_source():
    rules = RewriteRules.make(mapping={"gcr.io/spectro-images-public": "reg.example.com/palette-images"})
    out = rules.rewrite(parse_ref("nginx:1"))
    assert (out.target, out.rule) == ("docker.io/library/nginx:1", "unmatched")


def test_mapping_keys_are_normalised_docker_hub():
    rules = RewriteRules.make(mapping={"index.docker.io/library/": "m.io/hub"})
    assert rules.rewrite(parse_ref("nginx:1")).target == "m.io/hub/nginx:1"


def _config(tmp_path: Path, toml: str = "", **flags):
    return make_config(tmp_path, toml=toml or None, **flags)


def test_rules_from_config_single_registry(tmp_path):
    rules = rules_from_config(_config(tmp_path, **{"registry.domain": "10.10.254.254:8000/spectro-images"}))
    assert rules.prefix == "10.10.254.254:8000/spectro-images" and not rules.mapping


def test_rules_from_config_mapping_rules_win(tmp_path):
    config = _config(tmp_path, **{"registry.domain": "r.io/x", "registry.mapping_rules": {"quay.io": "r.io/q"}})
    rules = rules_from_config(config)
    assert rules.prefix is None and rules.mapping == (("quay.io", "r.io/q"),)


def test_rules_from_config_registries_table(tmp_path):
    config = _config(tmp_path, '[[registry.registries]]\ndomain = "a.io/one"\n'
                               '[[registry.registries]]\ndomain = "b.io/two"\n')
    rules = rules_from_config(config)
    assert rules.prefix == "a.io/one"
    assert rules.notes  # several registries without rules: said so


def test_rules_from_config_no_registry_pulls_from_source(tmp_path):
    rules = rules_from_config(_config(tmp_path))
    assert rules.rewrite(parse_ref("nginx")).target == "docker.io/library/nginx:latest"


def test_image_list_file(tmp_path):
    f = tmp_path / "images.txt"
    f.write_text("# the cluster's images\n\nnginx\n  quay.io/a/b:1   # trailing comment\nnginx\n")
    images = images_from_list(f)
    assert [str(i.ref) for i in images] == ["docker.io/library/nginx:latest", "quay.io/a/b:1",
                                            "docker.io/library/nginx:latest"]
    assert images[1].origin == f"{f}:4"
    assert len(dedupe(images)) == 2


def test_image_list_names_the_bad_line(tmp_path):
    f = tmp_path / "images.txt"
    f.write_text("nginx\n\nquay.io/UPPER/x\n")
    with pytest.raises(ValidationError, match=rf"{f}:3: invalid image reference 'quay.io/UPPER/x'"):
        images_from_list(f)


PACK_VALUES = """\
pack:
  content:
    images:
      - image: quay.io/cilium/cilium:v1.14.0
      - ghcr.io/flux/source-controller:v1
  namespace: kube-system
charts:
  app:
    image: "{{ .spectro.system.registry }}/templated"   # Palette macro: skipped
    controller:
      image:
        registry: registry.k8s.io
        repository: ingress-nginx/controller
        tag: v1.9.0
    sidecar:
      image: busybox:1.36
"""

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: a
          image: docker.io/bitnami/nginx:1.25
"""


def _expected():
    return {"quay.io/cilium/cilium:v1.14.0", "ghcr.io/flux/source-controller:v1",
            "registry.k8s.io/ingress-nginx/controller:v1.9.0", "docker.io/library/busybox:1.36",
            "docker.io/bitnami/nginx:1.25"}


def test_profile_export_json_with_values_held_as_yaml_strings(tmp_path):
    export = {"metadata": {"name": "edge"}, "spec": {"template": {"packs": [
        {"name": "cni", "values": PACK_VALUES},
        {"name": "app", "values": "pack: {}\n", "manifests": [{"name": "m", "content": MANIFEST}]},
    ]}}}
    f = tmp_path / "profile.json"
    f.write_text(json.dumps(export, indent=2))
    images = images_from_profile(f)
    assert {str(i.ref) for i in images} == _expected()
    cilium = next(i for i in images if "cilium" in str(i.ref))
    assert "spec.template.packs[0].values > pack.content.images[0]" in cilium.origin


def test_profile_export_yaml(tmp_path):
    f = tmp_path / "profile.yaml"
    indented = "\n".join("        " + line for line in PACK_VALUES.splitlines())
    f.write_text("spec:\n  template:\n    packs:\n      - name: cni\n        values: |\n" + indented + "\n"
                 "      - name: direct\n        values:\n          image: docker.io/bitnami/nginx:1.25\n")
    assert {str(i.ref) for i in images_from_profile(f)} == _expected()


def test_profile_bad_reference_names_its_path(tmp_path):
    f = tmp_path / "profile.json"
    f.write_text(json.dumps({"spec": {"packs": [{"values": "pack:\n  content:\n    images:\n      - Bad/Image\n"}]}}))
    with pytest.raises(ValidationError, match=r"spec\.packs\[0\]\.values > pack\.content\.images\[0\]"):
        images_from_profile(f)


def test_profile_malformed_values_string_names_its_path(tmp_path):
    f = tmp_path / "profile.json"
    f.write_text(json.dumps({"spec": {"packs": [{"values": "a: [1,\nb: 2\n"}]}}))
    with pytest.raises(ValidationError, match=r"spec\.packs\[0\]\.values: malformed YAML"):
        images_from_profile(f)


def test_profile_malformed_json_names_the_line(tmp_path):
    f = tmp_path / "profile.json"
    f.write_text('{\n  "spec": [1,\n}\n')
    with pytest.raises(ValidationError, match=r"malformed JSON at line 3"):
        images_from_profile(f)


def test_profile_values_with_bare_palette_macros_still_parse(tmp_path):
    from edgeforge_ext.registry.images import images_from_profile

    values = ("cluster:\n  name: {{ .spectro.system.cluster.name }}\n  hosts:\n    - {{ .spectro.x }}\n"
              "charts:\n  app:\n    image: ghcr.io/acme/app:1.2\n    tag: {{ .spectro.v }}\n")
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"spec": {"packs": [{"name": "app", "values": values}]}}))
    assert {str(i.ref) for i in images_from_profile(profile)} == {"ghcr.io/acme/app:1.2"}


def test_a_long_malformed_line_is_echoed_cut_to_200_characters():
    from edgeforge_ext.errors import ValidationError
    from edgeforge_ext.registry.images import parse_ref

    with pytest.raises(ValidationError) as e:
        parse_ref("quay.io/" + "A" * 5000 + ":1", "images.txt:3")
    assert e.value.message.startswith("images.txt:3: invalid image reference 'quay.io/AAAA")
    assert "A" * 200 not in e.value.message  # the line and the component it names, each cut
