""".arg: every value explicit, validated, quoted so bash and Earthly (godotenv) read it back unchanged."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeforge_ext.argfile import arg_value_problem, nearest_versions, quote_arg
from edgeforge_ext.errors import ValidationError
from edgeforge_ext.render import render_all, write_rendered
from tests.configs import make_config

K8S = {"k3s": ["1.29.14", "1.30.10", "1.31.6", "1.32.3"], "rke2": ["1.30.5"]}
TRICKY = [
    "", "plain", "a b", "  lead", "trail  ", "x #not-a-comment", "#start", "a#b", "$HOME", "${HOME}", "$(id)",
    "`id`", "a\\b", "\\x", "it's", "say \"hi\"", "ünï ☃", "*", "?", "[a]", "{a,b}", "~/x", "a=b", "a;b",
    "a|b", "a&b", "a>b", "(x)", "!bang", "---", "x---", "tab\there", "%s", "-n", "-e", "http://p:3128",
    "a'b!c", "'", "''",
]


cfg = partial(make_config, base={"build.custom_tag": "x"})

def read_with_bash(arg: Path, keys: list[str]) -> dict[str, str]:
    """What `source .arg` gives (earthly.sh does this): each variable NUL-terminated."""
    script = 'set -a; source "$1"; shift; for k in "$@"; do printf "%s\\0" "${!k}"; done'
    out = subprocess.run(["bash", "-c", script, "bash", str(arg), *keys], capture_output=True, check=True,
                         env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"}).stdout
    return dict(zip(keys, out.decode().split("\0")[:-1], strict=True))


def read_like_godotenv(text: str) -> dict[str, str]:
    """A line-for-line port of joho/godotenv v1.5.1 parser.go (what Earthly reads .arg with).

    No Go toolchain here, so the port stands in for Earthly. Variable expansion is modelled as
    "anything with $ changes", which is enough to prove the quoting avoids it.
    """
    src = text.replace("---\n", "\n").replace("\r\n", "\n")
    out: dict[str, str] = {}
    space = "\t\v\f\r \x85\xa0"
    i = 0
    while True:
        while i < len(src) and src[i].isspace():
            i += 1
        if i >= len(src):
            return out
        if src[i] == "#":
            nl = src.find("\n", i)
            if nl == -1:
                return out
            i = nl
            continue
        eq = src.index("=", i)
        key = src[i:eq].strip()
        assert re.fullmatch(r"[A-Za-z0-9_.]+", key), key
        i = eq + 1
        while i < len(src) and src[i] in space:
            i += 1
        if i < len(src) and src[i] in "'\"":
            quote = src[i]
            j = i + 1
            while not (src[j] == quote and src[j - 1] != "\\"):
                j += 1  # IndexError = unterminated quoted value (an error in godotenv too)
            value = src[i:j].strip(quote)
            if quote == '"':
                value = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m[1], m[0]), value)
                value = re.sub(r"\\([^$])", r"\1", value)
                assert "$" not in value, "godotenv would expand $"
            out[key] = value
            i = j + 1
            continue
        nl = len(src) if src.find("\n", i) == -1 else src.find("\n", i)
        line = src[i:nl]
        for k in range(len(line) - 1, 0, -1):
            if line[k] == "#" and line[k - 1] in space:
                line = line[:k]
                break
        value = line.strip(space)
        assert "$" not in value, "godotenv would expand $"
        out[key] = value
        i = nl


def test_values_are_quoted_only_as_needed() -> None:
    assert quote_arg("22.04") == "22.04"
    assert quote_arg("http://proxy:3128") == "http://proxy:3128"
    assert quote_arg("") == ""
    assert quote_arg(True) == "true"
    assert quote_arg("a b") == "'a b'"
    assert quote_arg("x---") == "'x---'"  # godotenv would eat a bare "---" before the newline
    assert quote_arg("it's") == '"it\'s"'


@pytest.mark.parametrize("value, why", [
    ("a\nb", "line break"), ("a\rb", "line break"), ("a\x00b", "control character"),
    ("it's $HOME", "no quoting reads back the same"), ("it's \"x\"", "no quoting"),
    ("it's\\", "no quoting"), ("bad\udc80", "surrogate"), ("end\\", "ends with a backslash"),
])
def test_values_no_quoting_can_carry_are_refused(value: str, why: str) -> None:
    problem = arg_value_problem(value)
    assert problem is not None and why in problem
    with pytest.raises(ValueError):
        quote_arg(value)


def test_tricky_values_read_back_unchanged_by_bash_and_godotenv(tmp_path: Path) -> None:
    extra = {f"X{i}": v for i, v in enumerate(TRICKY)}
    rendered = render_all(cfg(tmp_path, build__extra_args=extra, build__http_proxy="http://u@p:3128"),
                          pe_version="v4.9.21", k8s_versions=None)
    _, arg = write_rendered(rendered, tmp_path / "out")
    assert read_with_bash(arg, list(rendered.arg_values)) == rendered.arg_values
    assert read_like_godotenv(arg.read_text()) == rendered.arg_values
    # An empty value is never written: Earthly would let it erase the Earthfile's default.
    assert {k: rendered.arg_values[k] for k in extra if extra[k]} == {k: v for k, v in extra.items() if v}
    assert "X0" not in rendered.arg_values and "\nX0=" not in rendered.arg_text


# Every Unicode text (lone surrogates are not text); a few ASCII specials made likely.
ARG_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]) | st.sampled_from("'\"$`\\# \t\n"),
                   max_size=20)
C0 = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@settings(max_examples=200, deadline=None)
@given(value=ARG_TEXT)
def test_any_accepted_value_reads_back_unchanged(value: str) -> None:
    # The strategy is every printable text; values the rule refuses must say why, the rest round-trip.
    if arg_value_problem(value) is not None:
        assert C0.search(value) or value.endswith("\\") or ("'" in value and any(c in value for c in '"$`\\'))
        return
    text = f"A={quote_arg(value)}\nB=after\n"
    assert read_like_godotenv(text) == {"A": value, "B": "after"}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(ARG_TEXT, min_size=1, max_size=30))
def test_bash_reads_back_any_accepted_value(tmp_path: Path, values: list[str]) -> None:
    # One bash process per batch of generated values (a process per value would be slow).
    values = [v for v in values if arg_value_problem(v) is None]
    arg = tmp_path / ".arg"
    arg.write_text("".join(f"V{i}={quote_arg(v)}\n" for i, v in enumerate(values)))
    assert read_with_bash(arg, [f"V{i}" for i in range(len(values))]) == {f"V{i}": v for i, v in enumerate(values)}


def test_every_build_value_is_written_explicitly_and_no_secret(tmp_path: Path) -> None:
    env = {"EDGEFORGE_REGISTRY_PASSWORD": "pw-secret", "EDGEFORGE_EDGE_HOST_TOKEN": "tok-secret"}
    config = cfg(tmp_path, env, registry__domain="reg.local", build__k8s_versions=["1.31.6", "1.30.10"],
                 build__image_registry="10.0.0.5:5000/edge", build__fips_enabled=True,
                 build__base_image="quay.io/kairos/ubuntu:22.04")
    rendered = render_all(config, pe_version="v4.9.21", k8s_versions=K8S)
    # No empty value (the proxies are unset): Earthly would let `HTTP_PROXY=` override the Earthfile.
    assert list(rendered.arg_values) == [
        "ARCH", "IMAGE_REGISTRY", "IMAGE_REPO", "OS_DISTRIBUTION", "OS_VERSION", "K8S_DISTRIBUTION",
        "K8S_VERSION", "CUSTOM_TAG", "ISO_NAME", "PE_VERSION",
        "UPDATE_KERNEL", "CIS_HARDENING", "FIPS_ENABLED", "IS_UKI", "BASE_IMAGE", "CLUSTERCONFIG",
        "EDGE_CUSTOM_CONFIG"]
    assert not any(line.endswith("=") for line in rendered.arg_text.splitlines())
    values = rendered.arg_values
    assert values["K8S_VERSION"] == "1.31.6"  # the first; the build passes each one explicitly
    assert (values["IMAGE_REGISTRY"], values["IMAGE_REPO"], values["PE_VERSION"]) == (
        "10.0.0.5:5000/edge", "ubuntu", "v4.9.21")
    assert values["FIPS_ENABLED"] == "true" and values["UPDATE_KERNEL"] == "false"
    assert "pw-secret" not in rendered.arg_text and "tok-secret" not in rendered.arg_text
    assert "pw-secret" in rendered.user_data


def test_pe_version_override_and_absence(tmp_path: Path) -> None:
    rendered = render_all(cfg(tmp_path, build__pe_version="v4.10.0"), pe_version="v4.9.21", k8s_versions=K8S)
    assert rendered.arg_values["PE_VERSION"] == "v4.10.0"
    rendered = render_all(cfg(tmp_path, build__k8s_versions=["1.99.0"]), pe_version=None, k8s_versions=None)
    assert "PE_VERSION" not in rendered.arg_values and "PE_VERSION=" not in rendered.arg_text
    assert any(w.startswith("PE_VERSION is not set") for w in rendered.warnings)
    assert any(w.startswith("K8S_VERSION is not checked") for w in rendered.warnings)


def details(config: Any, k8s: Any = K8S) -> list[str]:
    with pytest.raises(ValidationError) as err:
        render_all(config, pe_version="v4.9.21", k8s_versions=k8s)
    assert err.value.exit_code == 5
    return err.value.details


def test_k8s_version_not_listed_names_the_nearest(tmp_path: Path) -> None:
    assert details(cfg(tmp_path, build__k8s_versions=["1.30.11"])) == [
        ".arg K8S_VERSION: 1.30.11 is not in k8s_version.json for k3s (nearest: 1.29.14, 1.30.10, 1.31.6); "
        "--allow-unlisted-k8s-version builds it anyway"]
    assert details(cfg(tmp_path, build__k8s_versions=["1.30.5"], build__k8s_distribution="kubeadm")) == [
        ".arg K8S_VERSION: the checkout's k8s_version.json lists no versions for kubeadm; "
        "--allow-unlisted-k8s-version builds it anyway"]
    assert details(cfg(tmp_path, build__k8s_versions=["v1.30.10-k3s1"])) == [
        ".arg K8S_VERSION: 'v1.30.10-k3s1' is not x.y.z (no k3s1/rke2r1 suffix)"]
    assert nearest_versions("1.32.0", K8S["k3s"], 2) == ["1.31.6", "1.32.3"]


def test_every_value_problem_is_listed(tmp_path: Path) -> None:
    config = cfg(tmp_path, build__custom_tag="Demo_1", build__iso_name="my iso", build__image_registry="https://reg",
                 build__image_repo="Ubuntu", build__update_kernel=True, build__fips_enabled=True,
                 build__extra_args={"1BAD": "x", "ARCH": "arm64", "UBUNTU_PRO_KEY": "k", "MULTI": "a\nb",
                                    "QUOTES": "it's $x"})
    assert details(config) == [
        ".arg CUSTOM_TAG: 'Demo_1': only lower-case letters and digits",
        ".arg ISO_NAME: 'my iso': only letters, digits, '-' and '_'",
        ".arg IMAGE_REGISTRY: 'https://reg': no scheme (write host[:port][/namespace])",
        ".arg IMAGE_REPO: 'Ubuntu': lower-case letters, digits and . _ - / separators",
        ".arg FIPS_ENABLED: cannot be combined with UPDATE_KERNEL=true (the CanvOS build fails)",
        ".arg 1BAD (build.extra_args): not a valid variable name (letters, digits, '_', not starting with a digit)",
        ".arg ARCH (build.extra_args): set by edgeforge-ext itself; use its own option instead",
        ".arg UBUNTU_PRO_KEY (build.extra_args): looks like a secret; .arg never holds secrets (pass them as "
        "Earthly secrets or environment variables)",
        ".arg MULTI: holds a line break, which would end the KEY=VALUE line",
        ".arg QUOTES: holds a single quote together with one of \" $ ` \\ — no quoting reads back the same in "
        "both bash (source .arg) and Earthly (godotenv)",
    ]


def test_values_the_config_layer_cannot_reject(tmp_path: Path) -> None:
    base = cfg(tmp_path)
    config = dataclasses.replace(base, values={**base.values, "build.arch": "x86", "build.os": "debian",
                                               "build.k8s_distribution": "k8s", "build.custom_tag": "",
                                               "build.image_registry": "my_reg.local"})
    assert details(config) == [
        ".arg ARCH: 'x86' is not one of amd64, arm64",
        ".arg OS_DISTRIBUTION: 'debian' is not one of ubuntu, opensuse-leap, rhel, sles",
        ".arg K8S_DISTRIBUTION: 'k8s' is not one of k3s, rke2, kubeadm, kubeadm-fips, nodeadm, canonical",
        ".arg CUSTOM_TAG: must not be empty (the profile's image URI would end in '-')",
        ".arg IMAGE_REGISTRY: 'my_reg.local': no underscores (DNS rules)",
    ]


def test_a_secret_smuggled_into_arg_is_refused(tmp_path: Path) -> None:
    config = cfg(tmp_path, {"EDGEFORGE_REGISTRY_PASSWORD": "hunter22"}, registry__domain="r.local",
                 build__extra_args={"MY_NOTE": "hunter22"})
    problems = details(config)
    assert problems == [".arg: contains a secret (env EDGEFORGE_REGISTRY_PASSWORD); .arg never holds secrets"]
