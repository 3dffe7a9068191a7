"""Shards: the builds of a configuration split so that engines users already run (a GitHub Actions
matrix, a Kubernetes Indexed Job, an Argo Workflow) build them on many hosts, each shard an ordinary
`edgeforge-ext build --shard ID`, and `edgeforge-ext gather` merges what they report.

model.py (a shard, a plan, their JSON), planner.py (which shards, their fingerprints, their order),
history.py (durations of earlier builds), changed.py (--changed-since), record.py (what a shard build
leaves), runner.py (build --shard), gather.py (the merged summary), github.py / kubernetes.py / argo.py
(the formats, with the limits each engine sets).
"""
