"""The signing key: ECDSA P-256 in PEM (PKCS#8, encrypted when a password is given), and its public half
(SubjectPublicKeyInfo PEM: what `cosign verify --key` takes).

Signatures are ASN.1 DER ECDSA over SHA-256, as cosign and DSSE's ECDSA profile make them.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edgeforge_ext.errors import ConfigError, UsageError
from edgeforge_ext.secrets import MASK, Secret

if TYPE_CHECKING:
    from edgeforge_ext.config import Config

_ECDSA = ec.ECDSA(hashes.SHA256())


class Verifier:
    """A public key that checks signatures."""

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        self.key = key

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self.key.verify(signature, data, _ECDSA)
        except InvalidSignature:
            return False
        return True

    def pem(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def keyid(self) -> str:
        """sha256 of the DER public key: names the key in reports (never needed to verify)."""
        der = self.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return "sha256:" + hashlib.sha256(der).hexdigest()


class Signer:
    """The private key, held in memory only while signing; never printed."""

    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, _ECDSA)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self._key.public_key())

    def __repr__(self) -> str:
        return f"Signer({MASK})"


def generate() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


def private_pem(signer: Signer, password: Secret | None) -> bytes:
    """PKCS#8 PEM; encrypted (the best scheme cryptography offers: AES-256-CBC, PBKDF2) with a password."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.reveal().encode()) if password
        else serialization.NoEncryption())
    return signer._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def write_key_pair(prefix: Path, password: Secret | None) -> tuple[Path, Path]:
    """PREFIX.key (mode 0600 from its creation: never readable by others, not even for a moment) and
    PREFIX.pub. Existing files are never overwritten: a lost key means every signature made with it is
    unverifiable by a new one."""
    key_path = prefix.with_name(prefix.name + ".key")
    pub_path = prefix.with_name(prefix.name + ".pub")
    for path in (key_path, pub_path):
        if path.exists() or path.is_symlink():
            raise UsageError(f"{path} exists: not overwritten", hint="choose another --output PREFIX, or move it away")
    if not key_path.parent.is_dir():
        raise UsageError(f"no directory {key_path.parent} for the key")
    signer = generate()
    data = private_pem(signer, password)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, "the key was written only in part", str(key_path))
        finally:
            os.close(fd)
        pub_path.write_bytes(signer.verifier.pem())
    except OSError:  # no half-written key, no key without its .pub
        key_path.unlink(missing_ok=True)
        raise
    return key_path, pub_path


def load_signer(pem: Secret, password: Secret | None) -> Signer:
    """The key of attest.key_file; every way it cannot be used is a configuration error (exit 2)."""
    where = pem.source or "the attestation key"
    secret = password.reveal().encode() if password else None
    try:
        key = serialization.load_pem_private_key(pem.reveal().encode(), password=secret)
    except TypeError:
        if password is None:
            raise ConfigError(f"{where} is encrypted", hint="set EDGEFORGE_ATTEST_KEY_PASSWORD") from None
        raise ConfigError(f"{where} is not encrypted, but EDGEFORGE_ATTEST_KEY_PASSWORD is set",
                          hint="unset EDGEFORGE_ATTEST_KEY_PASSWORD, or give the encrypted key") from None
    except (ValueError, UnsupportedAlgorithm):
        # Deliberately vague: cryptography says "bad decrypt" or a parse error, never the key bytes.
        hint = "check EDGEFORGE_ATTEST_KEY_PASSWORD" if password else "make one with: edgeforge-ext keygen"
        raise ConfigError(f"{where}: not a PEM private key, or the password is wrong", hint=hint) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"{where} is not an ECDSA P-256 key", hint="make one with: edgeforge-ext keygen")
    return Signer(key)


def load_verifier(path: Path) -> Verifier:
    """A public key file (PEM SubjectPublicKeyInfo, as keygen and cosign write it)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the public key {path}: {exc.strerror}") from None
    if b"PRIVATE KEY" in data:
        raise UsageError(f"{path} is a private key: give the public one (PREFIX.pub)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise UsageError(f"{path} is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UsageError(f"{path} is not an ECDSA P-256 public key")
    return Verifier(key)


def signer_from(config: Config) -> Signer:
    """The signing key of the configuration (exit 2 when none is given or it cannot be used)."""
    if config.attest_key is None:
        raise ConfigError("--attest needs a signing key: --attest-key FILE, attest.key_file or "
                          "EDGEFORGE_ATTEST_KEY_FILE", hint="make one with: edgeforge-ext keygen --output PREFIX")
    return load_signer(config.attest_key, config.attest_key_password)
