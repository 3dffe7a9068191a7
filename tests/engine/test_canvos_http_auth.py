"""A private CanvOS fork over HTTP with basic auth: the token never reaches git's argv, any git process's
environment, the disk or output.

A real `git http-backend` (CGI) behind a small HTTP server on 127.0.0.1 that demands basic auth, and a
`git` wrapper first on PATH that records the argv and the environment (/proc/PID/environ) of every git
process edgeforge-ext starts.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from edgeforge_ext.cli import run
from tests.conftest import require

TOKEN = "ghp-Fake7Token-0123456789"  # an obvious test fake
BACKEND = "/usr/lib/git-core/git-http-backend"


class GitHandler(BaseHTTPRequestHandler):
    root = ""
    seen_auth: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _serve(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.seen_auth.append(auth)
        if auth != "Basic " + base64.b64encode(f"builder:{TOKEN}".encode()).decode():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="canvos"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {"GIT_PROJECT_ROOT": self.root, "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
               "QUERY_STRING": query, "REQUEST_METHOD": self.command,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "REMOTE_USER": "builder",
               "CONTENT_LENGTH": str(len(body)), "PATH": os.environ["PATH"]}
        out = subprocess.run([BACKEND], input=body, env=env, capture_output=True, check=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve


@pytest.fixture
def private_fork(canvos_repo, tmp_path, monkeypatch):
    require(Path(BACKEND).exists(), "git-http-backend is not installed")
    GitHandler.root = str(canvos_repo.bare.parent)
    GitHandler.seen_auth = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), GitHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # A `git` first on PATH that records every argv, then runs the real git.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    argv_log = tmp_path / "git-argv.log"
    env_log = tmp_path / "git-environ.log"
    real_git = shutil.which("git")
    wrapper = bindir / "git"
    # The shell's environment is exactly what the real git gets (exec keeps it).
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {argv_log}\ncat /proc/$$/environ >> {env_log}\n'
                       f'exec {real_git} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("GIT_PYTHON_GIT_EXECUTABLE", str(wrapper))
    # The askpass directory goes to a temp dir of the test's own, to see that it is removed.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    url = f"http://builder:{TOKEN}@127.0.0.1:{server.server_address[1]}/{canvos_repo.bare.name}"
    yield url, argv_log, env_log, private_tmp
    server.shutdown()


BASIC = base64.b64encode(f"builder:{TOKEN}".encode()).decode()


def _files_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file())


def test_token_in_the_url_stays_out_of_argv_environment_disk_and_output(private_fork, tmp_path, capsys):
    url, argv_log, env_log, private_tmp = private_fork
    workdir = tmp_path / "w"
    code = run(["--workdir", str(workdir), "checkout", "--canvos-url", url, "--ref", "v4.10.0", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    facts = json.loads(captured.out)
    assert facts["tag"] == "v4.10.0" and TOKEN not in facts["url"]
    assert f"Basic {BASIC}" in GitHandler.seen_auth  # the credentials did travel, in git's own request
    argv = argv_log.read_text()
    assert "fetch" in argv and TOKEN not in argv
    config = (workdir / "CanvOS" / ".git" / "config").read_text()
    assert TOKEN not in config and "127.0.0.1" in config
    assert TOKEN.encode() not in _files_under(workdir / "CanvOS" / ".git")
    assert TOKEN not in captured.out + captured.err
    # Again on an existing checkout (the update path), and `plan`'s ls-remote.
    assert run(["--workdir", str(workdir), "checkout", "--canvos-url", url, "--ref", "v4.10.0"]) == 0
    from edgeforge_ext.canvos.repo import resolve_remote

    assert resolve_remote(url, "v4.9.38")[0] == "v4.9.38"
    assert TOKEN not in argv_log.read_text()
    environ = env_log.read_bytes()
    assert b"PATH=" in environ  # the wrapper did see git's environment
    assert TOKEN.encode() not in environ and BASIC.encode() not in environ
    assert list(private_tmp.iterdir()) == []  # the askpass directory is gone


def test_a_wrong_token_is_a_checkout_error_without_the_token(private_fork, tmp_path, capsys):
    url, _, _, private_tmp = private_fork
    bad = url.replace(TOKEN, "wrong-Token-abcdef")
    code = run(["--workdir", str(tmp_path / "w"), "checkout", "--canvos-url", bad, "--ref", "v4.10.0"])
    err = capsys.readouterr().err
    assert code == 4
    assert "authentication failed" in err.lower() and "terminal prompts disabled" not in err
    assert "wrong-Token-abcdef" not in err and TOKEN not in err
    assert not (tmp_path / "w" / "CanvOS").exists()
    assert list(private_tmp.iterdir()) == []
