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


def test_plan_at_latest_reads_the_existing_checkout_when_the_remote_is_gone(canvos_checkout, tmp_path, capsys,
                                                                             monkeypatch):
    # `ref = latest` and a checkout in the work directory, the remote unreachable: plan cannot learn the latest
    # tag, says so plainly, and plans the checkout's tag (no fetch, no clone; the work directory unchanged).
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
    warned = [ln for ln in err.splitlines() if ln.startswith("warning: the latest CanvOS tag")]
    assert len(warned) == 1, err
    assert warned[0].startswith("warning: the latest CanvOS tag could not be learnt, so the plan uses the "
                                f"checkout's tag v4.10.0 (in {workdir / 'CanvOS'}): could not list the refs of "
                                f"{repo.url}: "), warned
    assert "does not appear to be a git repository" in warned[0]
    assert f"reading CanvOS from the checkout in {workdir / 'CanvOS'} (v4.10.0; nothing fetched)" in err
    assert f"CanvOS      {repo.url} @ latest → v4.10.0 ({repo.tags['v4.10.0'][:12]})" in err
    assert "PE_VERSION  v4.9.21" in err
    assert "temporary clone" not in err
    commands = [ln.split("built-in: ", 1)[1] for ln in trace.read_text().splitlines() if "built-in: git " in ln]
    assert [c for c in commands if c.split()[1] == "ls-remote"], commands  # the remote was asked
    assert not [c for c in commands if c.split()[1] in ("fetch", "clone")], commands
    assert git(workdir / "CanvOS", "rev-parse", "HEAD") == head  # the work directory is left as it was


def test_plan_at_latest_asks_the_remote_and_plans_its_newer_tag_as_build_would(canvos_checkout, tmp_path, capsys,
                                                                                 monkeypatch):
    # The checkout is at v4.10.0 and the remote has since released v4.11.0, which no longer lists 1.32.3:
    # build would fetch v4.11.0 and fail (exit 5), so plan must too, not plan v4.10.0 from the checkout.
    from tests.canvos_fixture import git

    workdir, repo = canvos_checkout
    head = git(workdir / "CanvOS", "rev-parse", "HEAD")
    args = ["--workdir", str(workdir), "plan", "--canvos-url", repo.url, "--ref", "latest"]
    trace = tmp_path / "git-trace.log"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    # While v4.10.0 is the latest: the remote's tags are listed (ls-remote) and the checkout is read.
    assert run([*args, "--k8s-version", "1.32.3"]) == 0
    err = capsys.readouterr().err
    assert f"reading CanvOS from the checkout in {workdir / 'CanvOS'} (v4.10.0; nothing fetched)" in err
    assert "temporary clone" not in err and "could not be learnt" not in err
    commands = [ln.split("built-in: ", 1)[1] for ln in trace.read_text().splitlines() if "built-in: git " in ln]
    assert [c for c in commands if c.split()[1] == "ls-remote" and "--heads" not in c], commands  # tags only
    assert not [c for c in commands if c.split()[1] in ("fetch", "clone")], commands
    monkeypatch.delenv("GIT_TRACE")

    sha = repo.add_tag("v4.11.0", files={"k8s_version.json": json.dumps({"k3s": ["1.33.1"], "rke2": ["1.33.1"]})})
    assert run([*args, "--k8s-version", "1.32.3"]) == 5
    err = capsys.readouterr().err
    assert (f"the checkout in {workdir / 'CanvOS'} holds tag v4.10.0, the latest tag of {repo.url} is v4.11.0: "
            "reading CanvOS from a temporary clone (removed afterwards)") in err
    assert "1.32.3 is not in k8s_version.json for k3s (nearest: 1.33.1)" in err
    assert run([*args, "--k8s-version", "1.33.1"]) == 0
    err = capsys.readouterr().err
    assert f"CanvOS      {repo.url} @ latest → v4.11.0 ({sha[:12]})" in err
    assert "PE_VERSION  v4.11.0" in err
    assert "reading CanvOS from the checkout" not in err
    assert git(workdir / "CanvOS", "rev-parse", "HEAD") == head  # plan changed nothing in the work directory


def test_plan_never_reads_a_checkout_of_another_repository(canvos_checkout, tmp_path, capsys):
    # The work directory holds a checkout of repository A; --canvos-url names a fork B whose v4.10.0 is its
    # own commit. checkout/build refuse the checkout (exit 4); plan must read B (a temporary clone, saying
    # why), not A's v4.10.0 under B's name. Commands that read whatever the checkout holds (images
    # --from-plan, render) still read it, with the same warning.
    from tests.canvos_fixture import copy_canvos_repo, earthfile, git

    workdir, repo = canvos_checkout
    fork = copy_canvos_repo(repo, tmp_path / "fork")
    forked = fork.commit("acme: our v4.10.0", {"Earthfile": earthfile("v4.10.0-acme")}, push=False)
    git(fork.work, "tag", "-f", "-a", "-m", "acme v4.10.0", "v4.10.0", forked)
    git(fork.work, "push", "-q", "-f", "origin", "main", "refs/tags/v4.10.0")
    head = git(workdir / "CanvOS", "rev-parse", "HEAD")

    common = ["--workdir", str(workdir), "--canvos-url", fork.url, "--ref", "v4.10.0", "--k8s-version", "1.32.3"]
    assert run([*common[:2], "checkout", *common[2:6]]) == 4
    assert f"is a checkout of {repo.url}, not of {fork.url}" in capsys.readouterr().err

    code = run([*common[:2], "plan", *common[2:]])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (f"warning: {workdir / 'CanvOS'} is a checkout of {repo.url}, not of canvos.url {fork.url} (checkout "
            "and build refuse it, exit 4): reading CanvOS from a temporary clone (removed afterwards)") in err
    assert f"CanvOS      {fork.url} @ v4.10.0 ({forked[:12]})" in err
    assert "PE_VERSION  v4.10.0-acme" in err
    assert "reading CanvOS from the checkout" not in err
    assert git(workdir / "CanvOS", "rev-parse", "HEAD") == head

    # any_ref: images --from-plan names the images after the checkout it finds, and says whose it is.
    code = run([*common[:2], "--json", "images", "rewrite", "--from-plan", *common[2:], "--registry", "ext.io/p"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (f"warning: {workdir / 'CanvOS'} is a checkout of {repo.url}, not of canvos.url {fork.url} (checkout "
            "and build refuse it, exit 4): reading it as it is") in captured.err
    assert json.loads(captured.out)["images"][0]["source"] == "ttl.sh/ubuntu:k3s-1.32.3-v4.9.21-demo"  # A's


def test_a_path_and_its_file_url_name_the_same_repository(canvos_checkout, capsys):
    # The checkout's origin is file:///…/CanvOS.git; --canvos-url /…/CanvOS.git is the same repository.
    workdir, repo = canvos_checkout
    path = str(repo.bare.resolve())
    assert repo.url == f"file://{path}"
    code = run(["--workdir", str(workdir), "plan", "--canvos-url", path, "--ref", "v4.10.0", "--k8s-version", "1.32.3"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"reading CanvOS from the checkout in {workdir / 'CanvOS'} (v4.10.0; nothing fetched)" in err
    assert "temporary clone" not in err and "not of canvos.url" not in err
    assert run(["--workdir", str(workdir), "checkout", "--canvos-url", path + "/", "--ref", "v4.10.0"]) == 0


def test_plan_prints_the_checkouts_warnings_once(canvos_repo, tmp_path, capsys):
    # What the checkout code finds worth a warning (here: a tag without earthly.sh, so the Earthly image and
    # the certificate handling are edgeforge-ext's defaults) reaches the user, once for all variants, from a
    # temporary clone and from the work directory's checkout alike.
    canvos_repo.add_tag("v4.10.2", files={"earthly.sh": None})
    f = tmp_path / "edgeforge.toml"
    f.write_text(f'[canvos]\nurl = "{canvos_repo.url}"\nref = "v4.10.2"\n[build]\nk8s_versions = ["1.32.3"]\n\n'
                 '[[variants]]\nname = "k3s"\n\n[[variants]]\nname = "rke2"\nk8s_distribution = "rke2"\n')
    warning = ("warning: the checkout has no earthly.sh: the Earthly image and certificate handling are "
               "edgeforge-ext's defaults")
    workdir = tmp_path / "w"
    assert run(["--config", str(f), "--workdir", str(workdir), "plan", "--all"]) == 0
    err = capsys.readouterr().err
    assert "temporary clone" in err and err.count(warning) == 1, err
    assert err.count("temporary clone") == 1, err  # one clone for both variants of the one source
    assert run(["--config", str(f), "--workdir", str(workdir), "checkout"]) == 0
    capsys.readouterr()
    assert run(["--config", str(f), "--workdir", str(workdir), "plan", "--all"]) == 0
    err = capsys.readouterr().err
    assert "reading CanvOS from the checkout" in err and err.count(warning) == 1, err
