"""SPDX 2.3 JSON documents: one package for the artifact (the ISO or the image), one per installed package
of its root filesystem, each with its package URL (purl). Written here as plain JSON (spdx-tools, a heavy
dependency, validates them in the tests instead)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from edgeforge_ext.attest.packages import OsRelease, Package

NOASSERTION = "NOASSERTION"
_ID_CHARS = re.compile(r"[^A-Za-z0-9.-]")


def _spdx_id(prefix: str, name: str, index: int) -> str:
    return f"SPDXRef-{prefix}-{_ID_CHARS.sub('-', name)}-{index}"


def purl(package: Package, release: OsRelease) -> str:
    """pkg:deb/<distro>/<name>@<version>?arch=…&distro=<id>-<version_id> (the purl spec's deb type)."""
    namespace = release.id or "debian"
    qualifiers = []
    if package.arch:
        qualifiers.append(f"arch={quote(package.arch, safe='')}")
    if release.id and release.version_id:
        qualifiers.append(f"distro={quote(release.id + '-' + release.version_id, safe='')}")
    tail = "?" + "&".join(qualifiers) if qualifiers else ""
    return f"pkg:{package.kind}/{quote(namespace, safe='')}/{quote(package.name, safe='')}@" \
           f"{quote(package.version, safe='')}{tail}"


def document(*, name: str, namespace: str, created: str, tool: str, artifact: str, artifact_sha256: str | None,
             packages: Sequence[Package], release: OsRelease, comment: str = "") -> dict[str, Any]:
    """The SBOM of one artifact: the document DESCRIBES the artifact's package, which CONTAINS each
    installed package. `comment` says what could not be read (an SBOM with no packages must say why)."""
    root_id = "SPDXRef-Artifact"
    root: dict[str, Any] = {
        "SPDXID": root_id, "name": artifact, "downloadLocation": NOASSERTION, "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION, "licenseDeclared": NOASSERTION, "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
    }
    if artifact_sha256:
        root["checksums"] = [{"algorithm": "SHA256", "checksumValue": artifact_sha256.removeprefix("sha256:")}]
    if release.pretty_name:
        root["description"] = release.pretty_name
    items = [root]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": root_id}]
    for i, package in enumerate(packages, 1):
        pid = _spdx_id("Package", package.name, i)
        item: dict[str, Any] = {
            "SPDXID": pid, "name": package.name, "versionInfo": package.version,
            "downloadLocation": NOASSERTION, "filesAnalyzed": False, "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION, "copyrightText": NOASSERTION, "supplier": NOASSERTION,
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": purl(package, release)}],
        }
        if package.source and package.source != package.name:
            item["sourceInfo"] = f"built from the source package {package.source}"
        items.append(item)
        relationships.append({"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": pid})
    doc: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": name,
        "documentNamespace": namespace,
        "creationInfo": {"created": created, "creators": [f"Tool: {tool}"]},
        "documentDescribes": [root_id],
        "packages": items,
        "relationships": relationships,
    }
    if comment:
        doc["comment"] = comment
    return doc


def package_versions(doc: dict[str, Any]) -> dict[str, str]:
    """name -> version of the packages an SBOM lists (the artifact itself left out)."""
    return {p["name"]: p.get("versionInfo", "") for p in doc.get("packages", [])
            if p.get("SPDXID") != "SPDXRef-Artifact"}
