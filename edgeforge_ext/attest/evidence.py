"""The evidence of one artifact, made and signed: its SLSA provenance and its SBOM as in-toto statements in
DSSE envelopes, for an ISO (files beside it) or an image (layers for cosign's .att tag, and the
simple-signing layer for its .sig tag)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeforge_ext import __version__
from edgeforge_ext.attest import cosign, dsse, spdx
from edgeforge_ext.attest.keys import Signer
from edgeforge_ext.attest.rootfs import Contents
from edgeforge_ext.attest.statement import (
    SLSA_PROVENANCE,
    SPDX_DOCUMENT,
    BuildFacts,
    Dependency,
    provenance,
    statement,
    subject,
    to_bytes,
)
from edgeforge_ext.attest.verify import IsoFiles

TOOL = f"edgeforge-ext-{__version__}"


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def sbom(artifact: str, sha256: str, contents: Contents, created: str) -> dict[str, Any]:
    """The SPDX document of an artifact. Its namespace is derived from the artifact's digest: the same
    artifact gets the same document name, a rebuilt one another."""
    namespace = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'edgeforge-ext:{artifact}@{sha256}')}"
    read = f"packages read from {contents.read_from}" if contents.read_from else ""
    comment = "; ".join(x for x in (read, contents.note) if x)  # the note: what could not be read
    return spdx.document(name=f"{artifact.rsplit('/', 1)[-1]}-sbom", namespace=namespace, created=created,
                         tool=TOOL, artifact=artifact, artifact_sha256=sha256, packages=contents.packages,
                         release=contents.release, comment=comment)


@dataclass(frozen=True)
class Signed:
    """One statement, its bytes, and its DSSE envelope."""

    predicate_type: str
    statement: dict[str, Any]
    payload: bytes
    envelope: dict[str, Any]


def sign_statement(document: dict[str, Any], signer: Signer) -> Signed:
    payload = to_bytes(document)
    return Signed(str(document["predicateType"]), document, payload, dsse.sign(payload, signer))


def statements(name: str, sha256: str, facts: BuildFacts, contents: Contents, signer: Signer,
               extra_parameters: Mapping[str, Any] | None = None) -> tuple[Signed, Signed]:
    """(provenance, SBOM) of one artifact, signed."""
    subjects = [subject(name, sha256)]
    made = sign_statement(statement(subjects, SLSA_PROVENANCE, provenance(facts, extra_parameters)), signer)
    bom = sbom(name, sha256, contents, facts.finished)
    return made, sign_statement(statement(subjects, SPDX_DOCUMENT, bom), signer)


def write_iso_evidence(iso: Path, sha256: str, facts: BuildFacts, contents: Contents, signer: Signer) -> IsoFiles:
    """The four files beside the ISO: the readable provenance and SBOM, and their envelopes. Written
    atomically: a half-written envelope never passes for evidence."""
    from edgeforge_ext.fsutil import atomic_write

    made, bom = statements(iso.name, sha256, facts, contents, signer)
    files = IsoFiles(iso)
    atomic_write(files.provenance, made.payload, mode=0o644)
    atomic_write(files.sbom, (json.dumps(bom.statement["predicate"], indent=2, sort_keys=True) + "\n").encode(),
                 mode=0o644)
    atomic_write(files.provenance_envelope, dsse.to_bytes(made.envelope) + b"\n", mode=0o644)
    atomic_write(files.sbom_envelope, dsse.to_bytes(bom.envelope) + b"\n", mode=0o644)
    return files


def image_layers(repository: str, digest: str, facts: BuildFacts, contents: Contents, signer: Signer,
                 k8s_version: str) -> tuple[list[cosign.Layer], list[cosign.Layer]]:
    """(.sig layers, .att layers) of one pushed image."""
    payload = cosign.simple_signing(repository, digest)
    signature = cosign.signature_layer(payload, signer.sign(payload))
    made, bom = statements(repository, digest, facts, contents, signer,
                           {"providerImage": {"repository": repository, "k8sVersion": k8s_version}})
    attestations = [cosign.attestation_layer(dsse.to_bytes(s.envelope), s.predicate_type) for s in (made, bom)]
    return [signature], attestations


# --- the build's facts, kept in the report so `edgeforge-ext push` can attest what it pushes later ----

def facts_json(facts: BuildFacts) -> dict[str, Any]:
    return {"parameters": dict(facts.parameters), "dependencies": [d.as_json() for d in facts.dependencies],
            "invocation_id": facts.invocation_id, "started": facts.started, "finished": facts.finished,
            "builder_version": facts.builder_version}


def facts_from_json(data: Mapping[str, Any]) -> BuildFacts:
    deps = tuple(Dependency(str(d.get("name", "")), dict(d.get("digest") or {}), str(d.get("uri", "")),
                            dict(d.get("annotations") or {})) for d in data.get("dependencies") or [])
    return BuildFacts(dict(data.get("parameters") or {}), deps, str(data.get("invocation_id", "")),
                      str(data.get("started", "")), str(data.get("finished", "")),
                      str(data.get("builder_version", "")))
