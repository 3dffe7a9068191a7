"""Nightly builds end to end: lock and --locked, variants, --skip-unchanged, dated outputs, concurrency.

Real daemon, real git, the stand-in Earthly (unprivileged, as with a remote BuildKit). Builds use
--no-push; every stand-in build is a few seconds, so the sequences below reuse one work directory.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from edgeforge_ext.cli import run
from edgeforge_ext.engine import LABEL, WORKDIR_LABEL
from tests.engine.buildkit import TOKEN, lowered_thresholds
from tests.engine.shard_helpers import write_config


@pytest.fixture
def nightly_env(monkeypatch):
    monkeypatch.setenv("EDGEFORGE_EDGE_HOST_TOKEN", TOKEN)
    lowered_thresholds(monkeypatch)


@pytest.fixture
def own_image(docker_client):
    """Make images under unique names (derived from a local image, nothing pulled); removed afterwards."""
    made: list[str] = []

    def make(base: str, label: str) -> str:
        name = f"edgeforge-test/nightly-{uuid.uuid4().hex[:8]}:latest"
        dockerfile = f"FROM {base}\nLABEL io.edgeforge-test.variant={label}\n".encode()
        docker_client.images.build(fileobj=io.BytesIO(dockerfile), tag=name, rm=True)
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            docker_client.images.remove(name, force=True)
        except Exception:
            pass


def config_file(tmp_path: Path, canvos_url: str, earthly_image: str, *, ref: str = "v4.10.0",
                variants: str = "", extra_build: str = "") -> Path:
    return write_config(tmp_path / "conf" / "edgeforge.toml", canvos_url, earthly_image, ref=ref,
                        variants=variants, build=extra_build)


def created_containers(docker_client, since: int, workdir: Path) -> list:
    """Containers we created since `since` for this work directory (or for none: a preflight probe);
    other edgeforge-ext runs on the host, with their own work directories, do not count."""
    events = docker_client.events(since=since, until=int(time.time()) + 1, decode=True,
                                  filters={"type": "container", "event": "create", "label": LABEL})
    mine = (str(workdir.resolve()), None)
    return [e for e in events if e.get("Actor", {}).get("Attributes", {}).get(WORKDIR_LABEL) in mine]


def test_lock_then_locked_refuses_every_kind_of_drift(docker_client, busybox_image, own_image, canvos_repo,
                                                      tmp_path, nightly_env, capsys):
    earthly = own_image(busybox_image, "one")  # stands in for the Earthly image: only its digest matters here
    config = config_file(tmp_path, canvos_repo.url, earthly, ref="latest")
    base = ["--config", str(config), "--workdir", str(tmp_path / "w")]
    assert run([*base, "lock", "--json"]) == 0, capsys.readouterr().err
    written = json.loads(capsys.readouterr().out)
    lock_path = config.parent / "edgeforge.lock"
    assert json.loads(lock_path.read_text()) == written
    assert written["canvos"]["sha"] == canvos_repo.tags["v4.10.0"]  # latest = the newest release tag
    assert written["earthly"]["id"] == docker_client.images.get(earthly).id
    assert list(written["builds"]) == ["default"]
    assert written["builds"]["default"]["fingerprint"].startswith("sha256:")
    assert TOKEN not in lock_path.read_text()

    since = int(time.time())
    locked = [*base, "build", "--locked", "--skip", "preflight"]
    # An extra build arg (one the Earthfile declares): only the fingerprint drifts.
    assert run([*locked, "--build-arg", "STANDIN_LOG_LINES=1"]) == 5
    err = capsys.readouterr().err
    assert "differ from" in err and "fingerprint of default" in err
    assert "CanvOS SHA" not in err and "Earthly image digest" not in err
    # Another image behind the same name: the Earthly digest drifts.
    docker_client.images.get(own_image(busybox_image, "two")).tag(earthly)
    assert run(locked) == 5
    err = capsys.readouterr().err
    assert "Earthly image digest" in err and "fingerprint of default" not in err
    docker_client.images.get(written["earthly"]["id"]).tag(earthly)  # back to the locked image
    # A new release: `latest` resolves to another commit.
    canvos_repo.add_tag("v4.10.2", pe_version="v4.9.21")
    assert run(locked) == 5
    err = capsys.readouterr().err
    assert "CanvOS SHA" in err and canvos_repo.tags["v4.10.2"][:12] in err
    assert "edgeforge-ext lock" in err  # what to do
    assert created_containers(docker_client, since, tmp_path / "w") == []
    # Locking again accepts the new inputs.
    assert run([*base, "lock"]) == 0
    assert json.loads(lock_path.read_text())["canvos"]["sha"] == canvos_repo.tags["v4.10.2"]


def test_lock_without_the_earthly_image_says_so(docker_client, canvos_repo, tmp_path, nightly_env, capsys):
    config = config_file(tmp_path, canvos_repo.url, "edgeforge-test/absent-earthly:never")
    code = run(["--config", str(config), "--workdir", str(tmp_path / "w"), "lock"])
    err = capsys.readouterr().err
    assert code == 2
    assert "edgeforge-test/absent-earthly:never is not present locally" in err and "docker pull" in err
    assert not (config.parent / "edgeforge.lock").exists()


def dated_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink())


def test_skip_unchanged_builds_only_when_something_changed(
    docker_client, standin_earthly_image, own_image, canvos_repo, tmp_path, nightly_env, monkeypatch, capsys
):
    config = config_file(tmp_path, canvos_repo.url, standin_earthly_image)
    workdir = tmp_path / "w"
    root = workdir / "output" / "default"
    args = ["--config", str(config), "--workdir", str(workdir), "build", "--skip-unchanged", "--keep-last", "3"]

    def build(*extra: str, expect: str) -> Path:
        since = int(time.time())
        code = run([*args, *extra])
        err = capsys.readouterr().err
        assert code == 0, err[-3000:]
        assert expect in err, err[-3000:]
        latest = (root / "latest").resolve()
        if "up to date" in expect:
            assert created_containers(docker_client, since, workdir) == []
        else:
            assert created_containers(docker_client, since, workdir), "nothing was built"
            report = json.loads((latest / "edgeforge-report.json").read_text())
            assert report["status"] == "success" and Path(report["iso"]["path"]).parent == latest
        return latest

    first = build(expect="building (no earlier successful build)")
    assert first.name.endswith("-" + canvos_repo.tags["v4.10.0"][:8])
    assert not (first / ".building").exists()
    assert build(expect="up to date") == first

    # A template: the rendered user-data changes.
    templates = tmp_path / "templates"
    templates.mkdir()
    from edgeforge_ext.render import packaged_template_dir

    text = (packaged_template_dir() / "user-data.j2").read_text()
    (templates / "user-data.j2").write_text(text + "# built by the nightly job\n")
    monkeypatch.setenv("EDGEFORGE_RENDER_TEMPLATE_DIR", str(templates))
    second = build(expect="user-data, .arg, targets or build args changed")
    assert second != first
    # A build arg.
    args += ["--build-arg", "STANDIN_LOG_LINES=1"]  # declared by the fixture's Earthfile
    build(expect="user-data, .arg, targets or build args changed")
    # The last ISO no longer matches its checksum.
    iso = (root / "latest" / "palette-edge-installer.iso")
    with iso.open("ab") as f:
        f.write(b"x")
    build(expect="no longer matches its sha256")
    # The ref: a new release.
    canvos_repo.add_tag("v4.10.3", pe_version="v4.9.21")
    args += ["--ref", "v4.10.3"]
    moved = build(expect="CanvOS moved from")
    assert moved.name.endswith("-" + canvos_repo.tags["v4.10.3"][:8])
    # The Earthly image.
    args += ["--earthly-image", own_image(standin_earthly_image, "two")]
    last = build(expect="the Earthly image changed")
    assert build(expect="up to date") == last
    # --keep-last 3: the three newest dated directories are left, latest among them.
    assert len(dated_dirs(root)) == 3 and last.name in dated_dirs(root)


VARIANTS = """
[[variants]]
name = "alpha"
custom_tag = "alpha"

[[variants]]
name = "broken"
custom_tag = "broken"
extra_args = { STANDIN_FAIL = "1" }

[[variants]]
name = "gamma"
custom_tag = "gamma"
k8s_distribution = "rke2"
k8s_versions = ["1.31.5"]
"""


def test_variants_keep_going_and_a_failure_hides_nothing(
    docker_client, standin_earthly_image, canvos_repo, tmp_path, nightly_env, capsys
):
    config = config_file(tmp_path, canvos_repo.url, standin_earthly_image, variants=VARIANTS)
    workdir = tmp_path / "w"
    out = workdir / "output"
    base = ["--config", str(config), "--workdir", str(workdir), "build", "--all", "--keep-going", "--json"]
    code = run(base)
    captured = capsys.readouterr()
    assert code == 7, captured.err[-3000:]
    summary = json.loads((out / "edgeforge-summary.json").read_text())
    assert [(b["variant"], b["status"], b["exit_code"]) for b in summary["builds"]] == [
        ("alpha", "success", 0), ("broken", "failed", 7), ("gamma", "success", 0)]
    # A failed run still prints its JSON (scripts read stdout): the summary, as written to the file.
    assert json.loads(captured.out) == summary
    for name, tag in (("alpha", "k3s-1.32.3-v4.9.21-alpha"), ("gamma", "rke2-1.31.5-v4.9.21-gamma")):
        report = json.loads((out / name / "latest" / "edgeforge-report.json").read_text())
        assert report["variant"] == name and report["status"] == "success"
        assert report["provider_images"][0]["ref"].endswith(tag)
        assert (out / name / "latest" / "palette-edge-installer.iso").is_file()
    assert not (out / "broken" / "latest").exists()  # latest moves only after success
    (failed,) = dated_dirs(out / "broken")
    assert json.loads((out / "broken" / failed / "edgeforge-report.json").read_text())["status"] == "failed"
    assert sorted(p.name for p in workdir.iterdir() if not p.name.startswith(".")) == ["CanvOS", "output"]
    table = captured.err.splitlines()
    assert any(ln.startswith("alpha ") and "success" in ln for ln in table)
    assert any(ln.startswith("broken ") and "failed (exit 7)" in ln for ln in table)

    # Next night, only the broken one is built again; the others are up to date.
    code = run([*base[:-1], "--skip-unchanged"])
    assert code == 7
    summary = json.loads((out / "edgeforge-summary.json").read_text())
    assert [(b["variant"], b["status"]) for b in summary["builds"]] == [
        ("alpha", "up-to-date"), ("broken", "failed"), ("gamma", "up-to-date")]


def cli_process(args: list[str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFORGE_")}
    env.update({"EDGEFORGE_EDGE_HOST_TOKEN": TOKEN, "EDGEFORGE_PREFLIGHT_MIN_CPUS": "1",
                "EDGEFORGE_PREFLIGHT_MIN_DISK_GB": "1", "EDGEFORGE_PREFLIGHT_MIN_MEMORY_GB": "1"})
    return subprocess.Popen([sys.executable, "-m", "edgeforge_ext", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_builds_on_one_host(docker_client, standin_earthly_image, canvos_repo, tmp_path):
    """Different work directories build side by side; the same one is refused with --no-wait (exit 2)."""
    config = config_file(tmp_path, canvos_repo.url, standin_earthly_image)
    sleepy = ["build", "--skip-unchanged", "--build-arg", "STANDIN_SLEEP=4"]
    one = cli_process(["--config", str(config), "--workdir", str(tmp_path / "w1"), *sleepy])
    two = cli_process(["--config", str(config), "--workdir", str(tmp_path / "w2"), *sleepy])
    ours = {str((tmp_path / w).resolve()) for w in ("w1", "w2")}

    def running() -> list[str]:
        return [c.name for c in docker_client.containers.list(filters={"label": LABEL}, ignore_removed=True)
                if c.labels.get(WORKDIR_LABEL) in ours]

    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(running()) < 2:
            assert one.poll() is None and two.poll() is None
            time.sleep(0.2)
        names = running()
        assert len(set(names)) == 2, names  # both Earthly containers at once, under different names
        third = cli_process(["--config", str(config), "--workdir", str(tmp_path / "w1"), "build", "--no-wait"])
        _, err3 = third.communicate(timeout=60)
        _, err1 = one.communicate(timeout=120)
        _, err2 = two.communicate(timeout=120)
    finally:
        for p in (one, two):
            if p.poll() is None:
                p.kill()
    assert third.returncode == 2, err3[-2000:]
    assert f"(pid {one.pid})" in err3 and "is using" in err3
    assert one.returncode == 0, err1[-2000:]
    assert two.returncode == 0, err2[-2000:]
    for w in ("w1", "w2"):
        assert (tmp_path / w / "output" / "default" / "latest" / "palette-edge-installer.iso").is_file()


def test_all_locked_names_the_variant_that_drifted_and_what(docker_client, standin_earthly_image, canvos_repo,
                                                            tmp_path, nightly_env, capsys):
    two = """
[[variants]]
name = "alpha"
custom_tag = "alpha"

[[variants]]
name = "gamma"
custom_tag = "gamma"
"""
    config = config_file(tmp_path, canvos_repo.url, standin_earthly_image, variants=two)
    base = ["--config", str(config), "--workdir", str(tmp_path / "w")]
    assert run([*base, "lock"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    config.write_text(config.read_text().replace('custom_tag = "gamma"', 'custom_tag = "gamma2"'))
    code = run([*base, "build", "--all", "--locked", "--keep-going", "--skip", "preflight"])
    err = capsys.readouterr().err
    assert code == 5, err[-3000:]
    summary = json.loads((tmp_path / "w" / "output" / "edgeforge-summary.json").read_text())
    assert {b["variant"]: b["status"] for b in summary["builds"]} == {"alpha": "success", "gamma": "failed"}
    (gamma,) = [b for b in summary["builds"] if b["variant"] == "gamma"]
    assert any("fingerprint of gamma" in d for d in gamma["details"])  # what drifted, per variant
    assert "fingerprint of gamma" in err and "fingerprint of alpha" not in err
