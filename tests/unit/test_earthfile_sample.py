"""Earthfile.sample documents the Earthly contract: read by the same code that reads a CanvOS checkout,
it declares every target and ARG the tool passes, and a build planned against it has no problem."""

from __future__ import annotations

from pathlib import Path

from edgeforge_ext.build.plan import EARTHLY_TARGETS, Source, make_plan
from edgeforge_ext.canvos.contract import PRO_SECRET, read_contract
from edgeforge_ext.config import load_config
from edgeforge_ext.render import render_all

SAMPLE = Path(__file__).resolve().parents[2] / "Earthfile.sample"
K8S = {"k3s": ["1.31.6", "1.32.3"]}


def sample_source() -> Source:
    contract = read_contract(lambda name: SAMPLE.read_text() if name == "Earthfile" else None)
    return Source(url="u", ref="r", pe_version="v4.9.38", k8s_versions=K8S, targets=contract.earthfile.targets,
                  contract=contract)


def test_every_target_the_tool_runs_is_declared(tmp_path):
    source = sample_source()
    assert source.targets is not None and set(EARTHLY_TARGETS.values()) <= set(source.targets)
    for target in EARTHLY_TARGETS:
        config = load_config(None, env={}, flags={"build.target": target, "build.k8s_versions": ["1.31.6", "1.32.3"]},
                             cwd=tmp_path)
        plan = make_plan(config, source)
        assert {run.target for run in plan.runs} <= set(source.targets), target


def test_every_arg_the_tool_passes_or_writes_is_declared(tmp_path):
    config = load_config(None, env={"EDGEFORGE_EDGE_HOST_TOKEN": "tok-abcdef-123", "EDGEFORGE_UBUNTU_PRO_KEY": "C1pro"},
                         flags={"build.k8s_versions": ["1.32.3"], "site.palette_endpoint": "api.spectrocloud.com",
                                "build.uki": True, "build.fips_enabled": True},
                         cwd=tmp_path)
    source = sample_source()
    plan = make_plan(config, source)
    assert plan.arg_problems == ()
    passed = {key for run in plan.runs for key in run.build_args}
    written = set(render_all(config, pe_version="v4.9.38", k8s_versions=K8S, contract=source.contract).arg_values)
    assert passed and {"IS_UKI", "UBUNTU_PRO_ATTACH", "FIPS_ENABLED"} <= written
    assert not (passed | written) - source.contract.earthfile.declared  # type: ignore[union-attr]


def test_the_sample_shows_the_structures_the_tool_depends_on():
    contract = sample_source().contract
    assert contract is not None
    assert "BASE_IMAGE" in contract.earthfile.derived()  # only a default inside IF: never written empty
    assert contract.ubuntu_pro == PRO_SECRET
    assert contract.uki_inputs() == ("secure-boot/enrollment/", "secure-boot/private-keys/", "secure-boot/public-keys/")
