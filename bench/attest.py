"""Benchmark: what `build --attest` adds to a build's collect + push, for a 1 GB provider image.

One image (busybox, a dpkg database and 1 GB of incompressible data, built here from local files) is
collected (its id looked up, as the collect step does) and pushed by the push step twice per round: once
plain (the baseline) and once with --attest (staging tag, SBOM read from the image, provenance, signature
and attestations attached, verified, final tag). Each push goes to its own fresh docker-registry on
127.0.0.1, so both upload the whole image. Rounds alternate the order; the best of each is kept (the
machine is shared: a push's time varies by a third between rounds). The attest work itself (reading the
SBOM, signing, attaching, verifying, tagging) is also timed on its own. Prints the timings and the ratio;
target: < 1.10.

    .venv/bin/python bench/attest.py [--size-mb 1024] [--rounds 2]
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.attest.helpers import DPKG_STATUS, OS_RELEASE  # noqa: E402
from tests.conftest import _start_registry, _stop_registry, free_port  # noqa: E402

IMAGE = "edgeforge-bench/provider-1g:k3s-1.32.3-bench"


def build_image(client: Any, size_mb: int) -> str:
    import shutil

    busybox = shutil.which("busybox") or "/usr/bin/busybox"
    dockerfile = (b"FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
                  b"COPY status /var/lib/dpkg/status\nCOPY os-release /etc/os-release\n"
                  + f"RUN head -c {size_mb * 1024 * 1024} /dev/urandom > /payload\n".encode())
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        tar.add(busybox, arcname="busybox")
        for name, data in (("Dockerfile", dockerfile), ("status", DPKG_STATUS), ("os-release", OS_RELEASE)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=IMAGE, rm=True)
    return str(client.images.get(IMAGE).id)


def collect_and_push(base: Path, attest: bool, key: Path | None) -> float:
    """The collect step's lookup and the push step, timed, into a fresh registry."""
    from edgeforge_ext import engine
    from edgeforge_ext.build.publish import push_images
    from edgeforge_ext.build.report import ImageRecord, Report
    from tests.configs import make_config

    reg = _start_registry(base / f"registry-{time.monotonic_ns()}", free_port(), None, None)
    try:
        env = {"EDGEFORGE_ATTEST_KEY_FILE": str(key)} if attest and key else {}
        config = make_config(base, env=env, attest__enabled=attest)
        started = time.perf_counter()
        client = engine.client()
        try:
            image_id = engine.image_id(client, IMAGE)  # collect
        finally:
            client.close()
        report = Report(provider_images=[ImageRecord(IMAGE, "1.32.3", [f"{reg.host}/edge/provider:bench"],
                                                     image_id=image_id)])
        push_images(config, report)
        elapsed = time.perf_counter() - started
        assert report.provider_images[0].pushed[0].attested is attest
        return elapsed
    finally:
        _stop_registry(reg)


ATTEST_WORK: list[float] = []


def _timed_attest_work() -> None:
    """Time ImageAttester's own work (SBOM read, sign, attach, verify, final tag) inside the attested push."""
    from edgeforge_ext.build.attest import ImageAttester

    original = ImageAttester.promote

    def promote(self: Any, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            original(self, *args, **kwargs)
        finally:
            ATTEST_WORK.append(time.perf_counter() - started)

    ImageAttester.promote = promote  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import docker

    from edgeforge_ext.attest.keys import write_key_pair

    _timed_attest_work()
    client = docker.from_env(timeout=600)
    print(f"building a {args.size_mb} MB image ...", file=sys.stderr)
    build_image(client, args.size_mb)
    plain: list[float] = []
    attested: list[float] = []
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-") as tmp:
        base = Path(tmp)
        key, _pub = write_key_pair(base / "bench", None)
        for i in range(args.rounds):
            order = (False, True) if i % 2 == 0 else (True, False)
            for attest in order:
                seconds = collect_and_push(base, attest, key)
                (attested if attest else plain).append(seconds)
                print(f"round {i + 1}: {'attest' if attest else 'plain '} {seconds:6.2f} s", file=sys.stderr)
    try:
        client.images.remove(IMAGE, force=True)
    finally:
        client.close()
    best_plain, best_attest = min(plain), min(attested)
    ratio = best_attest / best_plain
    print(f"the attest work itself: {min(ATTEST_WORK):.2f} s ({min(ATTEST_WORK) / best_plain:.1%} of the plain "
          "collect+push)")
    print(f"collect+push of a {args.size_mb} MB image: plain {best_plain:.2f} s, with --attest {best_attest:.2f} s "
          f"(+{best_attest - best_plain:.2f} s); ratio {ratio:.3f} (target < 1.10): "
          f"{'OK' if ratio < 1.10 else 'TOO SLOW'}")
    return 0 if ratio < 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
