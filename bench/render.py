"""Rendering + validating a typical configuration in-process, against yaml.safe_load of the same output.

Run: .venv/bin/python bench/render.py   (target: median under 50 ms)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgeforge_ext.config import load_config
from edgeforge_ext.render import render_all

CERT = "-----BEGIN CERTIFICATE-----\n" + "MIIB" * 16 + "\n-----END CERTIFICATE-----\n"
TOML = """
[build]
custom_tag = "nightly1"
k8s_versions = ["1.31.6"]
image_registry = "10.10.254.254:8000/edge"

[registry]
domain = "10.10.254.254:8000/spectro-images"
username = "builder"
certificates = ["ca.pem"]
mapping_rules = { "us-docker.pkg.dev/palette-images" = "10.10.254.254:8000/spectro-images" }

[[registry.registries]]
domain = "mirror.corp.local/palette"
username = "mirror"
password_env = "MIRROR_PW"

[site]
palette_endpoint = "api.spectrocloud.com"
project_name = "Default"
name = "edge-site-01"
tags = { "rack" = "r12", "env" = "prod", "owner" = "ops" }
http_proxy = "http://proxy.corp.local:3128"
ca_certs = ["ca.pem"]

[[site.network]]
interface = "eth0"
ip = "10.0.10.25/24"
gateway = "10.0.10.1"

[[users]]
name = "kairos"
groups = ["admin"]
ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOPS ops@corp"]
"""


def median_ms(func: Callable[[], object], rounds: int = 200) -> float:
    func()  # warm-up: template compilation and imports are not what we measure
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "ca.pem").write_text(CERT)
        (base / "edgeforge.toml").write_text(TOML)
        env = {"EDGEFORGE_REGISTRY_PASSWORD": "s3cret", "EDGEFORGE_EDGE_HOST_TOKEN": "tok", "MIRROR_PW": "pw2"}
        config = load_config(base / "edgeforge.toml", env=env, cwd=base)
        k8s = {"k3s": ["1.30.10", "1.31.6", "1.32.3"]}
        rendered = render_all(config, pe_version="v4.9.21", k8s_versions=k8s)
        ours = median_ms(lambda: render_all(config, pe_version="v4.9.21", k8s_versions=k8s))
        baseline = median_ms(lambda: yaml.safe_load(rendered.user_data))
    print(f"render+validate: {ours:.2f} ms (median)")
    print(f"yaml.safe_load of the same user-data: {baseline:.2f} ms (median)")
    print(f"ratio: {ours / baseline:.1f}x   target: under 50 ms -> {'OK' if ours < 50 else 'TOO SLOW'}")
    return 0 if ours < 50 else 1


if __name__ == "__main__":
    sys.exit(main())
