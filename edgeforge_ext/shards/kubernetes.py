"""`--format k8s-job`: a ConfigMap with the shard list (and edgeforge.toml) and an Indexed Job with one
completion per shard; pod `i` builds entry `i` of the list (`build --shard-list`, `JOB_COMPLETION_INDEX`).

Needs Kubernetes 1.29 or later: the Docker-in-Docker daemon is a native sidecar (an init container with
`restartPolicy: Always`, so the pod completes when the build does) and each index fails on its own
(`backoffLimitPerIndex: 0`: a failed shard is not retried and does not stop the others).
"""

from __future__ import annotations

import json
from typing import Any

from edgeforge_ext.errors import UsageError
from edgeforge_ext.shards import pod
from edgeforge_ext.shards.model import ShardPlan

# Kubernetes: an Indexed Job has at most 100000 completions; a ConfigMap holds at most 1 MiB of data.
MAX_COMPLETIONS = 100_000
MAX_CONFIGMAP_BYTES = 1024 * 1024
SLOT = "SHARD_SLOT"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
LABELS = {"app.kubernetes.io/name": "edgeforge-ext", "app.kubernetes.io/component": "shard-build"}


def k8s_job(plan: ShardPlan, options: pod.PodOptions) -> list[dict[str, Any]]:
    """The ConfigMap and the Job, as objects (the view prints them as YAML documents)."""
    options.check()
    count = len(plan.shards)
    if count > MAX_COMPLETIONS:
        raise UsageError(f"{count} shards, but an Indexed Job has at most {MAX_COMPLETIONS} completions")
    data = {"shards.json": json.dumps(plan.as_json(), indent=1) + "\n"}
    if plan.config_text:
        data["edgeforge.toml"] = plan.config_text
    size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
    if size > MAX_CONFIGMAP_BYTES:
        raise UsageError(f"the shard list takes {size} bytes, but a ConfigMap holds at most {MAX_CONFIGMAP_BYTES} "
                         "(1 MiB)", hint="plan fewer shards per Job: --variant NAME, --changed-since")
    plan_name = f"{options.name}-plan"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": plan_name, "labels": dict(LABELS)}, "data": data}
    build = {
        "name": "build",
        "image": options.image,
        "command": ["sh", "-c", pod.build_script(f"--shard-list {pod.CONF}/shards.json")],
        "env": [{"name": SLOT, "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}}},
                *pod.env(options, SLOT, bool(plan.config_text))],
        "volumeMounts": [*pod.work_mounts(), *pod.docker_mounts(options),
                         {"name": "plan", "mountPath": pod.CONF, "readOnly": True}],
    }
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [build],
                            "volumes": [*pod.volumes(options),
                                        {"name": "plan", "configMap": {"name": plan_name}}]}
    if options.docker == "dind":
        sidecar = pod.dind_container(options)
        sidecar["restartPolicy"] = "Always"  # a native sidecar: started first, stopped when the build ends
        sidecar["startupProbe"] = {"exec": {"command": ["docker", "info"]}, "periodSeconds": 2, "failureThreshold": 90}
        spec["initContainers"] = [sidecar]
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": options.name, "labels": dict(LABELS)},
        "spec": {
            "completionMode": "Indexed",
            "completions": count,
            "parallelism": min(options.parallelism or count, count) if count else 1,
            "backoffLimitPerIndex": 0,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {"metadata": {"labels": dict(LABELS)}, "spec": spec},
        },
    }
    return [config_map, job]
