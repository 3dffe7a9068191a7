"""Registry client errors are told apart by status and type, never by the words of a message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgeforge_ext.cli import run
from tests.engine.registry_proxy import registry_proxy
from tests.engine.registry_push import push_tiny_image

pytestmark = pytest.mark.engine

# What a load balancer in front of a registry says when a backend is down: the word "unreachable" is the
# proxy's, not a sign that the registry itself cannot be reached.
UNAVAILABLE = (503, {"Content-Type": "application/json"},
               b'{"errors": [{"code": "UNAVAILABLE", "message": "tag listing backend unreachable"}]}')


def test_a_tag_list_the_registry_will_not_serve_falls_back_to_manifest_checks(
        registry_factory: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    reg = registry_factory(auth=False)
    push_tiny_image(reg.url, "edge/provider", ["k3s-1.30.10", "k3s-1.31.6"])

    def no_tag_list(method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
        return UNAVAILABLE if "/tags/list" in path else None

    with registry_proxy(reg.url, answer=no_tag_list) as (host, _):
        images = tmp_path / "images.txt"
        # Three tags of one repository: verify asks tags/list once instead of three manifests.
        images.write_text("".join(f"{host}/edge/provider:{tag}\n" for tag in ("k3s-1.30.10", "k3s-1.31.6", "nope")))
        code = run(["images", "verify", "--images", str(images), "--json"])
    out, err = capsys.readouterr()
    assert code == 9 and "unreachable" not in err, err  # one image is missing: not "registry unreachable"
    assert [i["present"] for i in json.loads(out)["images"]] == [True, True, False]
