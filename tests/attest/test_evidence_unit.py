"""The evidence formats without any engine: keys, DSSE, statements, SBOMs from a dpkg database."""

from __future__ import annotations

import base64
import json
import stat

import pytest

from edgeforge_ext.attest import cosign, dsse, spdx
from edgeforge_ext.attest.evidence import sbom
from edgeforge_ext.attest.keys import generate, load_signer, load_verifier, write_key_pair
from edgeforge_ext.attest.packages import dpkg_status, os_release
from edgeforge_ext.attest.rootfs import from_files
from edgeforge_ext.errors import ConfigError, UsageError
from edgeforge_ext.secrets import Secret
from tests.attest.helpers import DPKG_STATUS, INSTALLED, OS_RELEASE, spdx_problems


def test_pae_is_the_dsse_spec_example():
    # The worked example of the DSSE v1 protocol document.
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_an_envelope_opens_only_with_its_key_and_unaltered():
    signer, other = generate(), generate()
    envelope = dsse.sign(b'{"a": 1}', signer)
    assert dsse.open_envelope(envelope, signer.verifier) == b'{"a": 1}'
    with pytest.raises(dsse.EnvelopeError, match="no signature verifies"):
        dsse.open_envelope(envelope, other.verifier)
    altered = dict(envelope, payload=base64.b64encode(b'{"a": 2}').decode())
    with pytest.raises(dsse.EnvelopeError, match="no signature verifies"):
        dsse.open_envelope(altered, signer.verifier)
    retyped = dict(envelope, payloadType="text/plain")  # the type is signed too (PAE)
    with pytest.raises(dsse.EnvelopeError, match="payload type"):
        dsse.open_envelope(retyped, signer.verifier)


def test_keygen_writes_a_0600_key_and_refuses_to_overwrite(tmp_path):
    key, pub = write_key_pair(tmp_path / "edge", None)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    signer = load_signer(Secret(key.read_text(), "file k"), None)
    assert signer.verifier.pem() == pub.read_bytes()
    assert load_verifier(pub).verify(b"x", signer.sign(b"x"))
    before = key.read_bytes()
    with pytest.raises(UsageError, match="exists"):
        write_key_pair(tmp_path / "edge", None)
    assert key.read_bytes() == before


def test_an_encrypted_key_needs_its_password(tmp_path):
    key, _ = write_key_pair(tmp_path / "edge", Secret("correct horse battery"))
    pem = Secret(key.read_text(), "file edge.key")
    assert "ENCRYPTED PRIVATE KEY" in pem.reveal()
    assert load_signer(pem, Secret("correct horse battery")).sign(b"x")
    with pytest.raises(ConfigError, match="password is wrong"):
        load_signer(pem, Secret("wrong horse"))
    with pytest.raises(ConfigError, match="is encrypted"):
        load_signer(pem, None)


def test_a_private_key_is_refused_as_the_public_one(tmp_path):
    key, _ = write_key_pair(tmp_path / "edge", None)
    with pytest.raises(UsageError, match="private key"):
        load_verifier(key)


def test_dpkg_status_lists_exactly_the_installed_packages():
    packages = dpkg_status(DPKG_STATUS)
    assert {p.name: p.version for p in packages} == INSTALLED
    assert [p.source for p in packages if p.name == "libssl3"] == ["openssl"]


def test_the_sbom_lists_exactly_those_packages_and_is_valid_spdx():
    contents = from_files({"var/lib/dpkg/status": DPKG_STATUS, "etc/os-release": OS_RELEASE}, "test rootfs")
    doc = sbom("registry.example/edge/ubuntu", "sha256:" + "ab" * 32, contents, "2024-05-01T10:00:00Z")
    assert spdx.package_versions(doc) == INSTALLED
    assert len(doc["packages"]) == len(INSTALLED) + 1  # and the artifact itself
    purls = [r["referenceLocator"] for p in doc["packages"] for r in p.get("externalRefs", [])]
    assert "pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1.18?arch=amd64&distro=ubuntu-22.04" in purls
    assert spdx_problems(doc) == []


def test_an_sbom_without_a_package_database_says_why():
    contents = from_files({"etc/os-release": OS_RELEASE, "var/lib/rpm/rpmdb.sqlite": b"SQLite"}, "the image x")
    doc = sbom("x", "sha256:" + "cd" * 32, contents, "2024-05-01T10:00:00Z")
    assert spdx.package_versions(doc) == {}
    assert "rpm database" in doc["comment"]
    assert spdx_problems(doc) == []


def test_os_release_reads_quoted_values():
    assert os_release(OS_RELEASE).id == "ubuntu" and os_release(OS_RELEASE).version_id == "22.04"


def test_the_simple_signing_payload_is_cosigns():
    payload = json.loads(cosign.simple_signing("reg:5000/edge/ubuntu", "sha256:" + "ef" * 32))
    assert payload == {"critical": {"identity": {"docker-reference": "reg:5000/edge/ubuntu"},
                                    "image": {"docker-manifest-digest": "sha256:" + "ef" * 32},
                                    "type": "cosign container image signature"}, "optional": None}
    assert cosign.tag_for("sha256:" + "ef" * 32, "sig") == "sha256-" + "ef" * 32 + ".sig"
