"""Where the time of bench/mirror.py's family case goes, and the lowest ratio this machine allows.

For the family case (10 images on a shared 300 MB base), each tool copies into a fresh htpasswd registry
while the CPU-seconds of every process are read from /proc: the destination and source docker-registry, and
the tool (ours: the CLI process; skopeo: its processes, one per image). Then the destination's cost alone:
one 100 MB blob upload (per byte) and 200 authenticated HEADs (per request, bcrypt included).

The floor: however well the processes overlap, a run needs at least (destination + source + tool CPU) /
cores seconds of wall time. Printed as a ratio against skopeo's median time measured in the same run, with
our client's CPU and with none at all.

    .venv/bin/python bench/mirror_floor.py [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mirror as bench

from tests.conftest import Registry, _start_registry, _stop_registry, free_port

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def destination_costs(base: Path) -> tuple[float, float]:
    """(CPU-seconds per MB received, CPU-milliseconds per authenticated request) of a fresh docker-registry."""
    reg = _start_registry(base / "probe", free_port(), bench.USER, bench.PASSWORD)
    try:
        data = os.urandom(100 << 20)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        session = requests.Session()
        session.auth = bench.AUTH
        before = cpu_seconds(reg.process.pid)
        location = session.post(f"{reg.url}/v2/probe/blobs/uploads/", timeout=60).headers["Location"]
        session.put(location, params={"digest": digest}, data=data, timeout=600).raise_for_status()
        per_mb = (cpu_seconds(reg.process.pid) - before) / 100
        before = cpu_seconds(reg.process.pid)
        for _ in range(200):
            session.head(f"{reg.url}/v2/probe/manifests/none", timeout=30)
        per_request_ms = (cpu_seconds(reg.process.pid) - before) / 200 * 1000
        return per_mb, per_request_ms
    finally:
        _stop_registry(reg)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("skopeo"):
        print("skopeo is not installed (apt-get install skopeo)", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-floor-") as tmp:
        base = Path(tmp)
        env = {**os.environ, "EDGEFORGE_REGISTRY_PASSWORD": bench.PASSWORD, "HOME": str(base)}
        src = _start_registry(base / "src", free_port(), None, None)
        try:
            family = bench.make_cases(src)[1]
            rows: dict[str, list[tuple[float, float, float, float]]] = {"ours": [], "skopeo": []}
            for run in range(args.runs):
                for tool in ("ours", "skopeo") if run % 2 == 0 else ("skopeo", "ours"):
                    dst: Registry = _start_registry(base / f"{tool}-{run}", free_port(), bench.USER, bench.PASSWORD)
                    s0, d0, t0 = cpu_seconds(src.process.pid), cpu_seconds(dst.process.pid), children_cpu()
                    started = time.perf_counter()
                    if tool == "ours":
                        bench.run_ours(src, dst, family, base / "images.txt", 8, env)
                    else:
                        bench.run_skopeo(src, dst, family, env)
                    wall = time.perf_counter() - started
                    rows[tool].append((wall, cpu_seconds(dst.process.pid) - d0, cpu_seconds(src.process.pid) - s0,
                                       children_cpu() - t0))
                    _stop_registry(dst)
                    shutil.rmtree(base / f"{tool}-{run}", ignore_errors=True)
            per_mb, per_request_ms = destination_costs(base)
        finally:
            _stop_registry(src)

    def median(tool: str, column: int) -> float:
        return statistics.median(row[column] for row in rows[tool])

    print(f"{family.name}, median of {args.runs} runs each, CPU-seconds from /proc ({cores} cores):")
    print("  tool     wall    destination  source  tool")
    for tool in rows:
        print(f"  {tool:7} {median(tool, 0):5.2f}s  {median(tool, 1):11.2f}  {median(tool, 2):6.2f}  "
              f"{median(tool, 3):5.2f}")
    print(f"the destination docker-registry alone: {per_mb * 1000:.2f} ms per MB received "
          f"({per_mb * 1e9 / (1 << 20):.2f} ns per byte), {per_request_ms:.2f} ms per authenticated request")
    registries = median("ours", 1) + median("ours", 2)
    skopeo = median("skopeo", 0)
    floor = (registries + median("ours", 3)) / cores
    bare = registries / cores
    print(f"floor with our client's CPU: ({registries:.2f} + {median('ours', 3):.2f}) / {cores} = {floor:.2f}s "
          f"= {floor / skopeo:.2f}x skopeo's {skopeo:.2f}s")
    print(f"floor with a client that costs nothing: {bare:.2f}s = {bare / skopeo:.2f}x")
    print(f"measured: {median('ours', 0):.2f}s = {median('ours', 0) / skopeo:.2f}x (target <= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
