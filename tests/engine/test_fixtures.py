"""The engine fixtures themselves work: a daemon, a registry with auth."""

from __future__ import annotations

import requests


def test_registry_requires_auth(registry):
    assert requests.get(f"{registry.url}/v2/", timeout=5).status_code == 401
    assert requests.get(f"{registry.url}/v2/", auth=registry.auth, timeout=5).status_code == 200


def test_busybox_image_runs(docker_client, busybox_image):
    out = docker_client.containers.run(busybox_image, ["echo", "hello"], remove=True)
    assert out.strip() == b"hello"
