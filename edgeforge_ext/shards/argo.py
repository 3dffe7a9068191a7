"""`--format argo`: an Argo Workflow whose DAG builds each shard (`withParam` over the shard list, one pod
per item running `build --shard`), then gathers them into one summary (also when some failed).

The shard list is the workflow's `shards` parameter; edgeforge.toml travels as a raw input artifact.
"""

from __future__ import annotations

import json
from typing import Any

from edgeforge_ext.errors import UsageError
from edgeforge_ext.shards import pod
from edgeforge_ext.shards.model import ShardPlan, matrix_entry

# Argo Workflows refuses a workflow larger than 1 MiB (its maximum workflow size); the list is inside it.
MAX_WORKFLOW_BYTES = 1024 * 1024


def argo_workflow(plan: ShardPlan, options: pod.PodOptions) -> dict[str, Any]:
    options.check()
    shards = json.dumps([matrix_entry(s) for s in plan.shards])
    config_input = [{"name": "config", "path": f"{pod.CONF}/edgeforge.toml", "raw": {"data": plan.config_text}}] \
        if plan.config_text else []
    build: dict[str, Any] = {
        "name": "build-shard",
        "inputs": {"parameters": [{"name": "shard"}], "artifacts": config_input},
        "container": {
            "image": options.image,
            "command": ["sh", "-c", (pod.WAIT_FOR_DIND + " && " if options.docker == "dind" else "")
                        + pod.build_script('--shard "$SHARD"')],
            # SHARD first: the work directory of host mode names it ($(SHARD)).
            "env": [{"name": "SHARD", "value": "{{inputs.parameters.shard}}"}, *pod.env(options, "SHARD",
                                                                                       bool(plan.config_text))],
            "volumeMounts": [*pod.work_mounts(), *pod.docker_mounts(options)],
        },
    }
    if not config_input:
        del build["inputs"]["artifacts"]
    if options.docker == "dind":
        sidecar = pod.dind_container(options)
        sidecar["mirrorVolumeMounts"] = False  # its own mounts: work at the same path, its storage
        build["sidecars"] = [sidecar]
    gather = {
        "name": "gather",
        "inputs": {"artifacts": [{"name": "plan", "path": f"{pod.CONF}/shards.json",
                                  "raw": {"data": "{{workflow.parameters.shards}}"}}]},
        "container": {"image": options.image,
                      "command": ["edgeforge-ext", "gather", pod.OUTPUT, "--plan", f"{pod.CONF}/shards.json",
                                  "--output", pod.OUTPUT],
                      "volumeMounts": [{"name": "output", "mountPath": pod.OUTPUT}]},
    }
    dag = {"tasks": [
        {"name": "build", "template": "build-shard", "withParam": "{{workflow.parameters.shards}}",
         "arguments": {"parameters": [{"name": "shard", "value": "{{item.shard}}"}]},
         "continueOn": {"failed": True}},  # the other shards and the gather go on
        {"name": "gather", "template": "gather", "dependencies": ["build"]},
    ]}
    spec: dict[str, Any] = {
        "entrypoint": "shards",
        "arguments": {"parameters": [{"name": "shards", "value": shards}]},
        "volumes": pod.volumes(options),
        "templates": [{"name": "shards", "dag": dag}, build, gather],
    }
    if options.parallelism:
        spec["parallelism"] = options.parallelism
    workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": {"generateName": f"{options.name}-"}, "spec": spec}
    size = len(json.dumps(workflow).encode())
    if size > MAX_WORKFLOW_BYTES:
        raise UsageError(f"the workflow takes {size} bytes with {len(plan.shards)} shards, but Argo Workflows takes "
                         f"at most {MAX_WORKFLOW_BYTES} (1 MiB)", hint="plan fewer shards: --variant NAME, "
                         "--changed-since")
    return workflow
