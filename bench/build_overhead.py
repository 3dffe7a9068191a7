"""Benchmark: the overhead of `edgeforge-ext build` over a bare `docker run` of the same Earthly work.

The Earthly double (tests/double) does a fixed amount of work (the fixture Earthfile's test-only knob
STANDIN_SLEEP), then builds the ISO and a provider image. We time, interleaved over several rounds:
  - ours:     `edgeforge-ext build` (preflight, checkout fetch, render, earthly, collect, report; --no-push)
  - baseline: `docker run` of the same image on the same checkout with the same target and args.
Target: ratio <= 1.15.

    .venv/bin/python bench/build_overhead.py [--work 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.canvos_fixture import make_canvos_repo  # noqa: E402
from tests.double_image import DOUBLE_BUILDKIT_HOST, ensure_image  # noqa: E402

TARGET = 1.15


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=int, default=20, help="seconds of Earthly (double) work")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import docker

    client = docker.from_env()
    image = ensure_image(client)
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-") as tmp:
        base = Path(tmp)
        repo = make_canvos_repo(base / "remote")
        workdir = base / "work"
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFORGE_")}
        env.update({"EDGEFORGE_EDGE_HOST_TOKEN": "bench-token-123456", "EDGEFORGE_PREFLIGHT_MIN_CPUS": "1",
                    "EDGEFORGE_PREFLIGHT_MIN_DISK_GB": "1", "EDGEFORGE_PREFLIGHT_MIN_MEMORY_GB": "1"})
        ours_cmd = [sys.executable, "-m", "edgeforge_ext", "--workdir", str(workdir), "build",
                    "--canvos-url", repo.url, "--ref", "v4.10.0", "--earthly-image", image,
                    "--buildkit-host", DOUBLE_BUILDKIT_HOST, "--palette-endpoint", "api.spectrocloud.com",
                    "--k8s-version", "1.32.3", "--no-push", "--keep-user-data",
                    "--build-arg", f"STANDIN_SLEEP={args.work}"]
        checkout = workdir / "CanvOS"
        base_cmd = ["docker", "run", "--rm", "-v", "/var/run/docker.sock:/var/run/docker.sock",
                    "-v", f"{checkout}:/workspace", "-w", "/workspace",
                    "-e", f"EARTHLY_BUILDKIT_HOST={DOUBLE_BUILDKIT_HOST}", "-e", "NO_BUILDKIT=1",
                    "-e", "GLOBAL_CONFIG={disable_analytics: true, tls_enabled: false}", image,
                    "+build-all-images", "--PE_VERSION=v4.9.21", "--K8S_VERSION=1.32.3"]
        # First build: clones CanvOS and renders .arg/user-data, which the baseline then reuses.
        subprocess.run(ours_cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ours, baseline = [], []
        for _ in range(args.rounds):
            baseline.append(timed(base_cmd, env))
            ours.append(timed(ours_cmd, env))
    m_ours, m_base = statistics.median(ours), statistics.median(baseline)
    ratio = m_ours / m_base
    print(f"edgeforge-ext build ({args.work} s of Earthly work): median {m_ours:.2f} s over {args.rounds} runs")
    print(f"docker run of the same double (baseline):          median {m_base:.2f} s")
    print(f"ratio {ratio:.3f} (target <= {TARGET}) {'OK' if ratio <= TARGET else 'OVER TARGET'}")
    return 0 if ratio <= TARGET else 1


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
