"""Supply-chain evidence, offline: keys, signed statements (in-toto v1 in DSSE envelopes), SLSA provenance,
SPDX SBOMs from package databases, cosign's signature and attestation tags, and their verification.

No network beyond the registry the images are pushed to: no Fulcio, no Rekor. Signing uses a static
ECDSA P-256 key (`edgeforge-ext keygen`), as `cosign sign --key` does.
"""
