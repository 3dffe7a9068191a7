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
    """pkg:deb/<distro>/<name>@<version>?arch=…&distro=<id>-<version_id> (the purl spec's deb type), and
    pkg:rpm/<distro>/<name>@<version>-<release>?arch=…&distro=…&epoch=… (its rpm type: the epoch is a
    qualifier there, not part of the version). Qualifiers in key order, as the spec's canonical form."""
    # deb: an os-release without ID is taken as Debian's. rpm has no such default vendor: no namespace then
    # (the spec's own example pkg:rpm/centerim@4.22.10-1.el6?arch=i686&epoch=1&distro=fedora-25).
    namespace = release.id or ("debian" if package.kind == "deb" else "")
    qualifiers = []
    if package.arch:
        qualifiers.append(f"arch={quote(package.arch, safe='')}")
    if release.id and release.version_id:
        qualifiers.append(f"distro={quote(release.id + '-' + release.version_id, safe='')}")
    if package.epoch:
        qualifiers.append(f"epoch={quote(package.epoch, safe='')}")
    tail = "?" + "&".join(qualifiers) if qualifiers else ""
    prefix = f"pkg:{package.kind}/{quote(namespace, safe='')}/" if namespace else f"pkg:{package.kind}/"
    return f"{prefix}{quote(package.name, safe='')}@{quote(package.version, safe='')}{tail}"


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
            "SPDXID": pid, "name": package.name, "versionInfo": package.full_version,
            "downloadLocation": NOASSERTION, "filesAnalyzed": False, "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION, "copyrightText": NOASSERTION, "supplier": NOASSERTION,
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": purl(package, release)}],
        }
        if package.source and package.source != package.name:
            item["sourceInfo"] = f"built from the source package {package.source}"
        if package.license:
            # Said, not concluded: rpm License tags are often not SPDX expressions ("GPLv2+", Fedora's
            # older short names), which licenseDeclared would have to be.
            item["licenseComments"] = f"the package database declares the license: {package.license}"
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
