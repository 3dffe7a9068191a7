"""render can add K3s/RKE2 registries.yaml (an initramfs stage) for the external registry."""

from __future__ import annotations

import yaml

from edgeforge_ext.config import load_config
from edgeforge_ext.render import render_all

PASSWORD = "pa55: #word"


def rendered(tmp_path, **flags):
    base = {"registry.domain": "10.10.254.254:8000/spectro-images", "registry.username": "builder",
            "registry.insecure": True, "registry.k8s_registries_yaml": True, "build.k8s_versions": ["1.32.3"],
            "site.palette_endpoint": "api.spectrocloud.com"}
    base.update(flags)
    config = load_config(None, env={"EDGEFORGE_REGISTRY_PASSWORD": PASSWORD, "EDGEFORGE_EDGE_HOST_TOKEN": "tok-123456"},
                         flags=base, cwd=tmp_path)
    return render_all(config, pe_version="v4.9.38", k8s_versions=None)


def files_of(result):
    stages = yaml.safe_load(result.user_data)["stages"]["initramfs"]
    return [f for stage in stages for f in stage.get("files", [])]


def test_k3s_gets_registries_yaml_with_the_credentials(tmp_path):
    (f,) = files_of(rendered(tmp_path))
    assert f["path"] == "/etc/rancher/k3s/registries.yaml"
    assert f["permissions"] == 0o600 and f["owner"] == 0 and f["group"] == 0
    content = yaml.safe_load(f["content"])
    assert content == {"configs": {"10.10.254.254:8000": {
        "auth": {"username": "builder", "password": PASSWORD}, "tls": {"insecure_skip_verify": True}}}}


def test_rke2_writes_both_paths(tmp_path):
    paths = [f["path"] for f in files_of(rendered(tmp_path, **{"build.k8s_distribution": "rke2"}))]
    assert paths == ["/etc/rancher/k3s/registries.yaml", "/etc/rancher/rke2/registries.yaml"]


def test_kubeadm_is_told_to_use_profile_patch(tmp_path):
    result = rendered(tmp_path, **{"build.k8s_distribution": "kubeadm"})
    assert "stages" not in yaml.safe_load(result.user_data)
    assert any("profile patch --image-repository" in w for w in result.warnings)


def test_off_by_default_and_users_stage_still_there(tmp_path):
    result = rendered(tmp_path, **{"registry.k8s_registries_yaml": False})
    assert "stages" not in yaml.safe_load(result.user_data)
    f = tmp_path / "edgeforge.toml"
    f.write_text('[[users]]\nname = "kairos"\ngroups = ["admin"]\n')
    config = load_config(f, env={"EDGEFORGE_REGISTRY_PASSWORD": PASSWORD, "EDGEFORGE_EDGE_HOST_TOKEN": "tok-123456"},
                         flags={"registry.domain": "r.example/x", "registry.username": "u",
                                "registry.k8s_registries_yaml": True, "site.palette_endpoint": "api.spectrocloud.com"},
                         cwd=tmp_path)
    stages = yaml.safe_load(render_all(config, pe_version="v4.9.38", k8s_versions=None).user_data)["stages"]
    names = [s["name"] for s in stages["initramfs"]]
    assert len(names) == 2 and "users" in names[1]
    assert stages["initramfs"][1]["users"]["kairos"]["groups"] == ["admin"]
