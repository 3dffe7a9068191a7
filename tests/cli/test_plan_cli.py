"""`plan` takes the same variant selection as `build --plan`, and changes nothing."""

from __future__ import annotations

import json

from edgeforge_ext.cli import run


def test_plan_all_variants_json(canvos_repo, tmp_path, capsys):
    f = tmp_path / "edgeforge.toml"
    f.write_text(f'[canvos]\nurl = "{canvos_repo.url}"\nref = "v4.10.0"\n[build]\nk8s_versions = ["1.32.3"]\n\n'
                 '[[variants]]\nname = "k3s"\n\n[[variants]]\nname = "rke2"\nk8s_distribution = "rke2"\n')
    workdir = tmp_path / "w"
    assert run(["--config", str(f), "--workdir", str(workdir), "plan", "--all", "--json"]) == 0
    plans = json.loads(capsys.readouterr().out)["variants"]
    assert set(plans) == {"k3s", "rke2"}
    assert plans["rke2"]["provider_images"][0]["ref"] == "ttl.sh/ubuntu:rke2-1.32.3-v4.9.21-demo"
    assert run(["--config", str(f), "--workdir", str(workdir), "plan", "--variant", "rke2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["provider_images"][0]["k8s_version"] == "1.32.3"
    assert run(["--config", str(f), "--workdir", str(workdir), "plan", "--variant", "nope"]) == 2
    assert not workdir.exists()


def test_skip_and_push_to_take_commas_or_repeats(canvos_repo, tmp_path, capsys):
    args = ["--workdir", str(tmp_path / "w"), "plan", "--canvos-url", canvos_repo.url, "--ref", "v4.10.0",
            "--k8s-version", "1.32.3", "--registry", "reg.example/x", "--json"]
    assert run([*args, "--skip", "preflight,push", "--skip", "registry-check", "--push-to", "origin,external"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["skip"] == ["preflight", "push", "registry-check"]
    assert plan["push"]["to"] == ["origin", "external"]


def test_privileged_false_without_buildkit_is_exit_6_in_preflight_plan_and_build(canvos_repo, tmp_path, capsys,
                                                                                   monkeypatch):
    # Earthly's image exits 1 unprivileged without a remote BuildKit (earthly-entrypoint.sh): refuse it
    # before anything starts, the same way in all three commands, naming both ways out.
    monkeypatch.setenv("EDGEFORGE_EARTHLY_PRIVILEGED", "false")
    workdir = tmp_path / "w"
    common = ["--canvos-url", canvos_repo.url, "--ref", "v4.10.0", "--k8s-version", "1.32.3"]
    for argv in (["preflight"], ["plan", *common], ["build", *common]):
        assert run(["--workdir", str(workdir), *argv]) == 6, argv
        err = capsys.readouterr().err
        assert "earthly.privileged = false needs a remote BuildKit" in err
        assert "--buildkit-host" in err and "allows privileged containers" in err
    assert not workdir.exists()  # nothing was cloned or written


def test_plan_fails_like_build_on_an_unlisted_k8s_version(canvos_repo, tmp_path, capsys):
    # build refused a K8S_VERSION missing from k8s_version.json while plan said nothing.
    args = ["--workdir", str(tmp_path / "w"), "plan", "--canvos-url", canvos_repo.url, "--ref", "v4.10.0",
            "--k8s-version", "1.32.4"]
    assert run(args) == 5
    err = capsys.readouterr().err
    assert "1.32.4 is not in k8s_version.json" in err and "--allow-unlisted-k8s-version" in err
    assert run([*args, "--allow-unlisted-k8s-version", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["provider_images"][0]["ref"].startswith("ttl.sh/ubuntu:k3s-1.32.4-")
    assert any("1.32.4 is not in k8s_version.json" in w for w in plan["warnings"])


def test_plan_refuses_an_undeclared_build_arg_naming_the_nearest(canvos_repo, tmp_path, capsys):
    args = ["--workdir", str(tmp_path / "w"), "plan", "--canvos-url", canvos_repo.url, "--ref", "v4.10.0",
            "--k8s-version", "1.32.3", "--build-arg", "KAIROS_VERSON=v4.1.0"]
    assert run(args) == 5
    err = capsys.readouterr().err
    assert "declares no ARG KAIROS_VERSON" in err and "nearest declared: KAIROS_VERSION" in err


def test_plan_json_shows_what_the_checkout_says(canvos_repo, tmp_path, capsys):
    args = ["--workdir", str(tmp_path / "w"), "plan", "--canvos-url", canvos_repo.url, "--ref", "v4.10.0",
            "--k8s-version", "1.32.3", "--json"]
    assert run(args) == 0
    plan = json.loads(capsys.readouterr().out)
    assert "BASE_IMAGE" not in plan["arg_file"] and all(v != "" for v in plan["arg_file"].values())
    assert plan["arg_file"]["K8S_VERSION"] == "1.32.3"
    assert "PE_VERSION" in plan["contract"]["args"]["declared"]
    assert plan["earthly"]["commands"][0][:3] == ["earthly", "--allow-privileged", "+build-all-images"]
    assert plan["os_pack"]["options"]["system.peVersion"] == "v4.9.21"


def test_a_warning_every_variant_would_repeat_prints_once(canvos_repo, tmp_path, capsys):
    f = tmp_path / "edgeforge.toml"
    f.write_text(f'[canvos]\nurl = "{canvos_repo.url}"\nref = "v4.10.0"\n[build]\nk8s_versions = ["1.32.3"]\n\n'
                 '[[variants]]\nname = "k3s"\n\n[[variants]]\nname = "rke2"\nk8s_distribution = "rke2"\n')
    warning = "warning: CanvOS tag v4.10.0 has PE_VERSION v4.9.21 in its Earthfile"
    for _ in range(2):  # and once again in the next run
        assert run(["--config", str(f), "--workdir", str(tmp_path / "w"), "plan", "--all"]) == 0
        assert capsys.readouterr().err.count(warning) == 1


def test_plan_at_latest_reads_the_existing_checkout_without_the_network(canvos_checkout, tmp_path, capsys,
                                                                          monkeypatch):
    # `ref = latest` and a checkout in the work directory: plan reads it as it is (no fetch), so it works
    # with the remote gone, and says where it read CanvOS from.
    from tests.canvos_fixture import git

    workdir, repo = canvos_checkout
    head = git(workdir / "CanvOS", "rev-parse", "HEAD")
    repo.bare.rename(tmp_path / "gone.git")  # origin's URL now names a path that does not exist
    trace = tmp_path / "git-trace.log"  # every git command edgeforge-ext runs (git's own tracing)
    monkeypatch.setenv("GIT_TRACE", str(trace))
    code = run(["--workdir", str(workdir), "plan", "--canvos-url", repo.url, "--ref", "latest",
                "--k8s-version", "1.32.3"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"reading CanvOS from the checkout in {workdir / 'CanvOS'} (v4.10.0; no network)" in err
    assert f"CanvOS      {repo.url} @ latest → v4.10.0 ({repo.tags['v4.10.0'][:12]})" in err
    assert "PE_VERSION  v4.9.21" in err
    assert "temporary clone" not in err
    # No fetch was tried (a failed one would warn "could not fetch ...; using the newest tag in the local
    # checkout"): the only warning is the fixture's PE_VERSION one.
    assert [ln for ln in err.splitlines() if ln.startswith("warning:")] == [
        "warning: CanvOS tag v4.10.0 has PE_VERSION v4.9.21 in its Earthfile; images are tagged with v4.9.21"]
    commands = [ln.split("built-in: ", 1)[1] for ln in trace.read_text().splitlines() if "built-in: git " in ln]
    assert commands and not [c for c in commands if c.split()[1] in ("fetch", "clone", "ls-remote")], commands
    # (A fetch that fails is only a warning to the checkout code, which the plan does not print.)
    assert git(workdir / "CanvOS", "rev-parse", "HEAD") == head  # the work directory is left as it was
