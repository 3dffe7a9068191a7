"""Config layering: defaults < file < env < flags, with the source of every value."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeforge_ext.config import load_config
from edgeforge_ext.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "edgeforge.toml"
    p.write_text(text)
    return p


def test_defaults_when_nothing_given(tmp_path):
    c = load_config(None, env={}, flags={}, cwd=tmp_path)
    assert c["build.arch"] == "amd64"
    assert c["preflight.min_cpus"] == 4
    assert c.sources["build.arch"] == "default"
    assert c.config_file is None


def test_layers_in_order_and_sources(tmp_path):
    f = write(tmp_path, '[build]\ncustom_tag = "fromfile"\nos_version = "24.04"\niso_name = "fileiso"\n')
    env = {"EDGEFORGE_BUILD_CUSTOM_TAG": "fromenv", "EDGEFORGE_BUILD_ISO_NAME": "enviso"}
    c = load_config(f, env=env, flags={"build.custom_tag": "fromflag"}, cwd=tmp_path)
    assert c["build.custom_tag"] == "fromflag" and c.sources["build.custom_tag"] == "flag"
    assert c["build.iso_name"] == "enviso" and c.sources["build.iso_name"] == "env EDGEFORGE_BUILD_ISO_NAME"
    assert c["build.os_version"] == "24.04" and c.sources["build.os_version"] == f"file {f}"


def test_edgeforge_toml_in_cwd_is_found(tmp_path):
    write(tmp_path, '[canvos]\nref = "v4.9.38"\n')
    c = load_config(None, env={}, flags={}, cwd=tmp_path)
    assert c["canvos.ref"] == "v4.9.38"


def test_env_types_are_converted(tmp_path):
    env = {"EDGEFORGE_PREFLIGHT_MIN_CPUS": "2", "EDGEFORGE_BUILD_K8S_VERSIONS": "1.30.10, 1.31.6",
           "EDGEFORGE_REGISTRY_INSECURE": "yes", "EDGEFORGE_REGISTRY_MAPPING_RULES": "a.io/x=b.io/y"}
    c = load_config(None, env=env, flags={}, cwd=tmp_path)
    assert c["preflight.min_cpus"] == 2
    assert c["build.k8s_versions"] == ["1.30.10", "1.31.6"]
    assert c["registry.insecure"] is True
    assert c["registry.mapping_rules"] == {"a.io/x": "b.io/y"}


def test_malformed_toml_names_file_and_line(tmp_path):
    f = write(tmp_path, '[build]\ncustom_tag = "ok"\narch = \n')
    with pytest.raises(ConfigError) as e:
        load_config(f, env={}, flags={}, cwd=tmp_path)
    assert str(f) in e.value.message and "line 3" in e.value.message
    assert e.value.exit_code == 2


def test_unknown_key_did_you_mean(tmp_path):
    f = write(tmp_path, '[build]\ncustom_tagg = "x"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'build.custom_tagg'.*did you mean 'build.custom_tag'"):
        load_config(f, env={}, flags={}, cwd=tmp_path)


def test_unknown_section_did_you_mean(tmp_path):
    f = write(tmp_path, '[preflite]\nmin_cpus = 2\n')
    with pytest.raises(ConfigError, match=r"did you mean 'preflight\.min_cpus'"):
        load_config(f, env={}, flags={}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("text", "env", "match"),
    [
        ('[preflight]\nmin_cpus = "four"\n', {}, r"preflight.min_cpus must be a whole number.*\(file "),
        ('[preflight]\nmin_cpus = 0\n', {}, r"preflight.min_cpus must be at least 1"),
        ('[build]\narch = "s390x"\n', {}, r"build.arch must be one of amd64, arm64"),
        ("", {"EDGEFORGE_PREFLIGHT_MIN_DISK_GB": "lots"},
         r"preflight.min_disk_gb.*env EDGEFORGE_PREFLIGHT_MIN_DISK_GB"),
        ("", {"EDGEFORGE_REGISTRY_INSECURE": "maybe"}, r"registry.insecure must be true or false"),
        ('[build]\nskip = ["earthlyy"]\n', {}, r"did you mean 'earthly'"),
    ],
)
def test_wrong_type_or_range_names_key_and_layer(tmp_path, text, env, match):
    f = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match):
        load_config(f, env=env, flags={}, cwd=tmp_path)


def test_secrets_from_env_and_file_are_masked(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("hunter2-file\n")
    c = load_config(None, env={"EDGEFORGE_EDGE_HOST_TOKEN": "tok-123456"},
                    flags={"registry.password_file": str(pw)}, cwd=tmp_path)
    assert c.registry_password is not None and c.registry_password.reveal() == "hunter2-file"
    assert c.edge_host_token is not None and c.edge_host_token.reveal() == "tok-123456"
    assert "hunter2" not in repr(c) and "tok-123456" not in repr(c)
    assert str(c.registry_password) == "********"


def test_password_sources_layer_like_every_other_value(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("from-file")
    env = {"EDGEFORGE_REGISTRY_PASSWORD": "from-env", "EDGEFORGE_EDGE_HOST_TOKEN": "tok-env"}
    tok = tmp_path / "tok"
    tok.write_text("tok-file")
    # A file named by a flag beats the environment ...
    c = load_config(None, env=env, flags={"registry.password_file": str(pw), "site.edge_host_token_file": str(tok)},
                    cwd=tmp_path)
    assert c.registry_password.reveal() == "from-file" and c.edge_host_token.reveal() == "tok-file"
    # ... which beats a file named in edgeforge.toml.
    f = tmp_path / "edgeforge.toml"
    f.write_text(f'[registry]\npassword_file = "{pw}"\n[site]\nedge_host_token_file = "{tok}"\n')
    c = load_config(f, env=env, flags={}, cwd=tmp_path)
    assert c.registry_password.reveal() == "from-env" and c.edge_host_token.reveal() == "tok-env"
    c = load_config(f, env={}, flags={}, cwd=tmp_path)
    assert c.registry_password.reveal() == "from-file" and c.edge_host_token.reveal() == "tok-file"


def test_registries_and_variants_from_file(tmp_path):
    f = write(tmp_path, """
[[registry.registries]]
domain = "a.example:5000/palette"
username = "u"
password_env = "A_PASS"
insecure = true

[build]
custom_tag = "base"

[[variants]]
name = "rke2"
k8s_distribution = "rke2"
k8s_versions = ["1.30.4"]
""")
    c = load_config(f, env={"A_PASS": "pa55"}, flags={}, cwd=tmp_path)
    assert c.registries[0].password is not None and c.registries[0].password.reveal() == "pa55"
    assert c.registries[0].insecure is True
    v = c.with_variant("rke2")
    assert v["build.k8s_distribution"] == "rke2" and v.sources["build.k8s_distribution"] == "variant rke2"
    assert v["build.custom_tag"] == "base"
    with pytest.raises(ConfigError, match="unknown variant 'nope'"):
        c.with_variant("nope")


def test_registry_password_env_missing_is_an_error(tmp_path):
    f = write(tmp_path, '[[registry.registries]]\ndomain = "a"\npassword_env = "NOPE"\n')
    with pytest.raises(ConfigError, match="NOPE, which is not set"):
        load_config(f, env={}, flags={}, cwd=tmp_path)


def test_relative_paths_in_file_are_relative_to_the_file(tmp_path):
    sub = tmp_path / "conf"
    sub.mkdir()
    (sub / "token").write_text("abc-token")
    f = sub / "edgeforge.toml"
    f.write_text('[site]\nedge_host_token_file = "token"\n')
    c = load_config(f, env={}, flags={}, cwd=tmp_path)
    assert c.edge_host_token is not None and c.edge_host_token.reveal() == "abc-token"


def test_a_string_where_a_list_belongs_is_a_type_error_naming_key_and_file(tmp_path):
    f = write(tmp_path, '[build]\nk8s_versions = "1.32.3,1.33.1"\n')
    with pytest.raises(ConfigError) as e:
        load_config(f, env={}, flags={}, cwd=tmp_path)
    assert e.value.exit_code == 2
    assert e.value.message == f"build.k8s_versions must be a list of strings, got the string '1.32.3,1.33.1' (file {f})"
    assert e.value.hint == 'write a list: k8s_versions = ["1.32.3", "1.33.1"]'
    variant = write(tmp_path, '[[variants]]\nname = "a"\nk8s_versions = "1.32.3"\n')
    with pytest.raises(ConfigError, match=r"build.k8s_versions must be a list of strings.*variant a"):
        load_config(variant, env={}, flags={}, cwd=tmp_path)


def test_every_unknown_key_in_the_file_is_reported_at_once(tmp_path):
    f = write(tmp_path, '[build]\ncustom_tagg = "x"\nk8s_version = ["1.32.3"]\n[preflite]\nmin_cpus = 2\n'
                        '[[registry.registries]]\ndomian = "r.io"\n[[users]]\nname = "ops"\nssh_key = "x"\n')
    with pytest.raises(ConfigError) as e:
        load_config(f, env={}, flags={}, cwd=tmp_path)
    assert e.value.message == f"{f}: 5 unknown keys"
    assert e.value.details == [
        "'build.custom_tagg' (did you mean 'build.custom_tag'?)",
        "'build.k8s_version' (did you mean 'build.k8s_versions'?)",
        "'preflite' (did you mean 'preflight.min_cpus'?)",
        "'registry.registries[0].domian' (did you mean 'domain'?)",
        "'users[0].ssh_key' (did you mean 'ssh_keys'?)",
    ]


def test_a_value_echoed_in_an_error_is_cut_to_200_characters(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(None, env={"EDGEFORGE_BUILD_ARCH": "x" * 5000}, flags={}, cwd=tmp_path)
    assert "got 'xxxx" in e.value.message and "x" * 200 not in e.value.message
    assert len(e.value.message) < 300
