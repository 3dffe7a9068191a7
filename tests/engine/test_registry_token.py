"""The Bearer token flow and retries, against a small real HTTP server that speaks that part of the v2 API
(docker-registry's token mode needs a signing token service, which this stands in for)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from edgeforge_ext.errors import RegistryError
from edgeforge_ext.registry.client import IMAGE_TYPES, INDEX_TYPES, Credentials, RegistryClient
from edgeforge_ext.registry.images import parse_ref
from edgeforge_ext.secrets import Secret

USER, PASSWORD = "robot", "t0ken-Pa55!"
DIGEST = "sha256:" + "1" * 64


class _State:
    def __init__(self) -> None:
        self.failures: dict[str, int] = {}  # path -> how many 503s are left to serve
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.tokens_issued = 0


def _handler(state: _State, port_box: list[int]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _challenge(self, scope: str = "") -> None:
            realm = f'Bearer realm="http://127.0.0.1:{port_box[0]}/token",service="fake-registry"'
            if scope:
                realm += f',scope="{scope}"'
            self.send_response(401)
            self.send_header("WWW-Authenticate", realm)
            self.send_header("Content-Type", "application/json")
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _reply(self, code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self) -> None:
            url = urlparse(self.path)
            state.seen.append((self.command, url.path, dict(self.headers)))
            left = state.failures.get(url.path, 0)
            if left:
                state.failures[url.path] = left - 1
                self._reply(503, body=b"busy")
                return
            if url.path == "/token":
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self._reply(401, {"Content-Type": "application/json"},
                                b'{"details":"incorrect username or password"}')
                    return
                scope = parse_qs(url.query).get("scope", [""])[0]
                state.tokens_issued += 1
                self._reply(200, {"Content-Type": "application/json"},
                            json.dumps({"token": f"tok:{scope}"}).encode())
                return
            auth = self.headers.get("Authorization", "")
            if url.path == "/v2/":
                if not auth.startswith("Bearer tok:"):
                    self._challenge()
                    return
                self._reply(200, body=b"{}")
                return
            parts = url.path.split("/manifests/")
            repo = parts[0][len("/v2/"):]
            scope = f"repository:{repo}:pull"
            if auth != f"Bearer tok:{scope}":
                self._challenge(scope)
                return
            if parts[1] == "1.0":
                self._reply(200, {"Docker-Content-Digest": DIGEST})
            else:
                self._reply(404, {"Content-Type": "application/json"},
                            b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')

        do_GET = _serve
        do_HEAD = _serve

    return Handler


@pytest.fixture
def token_registry() -> Iterator[tuple[str, _State]]:
    state = _State()
    port_box = [0]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, port_box))
    port_box[0] = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{port_box[0]}", state
    server.shutdown()
    server.server_close()


def test_bearer_flow_with_credentials(token_registry):
    host, state = token_registry
    client = RegistryClient(host, Credentials(USER, Secret(PASSWORD)), backoff=0.01)
    assert client.manifest_digest(parse_ref(f"{host}/team/app:1.0")) == DIGEST
    assert client.manifest_digest(parse_ref(f"{host}/team/app:2.0")) is None
    assert state.tokens_issued == 1  # one token per scope, reused
    head = [h for (m, p, h) in state.seen if m == "HEAD"][-1]
    for media in (*INDEX_TYPES, *IMAGE_TYPES):
        assert media in head["Accept"]
    client.ping()


def test_bearer_flow_wrong_password(token_registry):
    host, _ = token_registry
    client = RegistryClient(host, Credentials(USER, Secret("nope-nope")), backoff=0.01)
    with pytest.raises(RegistryError) as err:
        client.manifest_digest(parse_ref(f"{host}/team/app:1.0"))
    assert f"authentication failed for {host} as {USER}" in err.value.message
    assert "nope-nope" not in err.value.message


def test_transient_5xx_is_retried(token_registry):
    host, state = token_registry
    state.failures["/v2/team/app/manifests/1.0"] = 2
    client = RegistryClient(host, Credentials(USER, Secret(PASSWORD)), attempts=4, backoff=0.01)
    assert client.manifest_digest(parse_ref(f"{host}/team/app:1.0")) == DIGEST


def test_persistent_5xx_is_an_error_naming_the_registry(token_registry):
    host, state = token_registry
    state.failures["/v2/team/app/manifests/1.0"] = 100
    client = RegistryClient(host, Credentials(USER, Secret(PASSWORD)), attempts=3, backoff=0.01)
    with pytest.raises(RegistryError, match=rf"registry {host} failed HEAD .* after 3 attempts: HTTP 503"):
        client.manifest_digest(parse_ref(f"{host}/team/app:1.0"))
