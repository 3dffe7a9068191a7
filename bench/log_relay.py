"""Benchmark: relaying 1,000,000 log lines (~100 MB) with scrubbing, against `docker logs > /dev/null`.

A scratch+busybox container prints the lines (every 1000th holds a known secret) and exits. Alternating,
`docker run <it> > /dev/null` (the docker CLI attaches to the container before starting it) and our
relay (earthly.run_earthly's path: attach before start -> LogRelay with a Redactor, writing the
scrubbed log to a file and calling a per-line callback) run the same container. Our side runs in a
subprocess so its peak RSS (ru_maxrss) is its own.
Targets: time ratio <= 1.5, peak RSS < 100 MB, every line relayed.

    .venv/bin/python bench/log_relay.py [--lines 1000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SECRET = "s3cret-Pa55:word#1"
TOKEN = "aUAxT0ken-0ChYCrO-pässwörd"  # non-ASCII: more encoded forms to look for
IMAGE = "edgeforge-bench/busybox:latest"
LABEL = {"io.edgeforge-ext.bench": "log_relay"}
PAD = "x" * 72


def build_image(c) -> None:  # type: ignore[no-untyped-def]
    busybox = shutil.which("busybox") or "/usr/bin/busybox"
    ctx = io.BytesIO()
    with tarfile.open(fileobj=ctx, mode="w") as tar:
        tar.add(busybox, arcname="busybox")
        df = b'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(df)
        tar.addfile(info, io.BytesIO(df))
    ctx.seek(0)
    c.images.build(fileobj=ctx, custom_context=True, tag=IMAGE, rm=True, pull=False)


def script(lines: int) -> str:
    return (f"seq 1 {lines} | awk '{{ if ($1 % 1000 == 0) print \"+iso | line \" $1 \" login {SECRET} ok\";"
            f" else print \"+iso | line \" $1 \" {PAD}\" }}'")


def relay_child(lines: str, log_path: str) -> None:
    """Runs in a subprocess: run the container as a build runs Earthly and relay its output; print
    timing, line count and peak RSS."""
    from edgeforge_ext import engine
    from edgeforge_ext.engine import ContainerSpec
    from edgeforge_ext.logrelay import LogRelay
    from edgeforge_ext.secrets import Redactor, Secret

    c = engine.client()
    count = [0]

    def on_line(line: str) -> None:  # what a caller does at least: look at each line
        count[0] += 1

    spec = ContainerSpec(image=IMAGE, command=["sh", "-c", script(int(lines))], labels=LABEL, role="bench")
    attached: list[engine.AttachedOutput] = []
    started = time.perf_counter()
    # As a build has them: the registry password with its user name (Basic auth form) and the token.
    redactor = Redactor([Secret(SECRET, login="builder"), Secret(TOKEN)])
    with open(log_path, "w", encoding="utf-8") as sink, engine.managed_container(
            c, spec, on_created=lambda ctr: attached.append(engine.AttachedOutput(c, ctr))) as ctr:
        relay = LogRelay(redactor=redactor, sink=sink, on_line=on_line, tail_lines=50)
        for chunk in attached[0].chunks():
            relay.feed(chunk)
        relay.close()
        engine.wait_exit(ctr)
    attached[0].close()
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "lines": count[0], "rss_mb": rss_mb, "target": relay.current_target}))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", nargs=2, metavar=("LINES", "LOG"))
    args = ap.parse_args()
    if args.child:
        relay_child(*args.child)
        return 0

    import docker

    c = docker.from_env(timeout=300)
    build_image(c)
    theirs: list[float] = []
    ours: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-") as tmp:
        log = Path(tmp) / "edgeforge-build.log"
        for _ in range(args.rounds):
            start = time.perf_counter()
            subprocess.run(["docker", "run", "--rm", "--label", "io.edgeforge-ext.bench=log_relay", IMAGE, "sh",
                            "-c", script(args.lines)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=True)
            theirs.append(time.perf_counter() - start)
            out = subprocess.run([sys.executable, __file__, "--child", str(args.lines), str(log)], check=True,
                                 capture_output=True, text=True).stdout
            ours.append(json.loads(out.strip().splitlines()[-1]))
        text = log.read_text()
        size_mb = len(text.encode()) / 1e6
        leaked = SECRET in text
    best_theirs = min(theirs)
    best_ours = min(r["seconds"] for r in ours)
    rss = max(r["rss_mb"] for r in ours)
    ratio = best_ours / best_theirs
    print(f"docker run > /dev/null  : {', '.join(f'{t:.2f}s' for t in theirs)} (best {best_theirs:.2f}s)")
    ours_times = ", ".join(f"{r['seconds']:.2f}s" for r in ours)
    print(f"edgeforge relay         : {ours_times} (best {best_ours:.2f}s), "
          f"{int(ours[-1]['lines'])} lines, {size_mb:.0f} MB log, secret in log: {leaked}")
    print(f"ratio {ratio:.2f} (target <= 1.5), peak RSS {rss:.1f} MB (target < 100 MB)")
    ok = ratio <= 1.5 and rss < 100 and not leaked and int(ours[-1]["lines"]) == args.lines
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
