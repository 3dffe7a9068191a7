"""A registry whose htpasswd holds a non-ASCII password: every way edgeforge-ext authenticates works.

`docker login` and curl send Basic credentials as UTF-8 (RFC 7617); so must the registry client (the
credential check, `images verify`, `images mirror`) and the Docker daemon push.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests

from edgeforge_ext import engine
from edgeforge_ext.cli import run
from edgeforge_ext.registry.client import check_credentials
from edgeforge_ext.secrets import Secret
from tests.engine.registry_push import push_tiny_image

pytestmark = pytest.mark.engine

PASSWORDS = ["pässwörd-1", "密码-パスワード-1"]  # Latin-1 letters; CJK (no Latin-1 form at all)


def _utf8(reg: Any) -> tuple[bytes, bytes]:
    """The Basic credentials as curl sends them (requests would encode a str as Latin-1)."""
    return reg.username.encode(), reg.password.encode()


@pytest.fixture(params=PASSWORDS, ids=["latin1-letters", "cjk"])
def unicode_registry(request: pytest.FixtureRequest, registry_factory: Any) -> Any:
    reg = registry_factory(auth=True, password=request.param)
    assert requests.get(f"{reg.url}/v2/", auth=_utf8(reg), timeout=10).status_code == 200  # as curl -u
    return reg


def test_the_credential_check_passes(unicode_registry: Any) -> None:
    check_credentials(unicode_registry.host, unicode_registry.username, Secret(unicode_registry.password))


def test_images_verify_and_mirror(unicode_registry: Any, registry_factory: Any, tmp_path: Any,
                                  capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    ext = unicode_registry
    src = registry_factory(auth=False)
    push_tiny_image(src.url, "team/app", "1.0")
    push_tiny_image(src.url, "team/db", "7", content=b"db\n")
    push_tiny_image(ext.url, "mirror/team/db", "7", content=b"db\n", auth=_utf8(ext))
    images = tmp_path / "images.txt"
    images.write_text(f"{src.host}/team/app:1.0\n{src.host}/team/db:7\n")
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", ext.password)
    opts = ["--images", str(images), "--registry", f"{ext.host}/mirror", "--registry-username", ext.username,
            "--registry-mapping", f"{src.host}={ext.host}/mirror", "--json"]

    assert run(["images", "verify", *opts]) == 9  # the app is not there yet: missing, not an auth failure
    out, err = capsys.readouterr()
    assert [i["present"] for i in json.loads(out)["images"]] == [False, True], err

    assert run(["images", "mirror", *opts]) == 0
    out, err = capsys.readouterr()
    counts = json.loads(out)
    assert {k: counts[k] for k in ("copied", "skipped", "failed")} == {"copied": 1, "skipped": 1, "failed": 0}, err
    assert run(["images", "verify", *opts]) == 0
    assert ext.password not in "".join(capsys.readouterr())


def test_a_daemon_push(unicode_registry: Any, docker_client: Any, busybox_image: str) -> None:
    ref = f"{unicode_registry.host}/efx-test/unicode:{uuid.uuid4().hex[:8]}"
    engine.tag_image(docker_client, busybox_image, ref)
    try:
        digest = engine.push_image(docker_client, ref, username=unicode_registry.username,
                                   password=Secret(unicode_registry.password), retries=0)
    finally:
        docker_client.images.remove(ref)
    repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
    head = requests.head(f"{unicode_registry.url}/v2/{repo}/manifests/{tag}", auth=_utf8(unicode_registry),
                         timeout=10, headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert head.status_code == 200 and head.headers["Docker-Content-Digest"] == digest
