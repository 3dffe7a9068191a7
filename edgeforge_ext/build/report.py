"""The build report (edgeforge-report.json) and the OS-pack values file (os-pack.yaml)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeforge_ext.errors import UsageError
from edgeforge_ext.fsutil import atomic_write
from edgeforge_ext.secrets import scrub

REPORT_NAME = "edgeforge-report.json"
OS_PACK_NAME = "os-pack.yaml"
LOG_NAME = "edgeforge-build.log"


@dataclass
class StepRecord:
    name: str
    status: str  # ok | skipped | failed | not-run
    seconds: float = 0.0


@dataclass
class PushRecord:
    ref: str
    digest: str
    attested: bool = False  # signed and attested (.sig/.att), verified, then tagged (build --attest)


@dataclass
class ImageRecord:
    ref: str
    k8s_version: str
    push_targets: list[str]
    pushed: list[PushRecord] = field(default_factory=list)
    image_id: str | None = None  # the image this build's Earthly run produced (collect), pushed by id

    @property
    def unpushed(self) -> list[str]:
        done = {p.ref for p in self.pushed}
        return [t for t in self.push_targets if t not in done]


@dataclass
class Report:
    status: str = "running"
    canvos: dict[str, Any] = field(default_factory=dict)
    # The Earthly image that ran: its name, where the name came from (the tag's earthly.sh, earthly.image)
    # and its id in the daemon; None until the earthly step starts.
    earthly: dict[str, Any] | None = None
    iso: dict[str, Any] | None = None
    provider_images: list[ImageRecord] = field(default_factory=list)
    os_pack: dict[str, Any] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    variant: str | None = None
    log: str | None = None
    error: str | None = None
    # build --attest: the signing key's id, the build's provenance facts (hashes, never content) and the
    # ISO's evidence files; None without --attest.
    attestation: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "canvos": self.canvos,
            "earthly": self.earthly,
            "iso": self.iso,
            "provider_images": [
                {"ref": i.ref, "k8s_version": i.k8s_version, "push_targets": i.push_targets,
                 "image_id": i.image_id,
                 "pushed": [{"ref": p.ref, "digest": p.digest, "attested": p.attested} for p in i.pushed]}
                for i in self.provider_images
            ],
            "os_pack": self.os_pack,
            "steps": [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 2)} for s in self.steps],
            # Free text (messages that may quote a config value): known secrets masked.
            "warnings": [scrub(w) for w in self.warnings],
            "skipped": self.skipped,
            "variant": self.variant,
            "log": self.log,
            "error": scrub(self.error) if self.error else self.error,
            "attestation": self.attestation,
        }


def write_report(report: Report, output_dir: Path) -> Path:
    path = output_dir / REPORT_NAME
    atomic_write(path, (json.dumps(report.as_json(), indent=2) + "\n").encode())
    return path


def read_report(output_dir: Path) -> Report:
    path = output_dir / REPORT_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(f"no build report at {path}",
                         hint="run edgeforge-ext build first; for a variant's dated builds pass --variant NAME, "
                         "or --output DIR for another output directory") from exc
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the build report {path}: {exc}") from exc
    return report_from_json(data)


def report_from_json(data: dict[str, Any]) -> Report:
    """A report as edgeforge-report.json (or a summary's `report`) holds it."""
    report = Report(
        status=data.get("status", "unknown"),
        canvos=data.get("canvos", {}),
        earthly=data.get("earthly"),
        iso=data.get("iso"),
        os_pack=data.get("os_pack", {}),
        warnings=list(data.get("warnings", [])),
        skipped=list(data.get("skipped", [])),
        variant=data.get("variant"),
        log=data.get("log"),
        error=data.get("error"),
        attestation=data.get("attestation"),
    )
    report.steps = [StepRecord(s["name"], s["status"], float(s.get("seconds", 0))) for s in data.get("steps", [])]
    report.provider_images = [
        ImageRecord(i["ref"], i.get("k8s_version", ""), list(i.get("push_targets", [])),
                    [PushRecord(p["ref"], p["digest"], bool(p.get("attested"))) for p in i.get("pushed", [])],
                    i.get("image_id"))
        for i in data.get("provider_images", [])
    ]
    return report


def write_os_pack(text: str, output_dir: Path) -> Path:
    """os-pack.yaml: the BYOOS values exactly as the tag's earthly.sh prints them (paste as is)."""
    header = ("# Palette BYOOS (edge-native-byoi) OS layer values, written by edgeforge-ext as CanvOS's\n"
              "# earthly.sh prints them. Paste into the OS layer of the cluster profile.\n")
    path = output_dir / OS_PACK_NAME
    atomic_write(path, (header + text).encode())
    return path
