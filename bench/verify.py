"""Benchmark: `images verify` of 200 references against a local registry, vs a loop of `skopeo inspect`.

Both run in the same process run against the same registry (docker-registry with htpasswd auth on
127.0.0.1, started here) and the same 200 references (one small image pushed under 200 tags through the
v2 API; the manifests share their blobs). Prints both timings and the ratio; target: ours >= 10x faster.

    .venv/bin/python bench/verify.py [--count 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import _start_registry, _stop_registry, free_port  # noqa: E402
from tests.engine.registry_push import push_tiny_image  # noqa: E402

USER, PASSWORD = "bench", "bench-Pa55word"  # a throwaway test password, fine in argv here only


def _per_reference_heads(host: str, refs: list[str]) -> float:
    """The library path without tag listing: what verify costs for refs spread over many repositories."""
    from edgeforge_ext.registry.client import Clients, Credentials
    from edgeforge_ext.registry.images import RewriteRules, parse_ref
    from edgeforge_ext.registry.transfer import verify_images
    from edgeforge_ext.secrets import Secret

    rewrites = [RewriteRules.make().rewrite(parse_ref(r)) for r in refs]
    with Clients(lambda _host: Credentials(USER, Secret(PASSWORD))) as clients:
        started = time.perf_counter()
        results = verify_images(rewrites, clients, tag_list_from=0)
        elapsed = time.perf_counter() - started
    assert all(r.present for r in results)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    skopeo = shutil.which("skopeo")
    if not skopeo:
        print("skopeo is not installed (apt-get install skopeo)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-") as tmp:
        base = Path(tmp)
        reg = _start_registry(base / "registry", free_port(), USER, PASSWORD)
        try:
            tags = [f"t{i:04d}" for i in range(args.count)]
            started = time.perf_counter()
            push_tiny_image(reg.url, "bench/app", tags, auth=(USER, PASSWORD))
            print(f"populated {len(tags)} tags in {time.perf_counter() - started:.2f}s")
            refs = [f"{reg.host}/bench/app:{t}" for t in tags]
            images = base / "images.txt"
            images.write_text("\n".join(refs) + "\n")

            env = {**os.environ, "EDGEFORGE_REGISTRY_PASSWORD": PASSWORD, "HOME": str(base)}
            cli = [str(ROOT / ".venv" / "bin" / "edgeforge-ext"), "--json", "images", "verify", "--images",
                   str(images), "--registry", reg.host, "--registry-username", USER]
            started = time.perf_counter()
            out = subprocess.run(cli, env=env, capture_output=True, text=True, check=False)
            ours = time.perf_counter() - started
            if out.returncode != 0 or '"missing": 0' not in out.stdout:
                print(f"edgeforge-ext verify failed ({out.returncode}): {out.stderr[-2000:]}", file=sys.stderr)
                return 1

            heads = _per_reference_heads(reg.host, refs)

            started = time.perf_counter()
            for ref in refs:
                subprocess.run([skopeo, "inspect", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}",
                                f"docker://{ref}"], env=env, capture_output=True, check=True)
            theirs = time.perf_counter() - started
        finally:
            _stop_registry(reg)
    ratio = theirs / ours if ours else float("inf")
    print(f"edgeforge-ext images verify, {len(refs)} refs (CLI process; one tags/list per repo): {ours:.2f}s")
    print(f"  the same in-process with one manifest HEAD per ref (16 threads):       {heads:.2f}s "
          f"({theirs / heads:.1f}x)")
    print(f"skopeo inspect loop, {len(refs)} refs:                                          {theirs:.2f}s")
    print(f"ratio: {ratio:.1f}x faster (target >= 10x) {'OK' if ratio >= 10 else 'BELOW TARGET'}")
    return 0 if ratio >= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
