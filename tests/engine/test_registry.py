"""The registry client against real `docker-registry` processes on loopback (one open, one with htpasswd)."""

from __future__ import annotations

import socket

import pytest
import requests

from edgeforge_ext.errors import RegistryError
from edgeforge_ext.registry.client import (
    Clients,
    Credentials,
    check_credentials,
    manifest_digest,
    registry_host,
)
from edgeforge_ext.registry.images import parse_ref
from edgeforge_ext.registry.transfer import copy_image
from edgeforge_ext.secrets import Secret
from tests.engine.registry_push import MANIFEST, push_tiny_image, push_tiny_index

pytestmark = pytest.mark.engine


def _creds(reg, password=None):
    return Credentials(reg.username, Secret(password or reg.password))


def test_registry_host_strips_the_namespace():
    assert registry_host("10.10.254.254:8000/spectro-images") == "10.10.254.254:8000"
    assert registry_host("https://reg.io/x/") == "reg.io"


def test_check_credentials(registry):
    check_credentials(registry.host, registry.username, Secret(registry.password))


def test_wrong_password_is_reported_as_authentication(registry):
    with pytest.raises(RegistryError) as err:
        check_credentials(registry.host, registry.username, Secret("wrong-Pa55"))
    assert err.value.exit_code == 9
    assert f"authentication failed for {registry.host} as {registry.username}" in err.value.message
    assert "wrong-Pa55" not in err.value.message


def test_missing_credentials_are_reported_as_such(registry):
    with pytest.raises(RegistryError, match=f"registry {registry.host} requires credentials"):
        check_credentials(registry.host, "", None)


def test_manifest_digest_present_and_missing(registry):
    digest = push_tiny_image(registry.url, "team/app", "1.0", auth=registry.auth)
    creds = _creds(registry)
    assert manifest_digest(f"{registry.host}/team/app:1.0", creds) == digest
    assert manifest_digest(f"{registry.host}/team/app@{digest}", creds) == digest
    assert manifest_digest(f"{registry.host}/team/app:nope", creds) is None
    assert manifest_digest(f"{registry.host}/no/such/repo:1", creds) is None


def test_wrong_password_on_a_manifest_is_not_missing(registry):
    with pytest.raises(RegistryError, match="authentication failed"):
        manifest_digest(f"{registry.host}/team/app:1.0", _creds(registry, "bad-Pa55"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_registry_is_retried_then_named():
    host = f"127.0.0.1:{_closed_port()}"
    from edgeforge_ext.registry.client import RegistryClient

    client = RegistryClient(host, attempts=3, backoff=0.01)
    with pytest.raises(RegistryError) as err:
        client.manifest_digest(parse_ref(f"{host}/a/b:1"))
    assert f"registry {host} is unreachable after 3 attempts" in err.value.message


def test_copy_image_then_skip_then_refuse_a_different_image(registry_factory):
    src = registry_factory(auth=False)
    dst = registry_factory(auth=True)
    digest = push_tiny_image(src.url, "team/app", "1.0")
    creds = _creds(dst)
    source = parse_ref(f"{src.host}/team/app:1.0")
    target = parse_ref(f"{dst.host}/mirror/team/app:1.0")
    with Clients(lambda host: creds if host == dst.host else Credentials()) as clients:
        first = copy_image(source, target, clients)
        assert (first.status, first.digest) == ("copied", digest)
        # the target really serves it, byte for byte
        got = requests.get(f"{dst.url}/v2/mirror/team/app/manifests/1.0", headers={"Accept": MANIFEST},
                           auth=dst.auth, timeout=5)
        assert got.headers["Docker-Content-Digest"] == digest
        assert copy_image(source, target, clients).status == "skipped"

        other = push_tiny_image(dst.url, "mirror/team/app", "2.0", content=b"other\n", auth=dst.auth)
        clash = parse_ref(f"{dst.host}/mirror/team/app:2.0")
        refused = copy_image(source, clash, clients)
        assert refused.status == "failed" and "holds a different image" in refused.detail
        assert manifest_digest(clash, creds) == other  # untouched
        forced = copy_image(source, clash, clients, force=True)
        assert forced.status == "copied" and forced.detail == f"overwrote {other}"
        assert manifest_digest(clash, creds) == digest


def test_copy_multi_platform_index(registry_factory):
    src = registry_factory(auth=False)
    dst = registry_factory(auth=True)
    digest = push_tiny_index(src.url, "team/multi", "2.0")
    creds = _creds(dst)
    with Clients(lambda host: creds if host == dst.host else Credentials()) as clients:
        result = copy_image(parse_ref(f"{src.host}/team/multi:2.0"), parse_ref(f"{dst.host}/m/multi:2.0"),
                            clients)
    assert (result.status, result.digest) == ("copied", digest)
    assert manifest_digest(f"{dst.host}/m/multi:2.0", creds) == digest


def test_copy_within_one_registry_mounts_blobs(registry):
    push_tiny_image(registry.url, "origin/app", "1.0", auth=registry.auth)
    creds = _creds(registry)
    with Clients(lambda host: creds) as clients:
        result = copy_image(parse_ref(f"{registry.host}/origin/app:1.0"),
                            parse_ref(f"{registry.host}/copy/app:1.0"), clients)
    assert result.status == "copied"
    assert manifest_digest(f"{registry.host}/copy/app:1.0", creds) == result.digest


def test_verify_many_tags_of_one_repository_by_listing_and_by_head(registry):
    from edgeforge_ext.registry.images import RewriteRules
    from edgeforge_ext.registry.transfer import verify_images

    push_tiny_image(registry.url, "prov/edge", ["k3s-1.29", "k3s-1.30", "k3s-1.31"], auth=registry.auth)
    refs = [f"{registry.host}/prov/edge:{t}" for t in ("k3s-1.29", "k3s-1.28", "k3s-1.30", "k3s-1.31",
                                                        "k3s-1.32")]
    refs.append(f"{registry.host}/prov/none:1")
    rewrites = [RewriteRules.make().rewrite(parse_ref(r)) for r in refs]
    expected = [True, False, True, True, False, False]
    with Clients(lambda host: _creds(registry)) as clients:
        assert [p.present for p in verify_images(rewrites, clients)] == expected
        assert [p.present for p in verify_images(rewrites, clients, tag_list_from=0)] == expected
        no_repo = [RewriteRules.make().rewrite(parse_ref(f"{registry.host}/prov/gone:{i}")) for i in range(4)]
        assert [p.present for p in verify_images(no_repo, clients)] == [False] * 4
    with Clients(lambda host: _creds(registry, "bad-Pa55")) as clients, \
            pytest.raises(RegistryError, match="authentication failed"):
        verify_images(rewrites, clients)
