"""An HTTP proxy in front of a real `docker-registry`, to see and shape what reaches it.

It forwards every request as is (the Host header too, so the registry's upload Locations point back at the
proxy), and can answer some requests itself (`answer`: a status, headers and body, or None to forward; a
Content-Length above the body's length sends a truncated body and hangs up) and hold writes a little
(`write_delay`) while it records how many writes into one repository were in flight at once
(`max_concurrent_writes`), and how many writes of one object (a blob or manifest digest, or a tag, in one
repository) were (`max_concurrent_object_writes`): two of those at once is the docker-registry race ("blob
unknown to registry").
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

_REPOSITORY = re.compile(r"^/v2/(.+?)/(?:blobs|manifests|tags)/")
_MANIFEST = re.compile(r"^/v2/(.+?)/manifests/([^/?]+)")
_DIGEST_PARAM = re.compile(r"[?&](?:digest|mount)=([^&]+)")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
Answer = Callable[[str, str], "tuple[int, dict[str, str], bytes] | None"]


@dataclass
class ProxyState:
    upstream: str
    answer: Answer | None = None
    write_delay: float = 0.0
    in_flight: dict[str, int] = field(default_factory=dict)
    max_concurrent_writes: dict[str, int] = field(default_factory=dict)  # per repository
    max_writes_at_once: int = 0  # in all repositories together
    seen: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of every request, in order
    blob_puts_in_flight: int = 0
    max_blob_puts_at_once: int = 0  # blob uploads (PUT ?digest=) carrying bytes at once, all repositories
    objects_in_flight: dict[tuple[str, str], int] = field(default_factory=dict)
    max_concurrent_object_writes: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def objects(method: str, path: str, body: bytes) -> list[str]:
        """What a write changes in its repository: a blob digest (commit or mount), a manifest digest and tag."""
        manifest = _MANIFEST.match(path)
        if manifest and method == "PUT":
            return ["sha256:" + hashlib.sha256(body).hexdigest(), f"tag {manifest.group(2)}"]
        digest = _DIGEST_PARAM.search(path)
        return [digest.group(1).replace("%3A", ":")] if digest and method in ("PUT", "POST") else []

    @contextmanager
    def writing(self, method: str, path: str, body: bytes = b"") -> Iterator[None]:
        match = _REPOSITORY.match(path)
        if method in ("GET", "HEAD") or match is None:
            yield
            return
        repo = match.group(1)
        keys = [(repo, o) for o in self.objects(method, path, body)]
        blob_put = method == "PUT" and "/blobs/uploads/" in path and bool(body)
        with self.lock:
            if blob_put:
                self.blob_puts_in_flight += 1
                self.max_blob_puts_at_once = max(self.max_blob_puts_at_once, self.blob_puts_in_flight)
            self.in_flight[repo] = self.in_flight.get(repo, 0) + 1
            self.max_concurrent_writes[repo] = max(self.max_concurrent_writes.get(repo, 0), self.in_flight[repo])
            self.max_writes_at_once = max(self.max_writes_at_once, sum(self.in_flight.values()))
            for key in keys:
                self.objects_in_flight[key] = self.objects_in_flight.get(key, 0) + 1
                self.max_concurrent_object_writes[key] = max(self.max_concurrent_object_writes.get(key, 0),
                                                             self.objects_in_flight[key])
        try:
            time.sleep(self.write_delay)
            yield
        finally:
            with self.lock:
                self.in_flight[repo] -= 1
                self.blob_puts_in_flight -= 1 if blob_put else 0
                for key in keys:
                    self.objects_in_flight[key] -= 1


def _handler(state: ProxyState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.seen.append((self.command, self.path))
            own = state.answer(self.command, self.path) if state.answer else None
            if own is not None:
                self._reply(*own)
                return
            with state.writing(self.command, self.path, body):
                resp = requests.request(self.command, state.upstream + self.path, data=body or None, timeout=30,
                                        headers=dict(self.headers.items()), allow_redirects=False, stream=True)
                payload = resp.raw.read(decode_content=False) if self.command != "HEAD" else b""
            headers = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP_BY_HOP}
            length = resp.headers.get("Content-Length", "0") if self.command == "HEAD" else str(len(payload))
            self._reply(resp.status_code, {**headers, "Content-Length": length}, payload)

        def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            headers.setdefault("Content-Length", str(len(payload)))
            short = self.command != "HEAD" and int(headers["Content-Length"]) > len(payload)
            if short:  # a truncated body (an `answer` that promises more than it sends): then hang up
                headers["Connection"] = "close"
                self.close_connection = True
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    return Handler


@contextmanager
def registry_proxy(upstream_url: str, **options: object) -> Iterator[tuple[str, ProxyState]]:
    """("127.0.0.1:PORT", its state) while the block runs."""
    state = ProxyState(upstream_url, **options)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
