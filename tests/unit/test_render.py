"""The Jinja side: YAML quoting, strict and sandboxed templates, the loader guard, atomic writes."""

from __future__ import annotations

import os
import stat
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeforge_ext.errors import ConfigError, RenderError, ValidationError
from edgeforge_ext.render import (
    Rendered,
    _environment,
    packaged_template_dir,
    render_all,
    render_template,
    write_rendered,
)
from edgeforge_ext.secrets import Secret
from edgeforge_ext.userdata import build_context
from edgeforge_ext.yamlquote import QuoteError, yaml_quote
from tests.configs import make_config

# Everything YAML can hold: every code point except lone surrogates (not Unicode text at all).
TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)
TRICKY = [
    "####", "a: b", "key: value #c", "'single'", '"double"', "back\\slash", "line1\nline2", "\r\n",
    "yes", "no", "on", "off", "null", "~", "0123", "1e3", "0x1F", "*x", "&y", "!tag", "%yaml", "@at",
    "`tick`", "  leading", "trailing  ", "\ttab", "- item", "? q", "[a, b]", "{a: b}", "|", ">",
    "ünïcödé ☃ 𝄞", "{{ 7 * 7 }}", "{% raw %}", "${HOME}", "\x00nul", "\x7f", "\x85nel", "\u2028ls",
    "\u2029ps", "\ufeffbom", "\uffff", "", " ", "---", "...", "#cloud-config",
]


cfg = partial(make_config, base={"build.custom_tag": "x"})

def parsed(config: Any) -> dict[str, Any]:
    """Render the packaged user-data template with the config's values and parse it back."""
    problems: list[str] = []
    context = build_context(config, problems=problems, warnings=[])
    assert problems == []
    text = render_template("user-data.j2", context)
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("value", TRICKY)
def test_yq_round_trips_tricky_strings(value: str) -> None:
    assert yaml.safe_load(f"k: {yaml_quote(value)}\n") == {"k": value}


def test_yq_types_and_refusals() -> None:
    assert yaml.safe_load(yaml_quote(["a", "yes", 1, True])) == ["a", "yes", 1, True]
    assert yaml.safe_load(yaml_quote({"on": "null"})) == {"on": "null"}
    assert yaml_quote(Secret("s3cret")) == '"s3cret"'
    with pytest.raises(QuoteError, match="lone surrogate U\\+DC80"):
        yaml_quote("bad\udc80")
    with pytest.raises(QuoteError, match="not set"):
        yaml_quote(None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=TEXT.filter(bool), token=TEXT.filter(bool))
def test_password_and_token_round_trip(tmp_path: Path, password: str, token: str) -> None:
    env = {"EDGEFORGE_REGISTRY_PASSWORD": password, "EDGEFORGE_EDGE_HOST_TOKEN": token}
    data = parsed(cfg(tmp_path, env, registry__domain="reg.local:5000", registry__username="u"))
    assert data["stylus"]["registryCredentials"]["password"] == password
    assert data["stylus"]["site"]["edgeHostToken"] == token


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tags=st.dictionaries(TEXT, TEXT, max_size=4), name=TEXT.filter(bool), user=TEXT.filter(bool))
def test_tags_and_names_round_trip(tmp_path: Path, tags: dict[str, str], name: str, user: str) -> None:
    config = cfg(tmp_path, site__tags=tags, site__name=name, registry__domain="r.local",
                 registry__username=user)
    data = parsed(config)
    assert data["stylus"]["site"].get("tags", {}) == tags
    assert data["stylus"]["site"]["name"] == name
    assert data["stylus"]["registryCredentials"]["username"] == user


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=TEXT.filter(bool))
def test_password_round_trips_through_the_extra_yaml_merge(tmp_path: Path, password: str) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("stylus:\n  debug: true\n")
    config = cfg(tmp_path, {"EDGEFORGE_REGISTRY_PASSWORD": password}, registry__domain="reg.local",
                 render__extra_user_data=str(extra))
    from edgeforge_ext.userdata import merge_extra

    text = render_template("user-data.j2", build_context(config, problems=[], warnings=[]))
    merged = yaml.safe_load(merge_extra(text, extra, [], []))
    assert merged["stylus"]["registryCredentials"]["password"] == password
    assert merged["stylus"]["debug"] is True


def test_lone_surrogate_in_a_secret_is_refused_with_the_key(tmp_path: Path) -> None:
    config = cfg(tmp_path, {"EDGEFORGE_REGISTRY_PASSWORD": "p\udcff"}, registry__domain="reg.local")
    with pytest.raises(ValidationError) as err:
        render_all(config, pe_version="v4.9.21", k8s_versions=None)
    assert any(d.startswith("registry.password: ") and "surrogate" in d for d in err.value.details)
    assert "p\udcff" not in " ".join(err.value.details)


def test_template_expressions_in_values_are_never_evaluated(tmp_path: Path) -> None:
    data = parsed(cfg(tmp_path, site__name="{{ 7 * 7 }}", site__tags={"{% if 1 %}": "{{ range(9) }}"}))
    assert data["stylus"]["site"]["name"] == "{{ 7 * 7 }}"
    assert data["stylus"]["site"]["tags"] == {"{% if 1 %}": "{{ range(9) }}"}


def write(dir_: Path, name: str, text: str) -> Path:
    dir_.mkdir(parents=True, exist_ok=True)
    path = dir_ / name
    path.write_text(text)
    return path


def test_missing_variable_names_the_template_file_and_line(tmp_path: Path) -> None:
    tpl = tmp_path / "tpl"
    path = write(tpl, "user-data.j2", "#cloud-config\nstylus:\n  site:\n    name: {{ site.nmae | yq }}\n")
    for _ in range(2):  # the second time from the compiled-template cache: still file and line
        _environment.cache_clear()
        with pytest.raises(RenderError) as err:
            render_template("user-data.j2", {"site": {"name": "n"}}, template_dir=tpl)
        assert err.value.exit_code == 5
        assert err.value.message.startswith(f"{path}:4: ")
        assert "nmae" in err.value.message


def test_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    tpl = tmp_path / "tpl"
    path = write(tpl, "user-data.j2", "#cloud-config\n\n{% if x %}\nnever closed\n")
    with pytest.raises(RenderError, match=f"^{path}:\\d+: "):
        render_template("user-data.j2", {"x": 1}, template_dir=tpl)


def test_none_written_without_a_guard_fails_with_the_line(tmp_path: Path) -> None:
    tpl = tmp_path / "tpl"
    path = write(tpl, "user-data.j2", "#cloud-config\nx: {{ value | yq }}\n")
    with pytest.raises(RenderError, match=f"^{path}:2: .*not set"):
        render_template("user-data.j2", {"value": None}, template_dir=tpl)


def test_loader_refuses_paths_outside_the_template_root(tmp_path: Path) -> None:
    tpl = tmp_path / "tpl"
    write(tmp_path, "secret.txt", "outside")
    (tpl / "link.j2").parent.mkdir(parents=True, exist_ok=True)
    (tpl / "link.j2").symlink_to(tmp_path / "secret.txt")
    for include in ("../secret.txt", str(tmp_path / "secret.txt"), "link.j2"):
        write(tpl, "user-data.j2", f'{{% include "{include}" %}}\n')
        with pytest.raises(RenderError, match="not found"):
            render_template("user-data.j2", {}, template_dir=tpl)


def test_sandbox_blocks_attribute_escapes(tmp_path: Path) -> None:
    tpl = tmp_path / "tpl"
    write(tpl, "user-data.j2", "{{ ''.__class__.__mro__[1].__subclasses__() }}\n")
    with pytest.raises(RenderError, match=r"user-data\.j2:1: .*unsafe"):
        render_template("user-data.j2", {}, template_dir=tpl)


def test_user_template_directory_is_used_with_the_same_variables(tmp_path: Path) -> None:
    tpl = tmp_path / "tpl"
    write(tpl, "user-data.j2", "#cloud-config\nstylus:\n  site:\n    name: {{ site.name | yq }}\n"
          "  registryCredentials:\n    domain: {{ registry_credentials.domain | yq }}\n"
          "    password: {{ registry_credentials.password | yq }}\n")
    config = cfg(tmp_path, {"EDGEFORGE_REGISTRY_PASSWORD": "pw: #1"}, site__name="edge-1",
                 registry__domain="reg.local/", render__template_dir=str(tpl))
    rendered = render_all(config, pe_version="v4.9.21", k8s_versions=None)
    data = yaml.safe_load(rendered.user_data)
    assert data == {"stylus": {"site": {"name": "edge-1"},
                               "registryCredentials": {"domain": "reg.local", "password": "pw: #1"}}}
    assert "has no arg.j2: using the packaged one" in " ".join(rendered.warnings)
    assert "CUSTOM_TAG=x\n" in rendered.arg_text


def test_missing_template_dir_is_a_config_error(tmp_path: Path) -> None:
    config = cfg(tmp_path, render__template_dir=str(tmp_path / "nope"))
    with pytest.raises(ConfigError):
        render_all(config, pe_version="v1", k8s_versions=None)


def test_packaged_templates_are_found() -> None:
    root = packaged_template_dir()
    assert (root / "user-data.j2").is_file() and (root / "arg.j2").is_file()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_rendered_is_atomic_0600_and_only_on_change(tmp_path: Path) -> None:
    rendered = Rendered(user_data="#cloud-config\n", arg_text="A=1\n", arg_values={"A": "1"}, warnings=())
    dest = tmp_path / "out"
    old_umask = os.umask(0)
    try:
        ud, arg = write_rendered(rendered, dest)
    finally:
        os.umask(old_umask)
    assert (ud, arg) == (dest / "user-data", dest / ".arg")
    assert mode(ud) == 0o600 and mode(arg) == 0o644
    assert ud.read_text() == "#cloud-config\n" and arg.read_text() == "A=1\n"
    inode, mtime = ud.stat().st_ino, ud.stat().st_mtime_ns
    ud.chmod(0o644)
    write_rendered(rendered, dest)
    assert (ud.stat().st_ino, ud.stat().st_mtime_ns) == (inode, mtime)  # same bytes: not rewritten
    assert mode(ud) == 0o600  # but the mode is put right
    write_rendered(Rendered("#cloud-config\nx: 1\n", "A=1\n", {"A": "1"}, ()), dest)
    assert ud.stat().st_ino != inode and mode(ud) == 0o600
    assert sorted(p.name for p in dest.iterdir()) == [".arg", "user-data"]  # no temp files left
