"""Benchmark: a nightly run with nothing new, `build --skip-unchanged`, against `edgeforge-ext plan` of the
same config, both measured in this run (median of interleaved rounds). Target: ratio <= 1.5, and not one
container started by the no-op builds (Docker events with our label).

Setup (not timed): a CanvOS-shaped git repository (tests/canvos_fixture.py), the Earthly double's image
(tests/double_image.py), and one real build so that `latest` exists.

    .venv/bin/python bench/nightly_noop.py [--rounds 7]
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.canvos_fixture import make_canvos_repo  # noqa: E402

TARGET = 1.5
LABEL = "io.edgeforge-ext.managed"
WORKDIR_LABEL = "io.edgeforge-ext.workdir"


def standin_image(client: Any) -> str:
    from tests.double_image import ensure_image

    return ensure_image(client)


def timed(cmd: list[str], env: dict[str, str], expect: str = "") -> float:
    started = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if out.returncode != 0 or expect not in out.stderr:
        raise SystemExit(f"{' '.join(cmd[2:])} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    import docker

    client = docker.from_env()
    image = standin_image(client)
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-") as tmp:
        base = Path(tmp)
        repo = make_canvos_repo(base / "remote")
        config = base / "edgeforge.toml"
        config.write_text(f"""
[canvos]
url = "{repo.url}"
ref = "v4.10.0"
[build]
k8s_versions = ["1.32.3"]
custom_tag = "nightly"
[site]
palette_endpoint = "api.spectrocloud.com"
[earthly]
image = "{image}"
buildkit_host = "tcp://buildkit.edgeforge.test:8372"
[push]
enabled = false
""")
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFORGE_")}
        env.update({"HOME": str(base), "EDGEFORGE_EDGE_HOST_TOKEN": "BenchToken-0000",
                    "EDGEFORGE_PREFLIGHT_MIN_CPUS": "1", "EDGEFORGE_PREFLIGHT_MIN_MEMORY_GB": "1",
                    "EDGEFORGE_PREFLIGHT_MIN_DISK_GB": "1"})
        cli = [sys.executable, "-m", "edgeforge_ext", "--config", str(config), "--workdir", str(base / "w")]
        noop = [*cli, "build", "--skip-unchanged"]
        plan = [*cli, "plan"]
        first = timed(noop, env, expect="building")
        print(f"first build (the double, not timed in the ratio): {first:.2f}s")
        timed(noop, env, expect="up to date")
        timed(plan, env)  # warm page cache and .pyc files
        since = int(time.time())
        ours, theirs = [], []
        for _ in range(args.rounds):
            theirs.append(timed(plan, env))
            ours.append(timed(noop, env, expect="up to date"))
        events = list(client.events(since=since, until=int(time.time()) + 1, decode=True,
                                    filters={"type": "container", "event": "create", "label": LABEL}))
        # Other edgeforge-ext runs on this host (other work directories) do not count; ours carry our workdir.
        mine = str((base / "w").resolve())
        created = [e for e in events if e.get("Actor", {}).get("Attributes", {}).get(WORKDIR_LABEL) in (mine, None)]
    m_ours, m_plan = statistics.median(ours), statistics.median(theirs)
    ratio = m_ours / m_plan
    print(f"build --skip-unchanged (nothing changed): median {m_ours * 1000:.0f} ms over {args.rounds} runs")
    print(f"plan of the same config (baseline):       median {m_plan * 1000:.0f} ms")
    print(f"containers started by the no-op builds: {len(created)}")
    ok = ratio <= TARGET and not created
    print(f"ratio {ratio:.2f} (target <= {TARGET}) {'OK' if ok else 'OVER TARGET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
