"""`profile patch`: AlwaysPullImages removed, imageRepository set, and nothing else of the file touched."""

from __future__ import annotations

import pytest
import yaml

from edgeforge_ext.errors import ValidationError
from edgeforge_ext.registry.profile import K3S_RKE2, KUBEADM, patch_values

PXKE = """\
# Kubernetes layer (PXK-E) -- pasted from Palette
pack:
  k8sHardening: True
  podCIDR: "192.168.0.0/16"   # pods
cluster:
  config: |
    clusterConfiguration:
      apiServer:
        extraArgs:
          # keep the audit log
          audit-log-maxage: "30"
          enable-admission-plugins: "AlwaysPullImages,NamespaceLifecycle,ServiceAccount,NodeRestriction"
        extraVolumes:
          - name: audit-log
            hostPath: /var/log/apiserver
      controllerManager:
        extraArgs:
          profiling: "false"
    initConfiguration:
      nodeRegistration:
        kubeletExtraArgs:
          read-only-port: "0"
"""

K3S = """\
cluster:
  config:
    # disable the built in cilium
    flannel-backend: none
    kube-apiserver-arg:
      - anonymous-auth=true
      - disable-admission-plugins=AlwaysAdmit
      - enable-admission-plugins=AlwaysPullImages,NamespaceLifecycle,ServiceAccount,NodeRestriction # hardening
    kube-controller-manager-arg:
    - profiling=false
pack:
  palette:
    config:
      oidc: {}
"""

RKE2_IN_STRING = """\
cluster:
  config: |
    # RKE2 settings
    kube-apiserver-arg:
    - "enable-admission-plugins=NamespaceLifecycle,AlwaysPullImages"
    - audit-log-maxage=30
"""


def _changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def test_pxke_removes_the_plugin_and_keeps_everything_else():
    result = patch_values(PXKE)
    assert result.flavour == KUBEADM
    assert _changed_lines(PXKE, result.text) == [(
        '          enable-admission-plugins: "AlwaysPullImages,NamespaceLifecycle,ServiceAccount,NodeRestriction"',
        '          enable-admission-plugins: "NamespaceLifecycle,ServiceAccount,NodeRestriction"')]
    inner = yaml.safe_load(yaml.safe_load(result.text)["cluster"]["config"])
    assert inner["clusterConfiguration"]["apiServer"]["extraArgs"]["enable-admission-plugins"] == \
        "NamespaceLifecycle,ServiceAccount,NodeRestriction"
    diff = result.diff("values.yaml")
    assert diff.startswith("--- a/values.yaml\n+++ b/values.yaml\n")
    assert "+          enable-admission-plugins" in diff


def test_pxke_image_repository_added_under_cluster_configuration():
    result = patch_values(PXKE, image_repository="10.10.254.254:8000/spectro-images/registry.k8s.io")
    added = [line for line in result.text.splitlines() if line not in PXKE.splitlines()]
    assert added == ["      imageRepository: 10.10.254.254:8000/spectro-images/registry.k8s.io",
                     '          enable-admission-plugins: "NamespaceLifecycle,ServiceAccount,NodeRestriction"']
    inner = yaml.safe_load(yaml.safe_load(result.text)["cluster"]["config"])
    assert inner["clusterConfiguration"]["imageRepository"] == "10.10.254.254:8000/spectro-images/registry.k8s.io"
    assert "# keep the audit log" in result.text and "k8sHardening: True" in result.text


def test_pxke_existing_image_repository_replaced_in_place():
    text = PXKE.replace("    clusterConfiguration:\n",
                        "    clusterConfiguration:\n      imageRepository: 'old.io/k8s'\n")
    result = patch_values(text, image_repository="new.io/k8s")
    assert "      imageRepository: 'new.io/k8s'" in result.text  # quoting kept


def test_k3s_list_item_patched_comments_and_mixed_indentation_kept():
    result = patch_values(K3S, image_repository="ignored.io")
    assert result.flavour == K3S_RKE2
    before = "      - enable-admission-plugins=AlwaysPullImages,NamespaceLifecycle,ServiceAccount,NodeRestriction"
    after = "      - enable-admission-plugins=NamespaceLifecycle,ServiceAccount,NodeRestriction"
    assert _changed_lines(K3S, result.text) == [(before + " # hardening", after + " # hardening")]
    assert any("/etc/rancher/k3s/registries.yaml" in n and "/etc/rancher/rke2/registries.yaml" in n
               for n in result.notes)


def test_rke2_config_held_as_a_yaml_string():
    result = patch_values(RKE2_IN_STRING)
    assert _changed_lines(RKE2_IN_STRING, result.text) == [
        ('    - "enable-admission-plugins=NamespaceLifecycle,AlwaysPullImages"',
         '    - "enable-admission-plugins=NamespaceLifecycle"')]
    assert result.text.startswith("cluster:\n  config: |\n    # RKE2 settings\n")


def test_only_plugin_removes_the_item():
    text = ("cluster:\n  config:\n    kube-apiserver-arg:\n      - a=b\n"
            "      - enable-admission-plugins=AlwaysPullImages\n")
    assert patch_values(text).text == "cluster:\n  config:\n    kube-apiserver-arg:\n      - a=b\n"


def test_nothing_to_change_returns_the_same_text():
    once = patch_values(PXKE).text
    again = patch_values(once)
    assert not again.changed and again.text == once and not again.changes
    assert any("AlwaysPullImages is not in" in n for n in again.notes)


def test_similar_plugin_names_are_not_touched():
    text = "cluster:\n  config:\n    kube-apiserver-arg:\n      - enable-admission-plugins=AlwaysPullImagesX,Foo\n"
    assert not patch_values(text).changed


def test_not_a_kubernetes_layer():
    with pytest.raises(ValidationError, match=r"no cluster\.config"):
        patch_values("pack:\n  x: 1\n", where="cni.yaml")


def test_malformed_yaml_names_the_line():
    with pytest.raises(ValidationError, match=r"v.yaml: malformed YAML at line 4, column 1"):
        patch_values("cluster:\n  config:\n  - [a\n", where="v.yaml")
