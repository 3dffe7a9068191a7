"""DSSE envelopes (github.com/secure-systems-lab/dsse, v1.0): the signature covers the pre-authentication
encoding of the payload type and the payload, so neither can be swapped without breaking it."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from edgeforge_ext.attest.keys import Signer, Verifier

IN_TOTO = "application/vnd.in-toto+json"
MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"


class EnvelopeError(Exception):
    """The envelope is malformed or no signature in it verifies with the key."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign(payload: bytes, signer: Signer, payload_type: str = IN_TOTO) -> dict[str, Any]:
    # keyid "": what cosign writes; verifiers then try the key they were given.
    signature = signer.sign(pae(payload_type, payload))
    return {"payloadType": payload_type, "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}]}


def to_bytes(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":")).encode()


def open_envelope(envelope: Mapping[str, Any], verifier: Verifier, payload_type: str = IN_TOTO) -> bytes:
    """The payload, when one signature verifies with the key; EnvelopeError saying why otherwise."""
    try:
        kind = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise EnvelopeError(f"not a DSSE envelope ({type(exc).__name__}: {exc})") from None
    if kind != payload_type:
        raise EnvelopeError(f"payload type {kind!r}, expected {payload_type!r}")
    if not signatures:
        raise EnvelopeError("the envelope has no signature")
    message = pae(kind, payload)
    if not any(verifier.verify(message, sig) for sig in signatures):
        raise EnvelopeError("no signature verifies with the key (another key signed it, or it was altered)")
    return payload
