"""Startup cost: median wall time of `edgeforge-ext --help` against `python -c "import typer"`.

Target: ratio <= 1.3. Both measured in this run, same interpreter, several rounds interleaved.
Run: .venv/bin/python bench/startup.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET = 1.3


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    ours_cmd = [sys.executable, "-m", "edgeforge_ext", "--help"]
    base_cmd = [sys.executable, "-c", "import typer"]
    timed(ours_cmd), timed(base_cmd)  # warm the page cache and .pyc files
    ours, base = [], []
    for _ in range(args.rounds):
        base.append(timed(base_cmd))
        ours.append(timed(ours_cmd))
    m_ours, m_base = statistics.median(ours), statistics.median(base)
    ratio = m_ours / m_base
    print(f"edgeforge-ext --help: median {m_ours * 1000:.1f} ms over {args.rounds} runs")
    print(f"python -c 'import typer' (baseline): median {m_base * 1000:.1f} ms")
    print(f"ratio {ratio:.2f} (target <= {TARGET}) {'OK' if ratio <= TARGET else 'OVER TARGET'}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
