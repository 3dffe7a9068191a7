"""Package databases as they sit in a root filesystem: dpkg's status file, and /etc/os-release (which
distribution the packages belong to, for their package URLs). Pure: bytes in, packages out. rpm's
database is read in attest/rpmdb.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Package:
    name: str
    version: str  # dpkg's Version (with its epoch, "1:2.3-4"); rpm's version-release, without the epoch
    arch: str = ""
    source: str = ""  # the source package, when dpkg names one
    kind: str = "deb"  # the purl type: "deb" or "rpm"
    epoch: str = ""  # rpm's Epoch, when the package has one (dpkg keeps its epoch in the version)
    license: str = ""  # rpm's License tag, as the package declares it (dpkg's status names none)

    @property
    def full_version(self) -> str:
        """The version as the package manager prints it: rpm's [epoch:]version-release."""
        return f"{self.epoch}:{self.version}" if self.epoch else self.version


@dataclass(frozen=True)
class OsRelease:
    id: str = ""
    version_id: str = ""
    pretty_name: str = ""


def _paragraphs(text: str) -> list[dict[str, str]]:
    """RFC 822-style paragraphs (deb822): continuation lines start with a space and are skipped here (only
    single-line fields are read: Package, Version, Architecture, Status, Source)."""
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                out.append(current)
                current = {}
            continue
        if line[0] in " \t" or ":" not in line:
            continue
        key, _, value = line.partition(":")
        current[key.strip().lower()] = value.strip()
    if current:
        out.append(current)
    return out


def dpkg_status(data: bytes) -> list[Package]:
    """The installed packages of /var/lib/dpkg/status, in file order. "Installed" is dpkg's own word,
    the third of the Status field: removed packages whose configuration files stay (`deinstall ok
    config-files`) and half-installed ones are not on the system as software."""
    packages = []
    for para in _paragraphs(data.decode("utf-8", errors="replace")):
        status = para.get("status", "").split()
        if len(status) != 3 or status[2] != "installed" or not para.get("package"):
            continue
        source = para.get("source", "").split(" ")[0]
        packages.append(Package(para["package"], para.get("version", ""), para.get("architecture", ""), source))
    return packages


def os_release(data: bytes | None) -> OsRelease:
    values: dict[str, str] = {}
    for line in (data or b"").decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"').strip("'")
    return OsRelease(values.get("ID", ""), values.get("VERSION_ID", ""), values.get("PRETTY_NAME", ""))
