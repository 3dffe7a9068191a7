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


def test_a_warning_every_variant_would_repeat_prints_once(canvos_repo, tmp_path, capsys):
    f = tmp_path / "edgeforge.toml"
    f.write_text(f'[canvos]\nurl = "{canvos_repo.url}"\nref = "v4.10.0"\n[build]\nk8s_versions = ["1.32.3"]\n\n'
                 '[[variants]]\nname = "k3s"\n\n[[variants]]\nname = "rke2"\nk8s_distribution = "rke2"\n')
    warning = "warning: CanvOS tag v4.10.0 has PE_VERSION v4.9.21 in its Earthfile"
    for _ in range(2):  # and once again in the next run
        assert run(["--config", str(f), "--workdir", str(tmp_path / "w"), "plan", "--all"]) == 0
        assert capsys.readouterr().err.count(warning) == 1
