"""An ISO's evidence end to end, with the real tools: an ISO made by xorriso holding a squashfs root file
system (mksquashfs) with a known dpkg database; its evidence written as `build --attest` writes it, then
`edgeforge-ext verify` on it as a user would run it, also after tampering."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeforge_ext.attest.keys import load_signer, write_key_pair
from edgeforge_ext.attest.statement import BuildFacts, Dependency
from edgeforge_ext.build.attest import attest_iso, verify_for_promotion
from edgeforge_ext.build.report import Report
from edgeforge_ext.cli import run
from edgeforge_ext.errors import ArtifactError
from edgeforge_ext.secrets import Secret
from tests.attest.helpers import DPKG_STATUS, INSTALLED, OS_RELEASE, spdx_problems
from tests.conftest import require

FACTS = BuildFacts({"target": "iso", "canvos": {"url": "https://example.invalid/CanvOS.git", "tag": "v4.10.0"}},
                   (Dependency("CanvOS", {"gitCommit": "a" * 40}, "git+https://example.invalid/CanvOS.git@v4.10.0"),
                    Dependency("user-data", {"sha256": "b" * 64})), "run1", "2024-05-01T10:00:00Z",
                   "2024-05-01T10:30:00Z", "0.1.0")


@pytest.fixture(scope="module")
def live_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A live ISO as CanvOS lays it out: /rootfs.squashfs (with the dpkg database) beside the overlay files."""
    require(shutil.which("mksquashfs") is not None, "mksquashfs (squashfs-tools) is not installed")
    require(shutil.which("xorriso") is not None, "xorriso is not installed")
    base = tmp_path_factory.mktemp("iso")
    rootfs = base / "rootfs"
    (rootfs / "var/lib/dpkg").mkdir(parents=True)
    (rootfs / "usr/lib").mkdir(parents=True)
    (rootfs / "etc").mkdir()
    (rootfs / "var/lib/dpkg/status").write_bytes(DPKG_STATUS)
    (rootfs / "usr/lib/os-release").write_bytes(OS_RELEASE)
    (rootfs / "etc/os-release").symlink_to("../usr/lib/os-release")  # as on Ubuntu
    tree = base / "tree"
    (tree / "files-iso").mkdir(parents=True)
    (tree / "files-iso/config.yaml").write_text("#cloud-config\n")
    subprocess.run(["mksquashfs", str(rootfs), str(tree / "rootfs.squashfs"), "-quiet", "-noappend"], check=True)
    iso = base / "palette-edge-installer.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "COS_LIVE", "-o", str(iso), str(tree)],
                   check=True, capture_output=True)
    return iso


@pytest.fixture
def signed(live_iso: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(a copy of the ISO with its evidence beside it, the public key)."""
    iso = tmp_path / live_iso.name
    shutil.copyfile(live_iso, iso)
    key, pub = write_key_pair(tmp_path / "edge", None)
    signer = load_signer(Secret(key.read_text(), "file"), None)
    attest_iso(iso, hashlib.sha256(iso.read_bytes()).hexdigest(), FACTS, signer)
    return iso, pub


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = run(["verify", "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_the_iso_sbom_lists_the_packages_of_its_root_file_system(signed: tuple[Path, Path]):
    iso, _ = signed
    doc = json.loads(iso.with_name(iso.name + ".spdx.json").read_text())
    names = {p["name"]: p["versionInfo"] for p in doc["packages"] if p["SPDXID"] != "SPDXRef-Artifact"}
    assert names == INSTALLED
    assert "rootfs.squashfs" in doc["comment"]
    assert spdx_problems(doc) == []
    provenance = json.loads(iso.with_name(iso.name + ".provenance.json").read_text())
    assert provenance["subject"] == [{"name": iso.name, "digest": {"sha256": hashlib.sha256(iso.read_bytes())
                                                                  .hexdigest()}}]
    assert provenance["predicateType"] == "https://slsa.dev/provenance/v1"
    deps = {d["name"]: d for d in provenance["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert deps["user-data"] == {"name": "user-data", "digest": {"sha256": "b" * 64}}


def test_verify_accepts_the_untouched_iso(signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]):
    iso, pub = signed
    code, out = verify(capsys, "--key", str(pub), str(iso))
    assert code == 0
    assert out["results"][0]["verified"] == ["provenance", "SBOM"]


def test_one_flipped_byte_fails_as_a_subject_mismatch(signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]):
    iso, pub = signed
    data = bytearray(iso.read_bytes())
    data[len(data) // 2] ^= 0x01
    iso.write_bytes(bytes(data))
    code, out = verify(capsys, "--key", str(pub), str(iso))
    assert code == 8
    problems = out["results"][0]["problems"]
    assert len(problems) == 2 and all(p.startswith("subject mismatch") for p in problems)
    with pytest.raises(ArtifactError, match="not promoted"):  # and a nightly build's latest would not move
        verify_for_promotion(_attesting_config(iso), Report(iso={"path": str(iso)}))


def test_another_key_fails(signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path):
    iso, _ = signed
    _, other = write_key_pair(tmp_path / "other", None)
    code, out = verify(capsys, "--key", str(other), str(iso))
    assert code == 8
    assert all("no signature verifies with the key" in p for p in out["results"][0]["problems"])


def test_a_missing_attestation_fails_naming_it(signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]):
    iso, pub = signed
    iso.with_name(iso.name + ".spdx.dsse.json").unlink()
    code, out = verify(capsys, "--key", str(pub), str(iso))
    assert code == 8
    assert out["results"][0]["problems"] == [f"missing attestation: {iso.name}.spdx.dsse.json (the SBOM) is not "
                                              "beside the ISO"]
    assert out["results"][0]["verified"] == ["provenance"]


def test_an_edited_readable_copy_fails(signed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]):
    iso, pub = signed
    sbom = iso.with_name(iso.name + ".spdx.json")
    doc = json.loads(sbom.read_text())
    doc["packages"] = doc["packages"][:-1]  # a package hidden from the readable SBOM
    sbom.write_text(json.dumps(doc))
    code, out = verify(capsys, "--key", str(pub), str(iso))
    assert code == 8
    assert out["results"][0]["problems"] == [f"{sbom.name} differs from what was signed (edited after signing)"]


def _attesting_config(iso: Path):  # type: ignore[no-untyped-def]
    from tests.configs import make_config

    key = iso.parent / "edge.key"
    return make_config(iso.parent, env={"EDGEFORGE_ATTEST_ENABLED": "true", "EDGEFORGE_ATTEST_KEY_FILE": str(key)})
