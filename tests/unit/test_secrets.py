"""The redactor masks a secret in every form it takes in text: raw, escaped, percent-encoded, in Basic auth."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest
import yaml

from edgeforge_ext.secrets import MASK, Redactor, Secret
from edgeforge_ext.yamlquote import yaml_quote

PASSWORDS = ['pa"ss\\word-1', "pässwörd", "密码-パスワード-1", "it's a \t tab", "p@ss/w0rd+x&y=z%"]


def _forms(value: str) -> dict[str, str]:
    """How a user would see the value printed: by JSON, YAML, Python and URL writers."""
    def inner(quoted: str) -> str:
        return quoted.strip().removesuffix("...").strip()[1:-1]

    return {
        "raw": value,
        "json": json.dumps(value)[1:-1],
        "json unicode": json.dumps(value, ensure_ascii=False)[1:-1],
        "yq filter": yaml_quote(value)[1:-1],
        "pyyaml": inner(yaml.safe_dump(value, default_style='"', width=10**6)),
        "pyyaml unicode": inner(yaml.safe_dump(value, default_style='"', allow_unicode=True, width=10**6)),
        "pyyaml single": inner(yaml.safe_dump(value, default_style="'", allow_unicode=True, width=10**6)),
        "yaml in yaml": yaml_quote(yaml_quote(value)[1:-1])[1:-1],
        "python repr": repr(value)[1:-1],
        "quote": quote(value, safe=""),
        "quote path": quote(value),
        "quote_plus": quote_plus(value),
    }


@pytest.mark.parametrize("password", PASSWORDS)
def test_every_encoding_of_a_secret_is_masked(password: str) -> None:
    redact = Redactor([Secret(password)])
    for name, form in _forms(password).items():
        line = f"before {form} after"
        assert redact(line) == f"before {MASK} after", name
        assert redact.bytes(line.encode()) == f"before {MASK} after".encode(), name


@pytest.mark.parametrize("password", PASSWORDS)
def test_basic_credentials_of_a_login_are_masked(password: str) -> None:
    header = "Authorization: Basic " + base64.b64encode(f"builder:{password}".encode()).decode()
    assert Redactor([Secret(password, login="builder")])(header) == f"Authorization: Basic {MASK}"
    assert Redactor([Secret(password)])(header) == header  # without its user name the pair is unknown


def test_a_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    redact = Redactor([Secret("abcd-1234"), Secret("abcd-1234-extra")])
    assert redact("x abcd-1234-extra y abcd-1234") == f"x {MASK} y {MASK}"


def test_url_credentials_are_known_with_their_user_name() -> None:
    from edgeforge_ext import secrets

    secrets.remember(secrets.url_login("http://proxyuser:p%40ss-w0rd@proxy:3128", "proxy"))
    header = "Proxy-Authorization: Basic " + base64.b64encode(b"proxyuser:p@ss-w0rd").decode()
    assert secrets.scrub(f"{header} p@ss-w0rd p%40ss-w0rd") == f"Proxy-Authorization: Basic {MASK} {MASK} {MASK}"


def test_a_secret_shorter_than_four_characters_is_not_masked() -> None:
    redact = Redactor([Secret("pas"), Secret("word")])
    assert redact("password: pas") == f"pass{MASK}: pas"
