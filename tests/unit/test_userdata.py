"""user-data content: registry forms, certificates, site, users, the checks, and the extra-YAML merge."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeforge_ext.errors import ValidationError
from edgeforge_ext.render import render_all
from edgeforge_ext.userdata import validate
from tests.configs import make_config

CERT_A = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\nAAAA==\n-----END CERTIFICATE-----\n"
CERT_B = "-----BEGIN CERTIFICATE-----\nMIIBBBBB\n-----END CERTIFICATE-----\n"


config = partial(make_config, base={"build.custom_tag": "x"})

def render(cfg: Any) -> dict[str, Any]:
    rendered = render_all(cfg, pe_version="v4.9.21", k8s_versions=None)
    assert rendered.user_data.startswith("#cloud-config\n")
    data = yaml.safe_load(rendered.user_data)
    assert isinstance(data, dict)
    return data


def test_single_registry_goes_to_registry_credentials(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"EDGEFORGE_REGISTRY_PASSWORD": "s3cret: #1", "EDGEFORGE_EDGE_HOST_TOKEN": "tok-123"},
                 registry__domain="10.10.254.254:8000/spectro-images/", registry__username="builder",
                 registry__insecure=True, site__palette_endpoint="api.spectrocloud.com",
                 site__project_name="Default", site__name="edge-01", install__poweroff=True)
    stylus = render(cfg)["stylus"]
    assert stylus["registryCredentials"] == {"domain": "10.10.254.254:8000/spectro-images", "username": "builder",
                                             "password": "s3cret: #1", "insecure": True}
    assert "externalRegistries" not in stylus
    assert stylus["site"] == {"paletteEndpoint": "api.spectrocloud.com", "edgeHostToken": "tok-123",
                              "projectName": "Default", "name": "edge-01"}


def test_several_registries_go_to_external_registries_with_certificates(tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_text(CERT_A)
    (tmp_path / "b.pem").write_text(CERT_B.replace("\n", "\r\n"))
    toml = """
[registry]
domain = "main.local:5000/"
username = "admin"
repository_name = "palette-images"
certificates = ["a.pem"]

[[registry.registries]]
domain = "second.local/mirror/"
username = "bob"
password_env = "SECOND_PW"
certificates = ["a.pem", "b.pem"]
insecure = true
"""
    cfg = config(tmp_path, {"EDGEFORGE_REGISTRY_PASSWORD": "pw1", "SECOND_PW": "yes"}, toml=toml)
    stylus = render(cfg)["stylus"]
    assert "registryCredentials" not in stylus
    assert stylus["externalRegistries"] == {"registries": [
        {"domain": "main.local:5000", "username": "admin", "password": "pw1", "repositoryName": "palette-images",
         "insecure": False, "certificates": [CERT_A]},
        {"domain": "second.local/mirror", "username": "bob", "password": "yes", "insecure": True,
         "certificates": [CERT_A, CERT_B]},
    ]}


def test_a_mapping_rule_switches_a_single_registry_to_external_registries(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"EDGEFORGE_REGISTRY_PASSWORD": "pw"}, registry__domain="reg.local/palette",
                 registry__username="u", registry__mapping_rules={
                     "us-docker.pkg.dev/palette-images/": "reg.local/palette",
                     "gcr.io/spectro-images-public": "reg.local/palette/"})
    ext = render(cfg)["stylus"]["externalRegistries"]
    assert ext["registries"] == [{"domain": "reg.local/palette", "username": "u", "password": "pw",
                                  "insecure": False}]
    assert ext["registryMappingRules"] == {"us-docker.pkg.dev/palette-images": "reg.local/palette",
                                           "gcr.io/spectro-images-public": "reg.local/palette"}


def test_no_registry_means_neither_form(tmp_path: Path) -> None:
    data = render(config(tmp_path))
    assert data["stylus"] == {"site": {}}
    assert data["install"] == {"poweroff": False, "reboot": False}
    assert "stages" not in data


def test_site_network_ca_certs_tags_and_users(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text(CERT_A)
    (tmp_path / "keys.pub").write_text("# ops keys\nssh-ed25519 AAAAC3 ops@x\n\nssh-rsa AAAAB3 ops2@y\n")
    toml = """
[site]
http_proxy = "http://proxy.corp:3128"
no_proxy = "localhost,10.0.0.0/8"
ca_certs = ["ca.pem"]
tags = { "rack" = "r1", "on" = "0123" }

[[site.network]]
interface = "eth0"
ip = "10.0.10.25/24"
gateway = "10.0.10.1"
nameserver = "10.0.0.2"

[[site.network]]
interface = "eth1"

[[users]]
name = "kairos"
groups = ["admin"]
ssh_keys = ["ssh-ed25519 AAAAC3inline me@host", "keys.pub"]

[[users]]
name = "ops"
passwd_env = "OPS_PW"
"""
    import os

    os.environ["OPS_PW"] = "hunter2: yes"
    try:
        data = render(config(tmp_path, toml=toml))
    finally:
        del os.environ["OPS_PW"]
    site = data["stylus"]["site"]
    assert site["network"] == {
        "httpProxy": "http://proxy.corp:3128", "noProxy": "localhost,10.0.0.0/8",
        "interfaces": {"eth0": {"type": "static", "ipAddress": "10.0.10.25/24", "gateway": "10.0.10.1",
                                "nameserver": "10.0.0.2"},
                       "eth1": {"type": "dhcp"}}}
    assert site["caCerts"] == [CERT_A]
    assert site["tags"] == {"rack": "r1", "on": "0123"}
    (stage,) = data["stages"]["initramfs"]
    assert stage["users"] == {
        "kairos": {"groups": ["admin"], "ssh_authorized_keys": [
            "ssh-ed25519 AAAAC3inline me@host", "ssh-ed25519 AAAAC3 ops@x", "ssh-rsa AAAAB3 ops2@y"]},
        "ops": {"passwd": "hunter2: yes"},
    }


def problems_of(cfg: Any) -> list[str]:
    with pytest.raises(ValidationError) as err:
        render_all(cfg, pe_version="v4.9.21", k8s_versions=None)
    assert err.value.exit_code == 5
    return err.value.details


def test_every_config_problem_is_listed_at_once(tmp_path: Path) -> None:
    (tmp_path / "not-a-cert.pem").write_text("hello")
    toml = """
[registry]
domain = "https://reg.local"
certificates = ["not-a-cert.pem"]  # a missing one is a config error (exit 2): test_config
mapping_rules = { "a.io" = "reg.local" }

[site]
project_name = "P"
project_uid = "123"

[[site.network]]
type = "static"

[[users]]
groups = ["admin"]
ssh_keys = ["nope"]
passwd_env = "UNSET_VAR"
"""
    details = problems_of(config(tmp_path, toml=toml))
    joined = "\n".join(details)
    for expected in ("must not have a scheme", "holds no PEM certificate",
                     "project_name and site.project_uid are both set", "site.network[0].interface is required",
                     "users[0].name is required", "users[0].ssh_keys", "users[0].passwd_env names UNSET_VAR"):
        assert expected in joined, expected


def test_placeholders_from_the_upstream_template_are_refused(tmp_path: Path) -> None:
    env = {"EDGEFORGE_REGISTRY_PASSWORD": "####", "EDGEFORGE_EDGE_HOST_TOKEN": "aUAxxxxxxxxxxxx0ChYzz"}
    cfg = config(tmp_path, env,
                 registry__domain="registry.example.com/palette", site__palette_endpoint="palette.example.com")
    joined = "\n".join(problems_of(cfg))
    assert "stylus.site.edgeHostToken: still the upstream placeholder" in joined
    assert "stylus.registryCredentials.password: still the upstream placeholder" in joined
    assert "stylus.registryCredentials.domain: 'registry.example.com/palette' is the documentation" in joined
    assert "stylus.site.paletteEndpoint: 'palette.example.com' is a placeholder" in joined
    assert "aUAxxxxxxxxxxxx0ChYzz" not in joined  # secrets are never repeated


def check(text: str) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    warnings: list[str] = []
    validate(text, problems, warnings)
    return problems, warnings


def test_validate_header_and_yaml_syntax() -> None:
    assert check("stylus: {}\n")[0] == [
        "user-data: the first line must be '#cloud-config' (the Edge Installer ignores the file without it)"]
    problems, _ = check("#cloud-config\nstylus:\n  site: [\n")
    assert len(problems) == 1 and problems[0].startswith("user-data: not valid YAML at line")


def test_validate_both_registry_forms_and_misplaced_rules() -> None:
    problems, _ = check("#cloud-config\nstylus:\n  registryCredentials: {domain: a, password: b}\n"
                        "  externalRegistries: {registries: []}\n  registryMappingRules: {a: b}\n")
    assert any("registryCredentials and externalRegistries are both set" in p for p in problems)
    assert any(p.startswith("stylus.registryMappingRules: mapping rules belong under") for p in problems)
    problems, _ = check("#cloud-config\nstylus:\n  registryCredentials:\n    domain: a\n"
                        "    registryMappingRules: {a: b}\n")
    assert any("registryCredentials.registryMappingRules: mapping rules need" in p for p in problems)
    problems, _ = check("#cloud-config\nstylus: {}\nexternalRegistries: {registries: []}\n")
    assert problems == ["externalRegistries: belongs under stylus (a common indentation mistake)"]


def test_validate_types_of_documented_fields() -> None:
    problems, warnings = check(
        "#cloud-config\nstylus:\n  debug: 'yes'\n  localUI: {port: '5080'}\n"
        "  registryCredentials: {domain: r, password: null, insecure: 1}\n"
        "  externalRegistries:\n    registries:\n      - {domain: r2, certificates: '-----BEGIN'}\n"
        "  site: {tags: [a], network: {interfaces: {eth0: {type: bridge}}}}\n"
        "  fancyNewKey: 1\ninstall: {poweroff: 'true'}\nstages: {initramfs: [], sometime: []}\nfoo: 1\n")
    assert set(problems) >= {
        "stylus.debug: expected bool, got string",
        "stylus.localUI.port: expected int, got string",
        "stylus.registryCredentials.password: expected string, got null",
        "stylus.registryCredentials.insecure: expected bool, got int",
        "stylus.externalRegistries.registries[0].certificates: expected a list, got string",
        "stylus.site.tags: expected a mapping, got list",
        "stylus.site.network.interfaces.eth0.type: expected one of dhcp, static, got 'bridge'",
        "install.poweroff: expected bool, got string",
    }
    assert "stylus.fancyNewKey: unknown key (not in the Edge Installer reference)" in warnings
    assert "foo: unknown key (not in the Edge Installer reference)" in warnings
    assert "stages.sometime: not a stage the Edge Installer documents" in warnings


def test_extra_yaml_is_merged_their_keys_win_and_conflicts_are_reported(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("#cloud-config\nstylus:\n  site:\n    name: from-extra\n    hostName: h1\n"
                     "  debug: true\ninstall:\n  reboot: true\n")
    cfg = config(tmp_path, {"EDGEFORGE_REGISTRY_PASSWORD": "pw"}, site__name="generated",
                 registry__domain="reg.local", render__extra_user_data=str(extra))
    rendered = render_all(cfg, pe_version="v4.9.21", k8s_versions=None)
    data = yaml.safe_load(rendered.user_data)
    assert rendered.user_data.startswith("#cloud-config\n")
    assert data["stylus"]["site"] == {"name": "from-extra", "hostName": "h1"}
    assert data["stylus"]["debug"] is True
    assert data["stylus"]["registryCredentials"]["password"] == "pw"
    assert data["install"] == {"poweroff": False, "reboot": True}
    assert f"{extra} overrides the generated stylus.site.name" in rendered.warnings
    assert f"{extra} overrides the generated install.reboot" in rendered.warnings
    assert not any("hostName" in w or "debug" in w for w in rendered.warnings)


def test_extra_yaml_that_adds_the_other_registry_form_is_refused(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("stylus:\n  externalRegistries:\n    registryMappingRules: {a.io: b.io}\n")
    cfg = config(tmp_path, {"EDGEFORGE_REGISTRY_PASSWORD": "pw"}, registry__domain="reg.local",
                 render__extra_user_data=str(extra))
    assert any("both set" in p for p in problems_of(cfg))


@pytest.mark.parametrize("content, expected", [
    ("- a\n- b\n", "must hold a mapping at the top level"),
    ("a: [\n", "is not valid YAML"),
])
def test_bad_extra_yaml(tmp_path: Path, content: str, expected: str) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(content)
    assert any(expected in p for p in problems_of(config(tmp_path, render__extra_user_data=str(extra))))
    missing = config(tmp_path, render__extra_user_data=str(tmp_path / "missing.yaml"))
    assert any("cannot read" in p for p in problems_of(missing))


def test_check_secrets_names_the_field_or_the_line_of_a_mask() -> None:
    from edgeforge_ext.userdata import check_secrets

    expected = [("stylus.externalRegistries.registries[1].password", "password for b.io", "b-Pa55word")]
    text = ("#cloud-config\n# token: ********\nstylus:\n  externalRegistries:\n    registries:\n"
            "      - {domain: a.io, password: '********'}\n      - {domain: b.io, password: b-Pa55word}\n")
    problems: list[str] = []
    check_secrets(text, expected, problems)
    assert problems == ["stylus.externalRegistries.registries[0].password: holds the mask ******** instead of a "
                        "secret (templates get the real values: write them with `| yq`)"]
    problems = []
    check_secrets(text.replace("'********'", "x").replace("b-Pa55word", "other"), expected, problems)
    assert problems[0] == "user-data line 2: holds the mask ******** instead of a secret"
    assert problems[1].startswith("stylus.externalRegistries.registries[1].password: the configured password for "
                                  "b.io is not in the rendered user-data")
    problems = []
    check_secrets(text.replace("'********'", "'pre-********-b-Pa55word'").replace("# token: ********", ""),
                  [("f", "w", "********-b-Pa55word")], problems)
    assert problems == []  # a secret that itself holds the mask text is no mask
