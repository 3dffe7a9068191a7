"""in-toto v1 Statements (github.com/in-toto/attestation, spec v1) and the SLSA provenance v1 predicate
(slsa.dev/provenance/v1). Plain JSON built here: the shapes are small and fixed, and the in-toto-attestation
package would bring protobuf for what `json` does."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
SPDX_DOCUMENT = "https://spdx.dev/Document"  # what `cosign attest --type spdxjson` writes
# What this provenance describes: CanvOS's Earthfile run by edgeforge-ext (its parameters below).
BUILD_TYPE = "https://github.com/spectrocloud/CanvOS/earthly-build@v1"
BUILDER_ID = "urn:edgeforge-ext:builder"


def subject(name: str, sha256: str) -> dict[str, Any]:
    return {"name": name, "digest": {"sha256": sha256.removeprefix("sha256:")}}


def statement(subjects: Sequence[Mapping[str, Any]], predicate_type: str,
              predicate: Mapping[str, Any]) -> dict[str, Any]:
    return {"_type": STATEMENT_TYPE, "subject": list(subjects), "predicateType": predicate_type,
            "predicate": predicate}


def to_bytes(document: Mapping[str, Any]) -> bytes:
    """The bytes that are signed, and written as the readable copy: the same bytes, so a reader can
    compare them with the envelope's payload."""
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class Dependency:
    """One resolved dependency (a ResourceDescriptor): by digest; the content is never included."""

    name: str
    digest: Mapping[str, str]
    uri: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "digest": dict(self.digest)}
        if self.uri:
            out["uri"] = self.uri
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class BuildFacts:
    """What a provenance says about one build: its parameters (no secret among them), what it resolved,
    and when and by what it ran."""

    parameters: Mapping[str, Any]
    dependencies: tuple[Dependency, ...]
    invocation_id: str
    started: str  # RFC 3339
    finished: str
    builder_version: str


def provenance(facts: BuildFacts, extra_parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {**facts.parameters, **(extra_parameters or {})},
            "resolvedDependencies": [d.as_json() for d in facts.dependencies],
        },
        "runDetails": {
            "builder": {"id": BUILDER_ID, "version": {"edgeforge-ext": facts.builder_version}},
            "metadata": {"invocationId": facts.invocation_id, "startedOn": facts.started,
                         "finishedOn": facts.finished},
        },
    }


def subject_digests(document: Mapping[str, Any]) -> set[str]:
    """The sha256 digests ("sha256:…") a statement is about."""
    out = set()
    for item in document.get("subject") or []:
        if isinstance(item, Mapping):
            value = (item.get("digest") or {}).get("sha256")
            if isinstance(value, str):
                out.add("sha256:" + value)
    return out
