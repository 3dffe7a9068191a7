"""Checking evidence: an ISO's files beside it, an image's .sig/.att tags in its registry. Each check
returns the problems it found, each naming what failed (missing attestation, wrong key or altered
envelope, subject mismatch), so `verify` lists all of them and the build refuses to promote."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeforge_ext.attest import cosign, dsse
from edgeforge_ext.attest.keys import Verifier
from edgeforge_ext.attest.statement import SLSA_PROVENANCE, SPDX_DOCUMENT, STATEMENT_TYPE, subject_digests
from edgeforge_ext.registry.client import RegistryClient
from edgeforge_ext.registry.images import ImageRef

REQUIRED = (SLSA_PROVENANCE, SPDX_DOCUMENT)


@dataclass
class Result:
    target: str
    digest: str = ""
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # what verified

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"target": self.target, "digest": self.digest, "ok": self.ok, "verified": self.checked,
                "problems": self.problems}


# --- the ISO ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IsoFiles:
    """The evidence files beside an ISO."""

    iso: Path

    def _beside(self, suffix: str) -> Path:
        return self.iso.with_name(self.iso.name + suffix)

    @property
    def provenance(self) -> Path:
        return self._beside(".provenance.json")

    @property
    def sbom(self) -> Path:
        return self._beside(".spdx.json")

    @property
    def provenance_envelope(self) -> Path:
        return self._beside(".provenance.dsse.json")

    @property
    def sbom_envelope(self) -> Path:
        return self._beside(".spdx.dsse.json")

    def all(self) -> tuple[Path, ...]:
        return (self.provenance, self.sbom, self.provenance_envelope, self.sbom_envelope)


def verify_iso(iso: Path, verifier: Verifier) -> Result:
    from edgeforge_ext.fsutil import sha256_file

    result = Result(str(iso))
    if not iso.is_file():
        result.problems.append(f"missing: the ISO {iso} is not there")
        return result
    digest = "sha256:" + sha256_file(iso)
    result.digest = digest
    files = IsoFiles(iso)
    for envelope_path, readable, predicate_type in (
            (files.provenance_envelope, files.provenance, SLSA_PROVENANCE),
            (files.sbom_envelope, files.sbom, SPDX_DOCUMENT)):
        what = _kind(predicate_type)
        try:
            envelope = json.loads(envelope_path.read_bytes())
        except FileNotFoundError:
            result.problems.append(f"missing attestation: {envelope_path.name} (the {what}) is not beside the ISO")
            continue
        except (OSError, ValueError) as exc:
            result.problems.append(f"unreadable attestation {envelope_path.name}: {exc}")
            continue
        statement = _open(envelope, verifier, envelope_path.name, result)
        if statement is None:
            continue
        if not _about(statement, predicate_type, digest, envelope_path.name, result, "the ISO"):
            continue
        problem = _readable_copy(readable, statement, predicate_type)
        if problem:
            result.problems.append(problem)
            continue
        result.checked.append(what)
    return result


def _readable_copy(path: Path, statement: dict[str, Any], predicate_type: str) -> str | None:
    """The readable file must say what was signed (the statement, or for the SBOM its predicate)."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return f"missing: {path.name}, the readable copy of what was signed"
    except (OSError, ValueError) as exc:
        return f"unreadable {path.name}: {exc}"
    signed = statement if predicate_type == SLSA_PROVENANCE else statement.get("predicate")
    if data != signed:
        return f"{path.name} differs from what was signed (edited after signing)"
    return None


# --- an image in a registry ---------------------------------------------------------------------

def verify_image(client: RegistryClient, ref: ImageRef, verifier: Verifier, digest: str | None = None) -> Result:
    """The image's cosign signature (.sig) and its provenance and SBOM attestations (.att), by the key."""
    result = Result(str(ref))
    digest = digest or client.manifest_digest(ref)
    if digest is None:
        result.problems.append(f"missing: the image {ref} is not in its registry")
        return result
    result.digest = digest
    _check_signature(client, ref, digest, verifier, result)
    _check_attestations(client, ref, digest, verifier, result)
    return result


def _check_signature(client: RegistryClient, ref: ImageRef, digest: str, verifier: Verifier, result: Result) -> None:
    import base64
    import binascii

    tag = cosign.tag_for(digest, "sig")
    layers = cosign.read_layers(client, ref.path, tag)
    if not layers:
        result.problems.append(f"missing signature: no {tag} in {ref.domain}/{ref.path}")
        return
    signed_by_key: list[dict[str, Any]] = []
    for layer in layers:
        if layer.media_type != cosign.SIMPLE_SIGNING:
            continue
        try:
            signature = base64.b64decode(layer.annotations.get(cosign.SIGNATURE_ANNOTATION, ""), validate=True)
        except (ValueError, binascii.Error):
            continue
        if signature and verifier.verify(layer.data, signature):
            try:
                signed_by_key.append(json.loads(layer.data))
            except ValueError:
                continue
    if not signed_by_key:
        result.problems.append(f"signature: no signature in {tag} verifies with the key (another key signed it, "
                               "or it was altered)")
        return
    named = [(p.get("critical") or {}).get("image", {}).get("docker-manifest-digest") for p in signed_by_key]
    if digest not in named:
        result.problems.append(f"subject mismatch: the signature in {tag} is for {', '.join(map(str, named))}, "
                               f"not {digest}")
        return
    result.checked.append("signature")


def _check_attestations(client: RegistryClient, ref: ImageRef, digest: str, verifier: Verifier,
                        result: Result) -> None:
    tag = cosign.tag_for(digest, "att")
    layers = cosign.read_layers(client, ref.path, tag)
    if not layers:
        result.problems.append(f"missing attestation: no {tag} in {ref.domain}/{ref.path}")
        return
    verified: set[str] = set()
    failures: dict[str, list[str]] = {}  # predicate type claimed -> why its envelopes did not verify
    for layer in layers:
        if layer.media_type != dsse.MEDIA_TYPE:
            continue
        claimed = layer.annotations.get(cosign.PREDICATE_ANNOTATION, "")
        local = Result(result.target)
        try:
            envelope = json.loads(layer.data)
        except ValueError:
            envelope = None
        statement = _open(envelope, verifier, f"an envelope in {tag}", local)
        if statement is not None:
            claimed = str(statement.get("predicateType", claimed))
            if _about(statement, claimed, digest, f"the {_kind(claimed)} in {tag}", local, "the image"):
                verified.add(claimed)
                continue
        failures.setdefault(claimed, []).extend(local.problems)
    for predicate_type in REQUIRED:
        if predicate_type in verified:
            result.checked.append(_kind(predicate_type))
        elif failures.get(predicate_type):
            result.problems.extend(failures[predicate_type])
        else:
            result.problems.append(f"missing attestation: no {_kind(predicate_type)} ({predicate_type}) in {tag}")


# --- shared --------------------------------------------------------------------------------------

def _kind(predicate_type: str) -> str:
    return {SLSA_PROVENANCE: "provenance", SPDX_DOCUMENT: "SBOM"}.get(predicate_type, predicate_type)


def _open(envelope: Any, verifier: Verifier, name: str, result: Result) -> dict[str, Any] | None:
    try:
        payload = dsse.open_envelope(envelope, verifier)
    except dsse.EnvelopeError as exc:
        result.problems.append(f"signature: {name}: {exc}")
        return None
    try:
        statement = json.loads(payload)
    except ValueError:
        result.problems.append(f"{name}: the signed payload is not JSON")
        return None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        result.problems.append(f"{name}: not an in-toto v1 statement")
        return None
    return statement


def _about(statement: dict[str, Any], predicate_type: str, digest: str, name: str, result: Result,
           what: str) -> bool:
    if statement.get("predicateType") != predicate_type:
        result.problems.append(f"{name}: predicate type {statement.get('predicateType')!r}, expected {predicate_type}")
        return False
    subjects = subject_digests(statement)
    if digest not in subjects:
        result.problems.append(f"subject mismatch: {name} is about {', '.join(sorted(subjects)) or 'nothing'}, "
                               f"but {what} is {digest} (changed after signing, or another build's evidence)")
        return False
    return True
