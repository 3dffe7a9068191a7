"""Benchmark: `images mirror` vs `skopeo copy`, side by side in one run, on two cases.

- one image of 400 MB (4 random layers of 100 MB);
- a family of 10 images on a shared 300 MB base (3 layers of 100 MB), 5 MB of their own on top each.

The source is a `docker-registry` on 127.0.0.1 (anonymous: a public upstream), filled here through the v2 API.
Every run of either tool copies into a fresh registry with htpasswd auth (a new storage directory and port). Ours is the
CLI process (`edgeforge-ext images mirror --json`, so its start-up counts); skopeo (Debian's) runs one process
per image, as a script mirroring a list would. Layers are gzip streams of random bytes (stored blocks): skopeo
would recompress uncompressed layers on their way to a registry, which is slower and changes their digests.

Each case runs `--runs` pairs (ours and skopeo back to back, which one first alternating, each on a fresh
destination); the ratio is the median of the pairs' ratios, so load that drifts during the run (a shared
machine) weighs on both sides of a pair alike. Also printed: the medians of the times, the bytes
our mirror uploaded (from its --json, checked against the bytes the destination stored in new blobs) against
the bytes of the distinct blobs of the case, and our peak RSS (ru_maxrss of the CLI process).
Targets: one image <= 0.9x skopeo; the family <= 0.5x the skopeo loop, bytes uploaded == unique blob bytes;
peak RSS < 150 MB.

    .venv/bin/python bench/mirror.py [--runs 7] [--jobs 8]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Registry, _start_registry, _stop_registry, free_port  # noqa: E402

USER, PASSWORD = "bench", "bench-Pa55word"  # a throwaway test password, fine in argv here only
AUTH = (USER, PASSWORD)
MB = 1 << 20
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def random_gzip(size: int) -> bytes:
    """A gzip stream of `size` random bytes (stored deflate blocks: as big as its content, quick to make)."""
    packer = zlib.compressobj(0, zlib.DEFLATED, 31)
    out = bytearray()
    left = size
    while left:
        n = min(left, 8 * MB)
        out += packer.compress(os.urandom(n))
        left -= n
    return bytes(out + packer.flush())


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(reg: Registry, repo: str, data: bytes, mount_from: str | None = None) -> str:
    """Into the source (anonymous) or a destination (AUTH)."""
    digest = digest_of(data)
    if mount_from:
        r = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": mount_from},
                          auth=AUTH, timeout=60)
        if r.status_code == 201:
            return digest
    r = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/", auth=AUTH, timeout=60)
    r.raise_for_status()
    r = requests.put(urljoin(reg.url + "/", r.headers["Location"]), params={"digest": digest}, data=data,
                     headers={"Content-Type": "application/octet-stream"}, auth=AUTH, timeout=600)
    assert r.status_code == 201, r.text
    return digest


@dataclass
class Case:
    name: str
    refs: list[str] = field(default_factory=list)  # repo:tag at the source
    digests: dict[str, str] = field(default_factory=dict)  # repo:tag -> manifest digest
    blobs: dict[str, int] = field(default_factory=dict)  # every distinct blob -> size

    @property
    def unique_bytes(self) -> int:
        return sum(self.blobs.values())


def push_image(reg: Registry, case: Case, repo: str, layers: list[bytes], mount_from: str | None = None) -> None:
    descriptors = []
    for layer in layers:
        digest = push_blob(reg, repo, layer, mount_from)
        descriptors.append({"mediaType": LAYER, "size": len(layer), "digest": digest})
        case.blobs[digest] = len(layer)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
                         "history": [{"comment": repo}]}).encode()
    config_digest = push_blob(reg, repo, config)
    case.blobs[config_digest] = len(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "size": len(config), "digest": config_digest},
                           "layers": descriptors}).encode()
    r = requests.put(f"{reg.url}/v2/{repo}/manifests/1", data=manifest, headers={"Content-Type": MANIFEST},
                     auth=AUTH, timeout=60)
    assert r.status_code == 201, r.text
    case.refs.append(f"{repo}:1")
    case.digests[f"{repo}:1"] = digest_of(manifest)


def make_cases(src: Registry) -> list[Case]:
    one = Case("one image, 400 MB in 4 layers")
    push_image(src, one, "bench/big", [random_gzip(100 * MB) for _ in range(4)])
    family = Case("10 images on a shared 300 MB base, 5 MB each on top")
    base = [random_gzip(100 * MB) for _ in range(3)]
    for i in range(10):
        push_image(src, family, f"bench/family{i}", [*base, random_gzip(5 * MB)],
                   mount_from="bench/family0" if i else None)
    return [one, family]


def stored_blob_bytes(reg: Registry) -> int:
    """What the registry holds in blob data files: bytes that arrived in uploads and were kept."""
    root = reg.storage / "docker" / "registry" / "v2" / "blobs"
    return sum(p.stat().st_size for p in root.rglob("data")) if root.exists() else 0


def check_copied(dst: Registry, case: Case, prefix: str) -> None:
    """Every image at the destination under the same digest (nothing recompressed, nothing rewritten)."""
    for ref, digest in case.digests.items():
        repo, tag = ref.split(":")
        got = requests.head(f"{dst.url}/v2/{prefix}/{repo}/manifests/{tag}", auth=AUTH, timeout=30,
                            headers={"Accept": MANIFEST})
        assert got.headers.get("Docker-Content-Digest") == digest, (ref, got.status_code, got.headers)


@dataclass
class Ours:
    seconds: float
    uploaded: int
    stored: int
    rss_mb: float


def run_ours(src: Registry, dst: Registry, case: Case, images: Path, jobs: int, env: dict[str, str]) -> Ours:
    images.write_text("".join(f"{src.host}/{ref}\n" for ref in case.refs))
    cli = [str(ROOT / ".venv" / "bin" / "edgeforge-ext"), "images", "mirror", "--json", "--images", str(images),
           "--registry", f"{dst.host}/m", "--registry-username", USER, "--registry-mapping",
           f"{src.host}={dst.host}/m", "-j", str(jobs)]
    out_file = images.with_suffix(".out")
    err_file = images.with_suffix(".err")
    rss_file = images.with_suffix(".rss")
    launcher = [GNU_TIME, "--format", "%M", "--output", str(rss_file)] if GNU_TIME else \
        [sys.executable, "-c", LAUNCHER, str(rss_file)]
    started = time.perf_counter()
    with out_file.open("wb") as out, err_file.open("wb") as err:
        code = subprocess.run([*launcher, *cli], env=env, stdout=out, stderr=err, check=False).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"edgeforge-ext images mirror failed ({code}): {err_file.read_text()[-2000:]}")
    report = json.loads(out_file.read_text())
    assert report["copied"] == len(case.refs), report
    check_copied(dst, case, "m")
    return Ours(seconds, int(report["bytes_uploaded"]), stored_blob_bytes(dst), int(rss_file.read_text()) / 1024)


# Peak RSS of the CLI alone: a child's ru_maxrss counts the memory it shared with its parent before exec, and
# this bench holds the test images in memory. So a small launcher forks the CLI and reports wait4's ru_maxrss
# (KiB) of that grandchild: GNU time (Debian's `time`), a C program that adds about a millisecond to the
# time measured, as skopeo's runs have no launcher; else a fresh Python interpreter (about 20 ms more).
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_pid, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_skopeo(src: Registry, dst: Registry, case: Case, env: dict[str, str]) -> float:
    skopeo = shutil.which("skopeo") or "skopeo"
    started = time.perf_counter()
    for ref in case.refs:
        subprocess.run([skopeo, "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                        "--dest-creds", f"{USER}:{PASSWORD}",
                        f"docker://{src.host}/{ref}", f"docker://{dst.host}/s/{ref}"],
                       env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    check_copied(dst, case, "s")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args()
    if not shutil.which("skopeo"):
        print("skopeo is not installed (apt-get install skopeo)", file=sys.stderr)
        return 2
    ok = True
    # As installed by pip: the package's bytecode compiled (an environment with PYTHONDONTWRITEBYTECODE
    # would otherwise compile every module on every run of the CLI, timed as ours).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "edgeforge_ext")], check=True)
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-mirror-") as tmp:
        base = Path(tmp)
        env = {**os.environ, "EDGEFORGE_REGISTRY_PASSWORD": PASSWORD, "HOME": str(base)}
        src = _start_registry(base / "src", free_port(), None, None)
        started: list[Registry] = [src]

        def fresh(name: str) -> Registry:
            reg = _start_registry(base / name, free_port(), USER, PASSWORD)
            started.append(reg)
            return reg

        def drop(reg: Registry) -> None:
            _stop_registry(reg)
            shutil.rmtree(reg.storage.parent, ignore_errors=True)

        try:
            t0 = time.perf_counter()
            cases = make_cases(src)
            print(f"source filled in {time.perf_counter() - t0:.1f}s")
            targets = {cases[0].name: 0.9, cases[1].name: 0.5}
            for case in cases:
                ours: list[Ours] = []
                theirs: list[float] = []
                for run in range(args.runs):
                    for side in ("ours", "skopeo") if run % 2 == 0 else ("skopeo", "ours"):
                        dst = fresh(f"{side}-{len(started)}")
                        if side == "ours":
                            ours.append(run_ours(src, dst, case, base / "images.txt", args.jobs, env))
                        else:
                            theirs.append(run_skopeo(src, dst, case, env))
                        drop(dst)
                    print(f"  {case.name} run {run + 1}: ours {ours[-1].seconds:.2f}s, skopeo {theirs[-1]:.2f}s")
                mine = statistics.median(o.seconds for o in ours)
                baseline = statistics.median(theirs)
                ratio = statistics.median(o.seconds / t for o, t in zip(ours, theirs, strict=True))
                uploaded = {o.uploaded for o in ours}
                stored = {o.stored for o in ours}
                rss = max(o.rss_mb for o in ours)
                bytes_ok = uploaded == {case.unique_bytes}
                target = targets[case.name]
                print(f"{case.name}:")
                print(f"  edgeforge-ext images mirror (median of {args.runs}): {mine:.2f}s")
                print(f"  skopeo copy, one process per image (median):    {baseline:.2f}s")
                print(f"  ratio (median of the {args.runs} pairs): {ratio:.2f}x skopeo's time (target <= {target}) "
                      f"{'OK' if ratio <= target else 'ABOVE TARGET'}")
                print(f"  bytes uploaded: {sorted(uploaded)} (stored by the destination: {sorted(stored)}); "
                      f"distinct blob bytes: {case.unique_bytes} {'OK' if bytes_ok else 'DIFFERENT'}")
                print(f"  peak RSS of edgeforge-ext: {rss:.0f} MB (target < 150) {'OK' if rss < 150 else 'ABOVE'}")
                ok = ok and ratio <= target and bytes_ok and rss < 150
        finally:
            for reg in started:
                _stop_registry(reg)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
