"""What the attest tests share: a dpkg status file with known packages, and tiny root file systems."""

from __future__ import annotations

# Three installed packages (one with a Source and a multi-line Description), and one removed whose
# configuration files stay: dpkg says it is not installed, so no SBOM may list it.
DPKG_STATUS = b"""Package: base-files
Status: install ok installed
Priority: required
Architecture: amd64
Version: 12ubuntu4.6
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.2-0ubuntu1.18
Description: Secure Sockets Layer toolkit - shared libraries

Package: old-tool
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0ubuntu0.22.04
"""
INSTALLED = {"base-files": "12ubuntu4.6", "libssl3": "3.0.2-0ubuntu1.18", "tzdata": "2024a-0ubuntu0.22.04"}
OS_RELEASE = b'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n'


def spdx_problems(doc: dict) -> list[str]:  # type: ignore[type-arg]
    """What the SPDX 2.3 validator of spdx-tools finds wrong with a JSON document (empty: valid)."""
    import json
    import tempfile

    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    with tempfile.NamedTemporaryFile("w", suffix=".spdx.json", delete=False) as f:
        json.dump(doc, f)
    return [m.validation_message for m in validate_full_spdx_document(parse_file(f.name))]
