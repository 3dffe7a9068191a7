"""`images rewrite|verify|mirror` and `profile patch` through the CLI, with real registries on loopback."""

from __future__ import annotations

import json
import socket
import warnings

import pytest
import requests

from edgeforge_ext.cli import run
from tests.engine.registry_push import push_tiny_image

PASSWORD = "s3cret-Pa55:word#1"  # the conftest registry_factory password


def _out(capsys):
    captured = capsys.readouterr()
    return captured.out, captured.err


def _counts(out):
    """The image counts of `images mirror --json` (it also prints what crossed the wire)."""
    data = json.loads(out)
    return {k: data[k] for k in ("copied", "skipped", "failed")}


def test_rewrite_json_prefix_rule(tmp_path, capsys):
    images = tmp_path / "images.txt"
    images.write_text("# provider\nquay.io/kairos/core-ubuntu-20-lts-rke2:v1.25.2-rke2r1\nnginx\n")
    code = run(["images", "rewrite", "--images", str(images), "--registry", "10.10.254.254:8000/spectro-images",
                "--json"])
    out, _ = _out(capsys)
    assert code == 0
    assert json.loads(out) == {"images": [
        {"source": "quay.io/kairos/core-ubuntu-20-lts-rke2:v1.25.2-rke2r1",
         "target": "10.10.254.254:8000/spectro-images/quay.io/kairos/core-ubuntu-20-lts-rke2:v1.25.2-rke2r1"},
        {"source": "docker.io/library/nginx:latest",
         "target": "10.10.254.254:8000/spectro-images/docker.io/library/nginx:latest"},
    ]}


def test_rewrite_reads_mapping_rules_from_the_config_file(tmp_path, capsys):
    (tmp_path / "edgeforge.toml").write_text('[registry]\nmapping_rules = { "quay.io/kairos" = "r.io/k" }\n')
    images = tmp_path / "images.txt"
    images.write_text("quay.io/kairos/x:1\nghcr.io/y:2\n")
    code = run(["--config", str(tmp_path / "edgeforge.toml"), "images", "rewrite", "--images", str(images)])
    _, err = _out(capsys)
    assert code == 0
    assert "r.io/k/x:1" in err and "ghcr.io/y:2" in err


def test_rewrite_from_plan_reads_pe_version_from_the_checkout(canvos_checkout, capsys):
    workdir, _repo = canvos_checkout  # CanvOS at v4.10.0, whose Earthfile says PE_VERSION=v4.9.21
    code = run(["--workdir", str(workdir), "--json", "images", "rewrite", "--from-plan",
                "--registry", "ext.io/p", "--k8s-distribution", "rke2", "--k8s-version",
                "1.30.4", "--image-registry", "ttl.sh", "--image-repo", "edge", "--custom-tag", "demo"])
    out, err = _out(capsys)
    assert code == 0, err
    assert json.loads(out)["images"] == [{"source": "ttl.sh/edge:rke2-1.30.4-v4.9.21-demo",
                                          "target": "ext.io/p/ttl.sh/edge:rke2-1.30.4-v4.9.21-demo"}]


def test_rewrite_from_plan_with_pe_version_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGEFORGE_BUILD_PE_VERSION", "v4.9.38")
    code = run(["--workdir", str(tmp_path / "wd"), "--json", "images", "rewrite", "--from-plan",
                "--k8s-version", "1.29.14", "--k8s-version", "1.30.10", "--custom-tag", ""])
    out, err = _out(capsys)
    assert code == 0, err
    assert [i["source"] for i in json.loads(out)["images"]] == [
        "ttl.sh/ubuntu:k3s-1.29.14-v4.9.38", "ttl.sh/ubuntu:k3s-1.30.10-v4.9.38"]


def test_no_inputs_is_a_usage_error(capsys):
    assert run(["images", "verify"]) == 2
    assert "--images FILE" in _out(capsys)[1]


def test_malformed_reference_exit_5_names_the_line(tmp_path, capsys):
    images = tmp_path / "images.txt"
    images.write_text("nginx\nquay.io/Bad/x\n")
    assert run(["images", "rewrite", "--images", str(images)]) == 5
    assert f"{images}:2" in _out(capsys)[1]


@pytest.fixture
def two_registries(registry_factory, tmp_path, monkeypatch):
    """A source without auth holding three images, an external one with htpasswd auth, and the options
    that point the Edge host (by mapping rules) from one to the other."""
    src = registry_factory(auth=False)
    ext = registry_factory(auth=True)
    push_tiny_image(src.url, "team/app", ["1.0", "1.1"])
    push_tiny_image(src.url, "team/db", "7", content=b"db\n")
    images = tmp_path / "images.txt"
    images.write_text(f"{src.host}/team/app:1.0\n{src.host}/team/app:1.1\n{src.host}/team/db:7\n")
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", PASSWORD)
    opts = ["--images", str(images), "--registry", f"{ext.host}/mirror", "--registry-username", "builder",
            "--registry-mapping", f"{src.host}=127.0.0.1:{ext.port}/mirror"]
    return src, ext, opts


@pytest.mark.engine
def test_verify_mirror_verify_mirror(two_registries, capsys):
    src, ext, opts = two_registries
    assert run(["images", "verify", *opts, "--json"]) == 9
    out, err = _out(capsys)
    report = json.loads(out)
    assert report["missing"] == 3
    assert [i["present"] for i in report["images"]] == [False, False, False]
    assert report["images"][0] == {"source": f"{src.host}/team/app:1.0",
                                   "target": f"{ext.host}/mirror/team/app:1.0", "present": False}
    assert "3 of 3 images are missing" in err and f"{ext.host}/mirror/team/db:7" in err

    assert run(["images", "mirror", *opts, "--json"]) == 0
    out, err = _out(capsys)
    assert _counts(out) == {"copied": 3, "skipped": 0, "failed": 0}
    first = json.loads(out)
    assert first["blobs_uploaded"] == 4  # app's config and layer once for two tags, db's two
    assert first["bytes_uploaded"] > 0

    assert run(["images", "verify", *opts, "--json"]) == 0
    out, err = _out(capsys)
    assert json.loads(out)["missing"] == 0

    assert run(["images", "mirror", *opts, "--json"]) == 0
    out, err = _out(capsys)
    assert json.loads(out) == {"copied": 0, "skipped": 3, "failed": 0, "bytes_uploaded": 0, "blobs_uploaded": 0,
                               "blobs_mounted": 0, "blobs_present": 0}
    assert PASSWORD not in out + err


@pytest.mark.engine
def test_mirror_refuses_to_overwrite_a_different_image(two_registries, capsys):
    _src, ext, opts = two_registries
    push_tiny_image(ext.url, "mirror/team/db", "7", content=b"something else\n", auth=ext.auth)
    assert run(["images", "mirror", *opts]) == 9
    _, err = _out(capsys)
    assert "holds a different image" in err and "--force" in err
    assert run(["images", "mirror", *opts, "--force", "--json"]) == 0
    out, err = _out(capsys)
    assert _counts(out) == {"copied": 1, "skipped": 2, "failed": 0}
    assert "overwrote" in err


@pytest.mark.engine
def test_mirror_never_writes_one_object_twice_at_once(registry_factory, tmp_path, capsys, monkeypatch):
    """The intermittent 'copied 2, skipped 1' of an earlier mirror: app:1.0 and app:1.1 (one image) were
    copied at the same time, docker-registry answered one manifest PUT 'blob unknown to registry' (it
    rewrites a repository's link file in place, a concurrent reader sees it empty), and that tag was copied
    again by the next run. A proxy in front of the target holds each write a little and counts overlaps:
    writes into one repository overlap (layers go at once), writes of one blob or manifest never do."""
    from tests.engine.registry_proxy import registry_proxy

    src = registry_factory(auth=False)
    ext = registry_factory(auth=True)
    tags = [f"1.{i}" for i in range(6)]
    push_tiny_image(src.url, "team/app", tags)
    for repo in ("team/db", "team/cache"):
        push_tiny_image(src.url, repo, tags[:2], content=repo.encode())
    with registry_proxy(ext.url, write_delay=0.05) as (proxy, state):
        images = tmp_path / "images.txt"
        images.write_text("".join(f"{src.host}/team/app:{t}\n" for t in tags)
                          + "".join(f"{src.host}/team/{r}:{t}\n" for r in ("db", "cache") for t in tags[:2]))
        monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", PASSWORD)
        code = run(["images", "mirror", "--images", str(images), "--registry", f"{proxy}/mirror",
                    "--registry-username", "builder", "--registry-mapping", f"{src.host}={proxy}/mirror", "--json"])
        out, err = _out(capsys)
    assert code == 0, err
    assert _counts(out) == {"copied": 10, "skipped": 0, "failed": 0}
    assert state.max_concurrent_object_writes and set(state.max_concurrent_object_writes.values()) == {1}
    assert max(state.max_concurrent_writes.values()) > 1  # one repository's blobs go in parallel
    assert state.max_writes_at_once > 2  # and so do the repositories


@pytest.mark.engine
def test_wrong_password_is_authentication_not_missing(two_registries, capsys, monkeypatch):
    _, ext, opts = two_registries
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", "wrong-Pa55word")
    for command in ("verify", "mirror"):
        assert run(["images", command, *opts]) == 9
        out, err = _out(capsys)
        assert err.count(f"authentication failed for {ext.host} as builder") == 1, err  # one error, not one per image
        assert "missing" not in err
        assert "wrong-Pa55word" not in out + err and PASSWORD not in out + err


@pytest.mark.engine
def test_unreachable_registry_exit_9_names_it(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    images = tmp_path / "images.txt"
    images.write_text("quay.io/a/b:1\n")
    assert run(["images", "verify", "--images", str(images), "--registry", f"127.0.0.1:{port}/x"]) == 9
    _, err = _out(capsys)
    assert f"registry 127.0.0.1:{port} is unreachable after 4 attempts" in err


def test_profile_patch_stdout_diff_and_in_place(tmp_path, capsys):
    values = tmp_path / "k8s.yaml"
    original = ("# K3s layer\ncluster:\n  config:\n    kube-apiserver-arg:\n"
                "      - enable-admission-plugins=AlwaysPullImages,NodeRestriction  # keep\n")
    values.write_text(original)
    assert run(["profile", "patch", str(values)]) == 0
    out, err = _out(capsys)
    assert out == original.replace("AlwaysPullImages,", "")
    assert "-      - enable-admission-plugins=AlwaysPullImages,NodeRestriction" in err
    assert "+      - enable-admission-plugins=NodeRestriction" in err
    assert values.read_text() == original  # not written without --in-place

    values.chmod(0o640)
    assert run(["profile", "patch", str(values), "--in-place"]) == 0
    _out(capsys)
    assert values.read_text() == original.replace("AlwaysPullImages,", "")
    assert values.stat().st_mode & 0o777 == 0o640
    mtime = values.stat().st_mtime_ns
    assert run(["profile", "patch", str(values), "--in-place"]) == 0
    _, err = _out(capsys)
    assert "nothing to change" in err and values.stat().st_mtime_ns == mtime


def test_profile_patch_not_a_k8s_layer_exit_5(tmp_path, capsys):
    values = tmp_path / "cni.yaml"
    values.write_text("pack:\n  x: 1\n")
    assert run(["profile", "patch", str(values)]) == 5
    assert "no cluster.config" in _out(capsys)[1]


def test_inputs_without_any_image_are_a_usage_error(tmp_path, capsys):
    from edgeforge_ext.cli import run

    empty = tmp_path / "profile.yaml"
    empty.write_text("spec:\n  packs: []\n")
    assert run(["images", "verify", "--profile", str(empty), "--registry", "127.0.0.1:9/x"]) == 2
    err = capsys.readouterr().err
    assert "no image references found" in err and "name no image at all" in err


@pytest.mark.parametrize("registry_toml", [
    # one registry: prefixed to the full reference
    '[registry]\ndomain = "10.10.254.254:8000/spectro-images"\n',
    # several registries, no rules: the first prefixes (images rewrite says so)
    '[[registry.registries]]\ndomain = "r1.example/spectro"\n[[registry.registries]]\ndomain = "r2.example/x"\n',
    # mapping rules: the matching prefix is replaced (the bug: build pushed to R/spectro-images/ttl.sh/...
    # while the Edge host pulls from R/mirror/ttl/...)
    '[registry]\ndomain = "10.10.254.254:8000/spectro-images"\n'
    '[registry.mapping_rules]\n"ttl.sh" = "10.10.254.254:8000/mirror/ttl"\n',
])
def test_build_pushes_where_images_rewrite_says_the_host_pulls(canvos_checkout, capsys, registry_toml):
    workdir, repo = canvos_checkout
    config = workdir / "edgeforge.toml"
    config.write_text(f'workdir = "{workdir}"\n[canvos]\nurl = "{repo.url}"\nref = "v4.10.0"\n'
                      '[build]\nk8s_versions = ["1.32.3"]\n' + registry_toml)
    common = ["--config", str(config)]
    assert run([*common, "plan", "--push-to", "external", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert run([*common, "images", "rewrite", "--from-plan", "--json"]) == 0
    rewrite = json.loads(capsys.readouterr().out)["images"]
    pushed = [ref for image in plan["provider_images"] for ref in image["push"]]
    assert pushed == [item["target"] for item in rewrite]
    assert len(pushed) == 1 and "ttl.sh/ubuntu:k3s-1.32.3-" in plan["provider_images"][0]["ref"]


def test_list_build_inputs_reads_the_checkouts_earthfile(canvos_checkout, capsys):
    """The fixture's v4.10.0 Earthfile (tests/canvos_fixture.py, shaped as the real one): its base image is
    the Dockerfile's `FROM $BASE` with BASE_IMAGE derived from $SPECTRO_PUB_REPO; the ISO is made in
    $OSBUILDER_IMAGE; each can be moved by the ARG that carries it."""
    workdir, repo = canvos_checkout
    code = run(["--workdir", str(workdir), "images", "list", "--build-inputs", "--json", "--canvos-url", repo.url,
                "--k8s-version", "1.32.3"])
    out, err = _out(capsys)
    assert code == 0, err
    images = {i["ref"]: i for i in json.loads(out)["images"]}
    base = images["us-docker.pkg.dev/palette-images/edge/kairos-ubuntu:22.04-core-amd64-generic-v4.0.4"]
    assert base["build_input"] and base["carried_by"] == "SPECTRO_PUB_REPO"
    assert base["uses"] == ["+base-image FROM DOCKERFILE (Dockerfile) $BASE"]
    osbuilder = images["quay.io/kairos/osbuilder-tools:v0.400.3"]
    assert osbuilder["carried_by"] == "OSBUILDER_IMAGE" and osbuilder["uses"] == ["+build-iso FROM $OSBUILDER_IMAGE"]
    assert "us-docker.pkg.dev/palette-images/third-party/edge/earthly/earthly:v0.8.15" in images  # Earthly itself


@pytest.mark.engine
def test_https_registries_on_loopback_are_used_without_verification(registry_factory, tmp_path, capsys,
                                                                     monkeypatch):
    """As Docker does for 127.0.0.0/8: HTTPS is tried first and its certificate is not checked (self-signed
    here, trusted by nothing), for the source and for the destination (with Basic auth over TLS)."""
    src = registry_factory(auth=False, tls=True)
    dst = registry_factory(auth=True, tls=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(src.ca_file))  # for this test's own pushes only
    digest = push_tiny_image(src.url, "team/app", "1.0", content=b"over tls\n")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    images = tmp_path / "images.txt"
    images.write_text(f"{src.host}/team/app:1.0\n")
    monkeypatch.setenv("EDGEFORGE_REGISTRY_PASSWORD", PASSWORD)
    opts = ["--images", str(images), "--registry", f"{dst.host}/mirror", "--registry-username", "builder",
            "--registry-mapping", f"{src.host}={dst.host}/mirror"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert run(["images", "mirror", *opts, "--json"]) == 0
    out, _err = _out(capsys)
    assert _counts(out) == {"copied": 1, "skipped": 0, "failed": 0}
    assert not [w for w in seen if "Unverified HTTPS" in str(w.message)]  # not urllib3's warning on every run
    assert run(["images", "verify", *opts, "--json"]) == 0
    out, _err = _out(capsys)
    assert json.loads(out)["missing"] == 0
    # The destination serves only HTTPS: the copy is there, under the source's digest.
    copied = requests.head(f"{dst.url}/v2/mirror/team/app/manifests/1.0", auth=dst.auth, verify=str(dst.ca_file),
                           headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"}, timeout=30)
    assert copied.headers.get("Docker-Content-Digest") == digest
