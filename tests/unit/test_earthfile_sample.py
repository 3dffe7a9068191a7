"""Earthfile.sample documents the Earthly contract: every target and ARG the tool passes is in it."""

from __future__ import annotations

import re
from pathlib import Path

from edgeforge_ext.config import load_config
from edgeforge_ext.plan import EARTHLY_TARGETS, Source, make_plan
from edgeforge_ext.render import render_all

SAMPLE = Path(__file__).resolve().parents[2] / "Earthfile.sample"
K8S = {"k3s": ["1.31.6", "1.32.3"]}


def sample_contract() -> tuple[set[str], set[str]]:
    text = SAMPLE.read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):\s*$", text, flags=re.M))
    args = set(re.findall(r"^ARG ([A-Z_][A-Z0-9_]*)", text, flags=re.M))
    return targets, args


def test_every_target_the_tool_runs_is_declared(tmp_path):
    targets, _ = sample_contract()
    assert set(EARTHLY_TARGETS.values()) <= targets
    for target in EARTHLY_TARGETS:
        config = load_config(None, env={}, flags={"build.target": target, "build.k8s_versions": ["1.31.6", "1.32.3"]},
                             cwd=tmp_path)
        plan = make_plan(config, Source(url="u", ref="r", pe_version="v4.9.38", k8s_versions=K8S))
        assert {run.target for run in plan.runs} <= targets, target


def test_every_arg_the_tool_passes_or_writes_is_declared(tmp_path):
    _, args = sample_contract()
    config = load_config(None, env={"EDGEFORGE_EDGE_HOST_TOKEN": "tok-abcdef-123"},
                         flags={"build.k8s_versions": ["1.32.3"], "site.palette_endpoint": "api.spectrocloud.com"},
                         cwd=tmp_path)
    plan = make_plan(config, Source(url="u", ref="r", pe_version="v4.9.38", k8s_versions=K8S))
    passed = {key for run in plan.runs for key in run.build_args}
    written = set(render_all(config, pe_version="v4.9.38", k8s_versions=K8S).arg_values)
    assert passed and written
    missing = (passed | written) - args
    assert not missing, f"Earthfile.sample lacks ARG {sorted(missing)}"
