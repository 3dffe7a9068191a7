"""`iso boot`: boot the ISO in QEMU under each firmware in turn and watch the serial console for the
markers of a successful boot (bootmarkers.py). A blank sparse disk is attached, as the installer expects
one; nothing is installed because the machine is stopped as soon as every marker was seen.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeforge_ext.errors import ArtifactError, PreflightError, UsageError
from edgeforge_ext.iso.markers import DEFAULT_MARKERS, ConsoleWatcher, Marker
from edgeforge_ext.iso.qemuhost import INSTALL_HINT, BootHost, _drive_path, boot_host

FIRMWARES = ("bios", "uefi")
FIRMWARE_NAMES = {"bios": "BIOS (SeaBIOS)", "uefi": "UEFI (OVMF)"}
MAX_MEMORY_MIB = 2048
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class BootOptions:
    firmwares: tuple[str, ...] = FIRMWARES
    timeout: float = 900.0  # per firmware; a real installer ISO under TCG needs minutes
    memory_mib: int = MAX_MEMORY_MIB
    cpus: int = 2
    markers: tuple[Marker, ...] = DEFAULT_MARKERS
    log_dir: Path | None = None  # default: beside the ISO
    disk_gib: int = 64  # sparse: costs nothing until written
    accel: str = "auto"  # auto | kvm | tcg


@dataclass
class FirmwareResult:
    firmware: str
    passed: bool
    accel: str
    seconds: float
    log: Path
    seen: dict[str, float] = field(default_factory=dict)  # marker name -> seconds after QEMU started
    missing: list[str] = field(default_factory=list)
    failure: str = ""  # why it failed, one line
    tail: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"firmware": self.firmware, "passed": self.passed, "accel": self.accel,
                "seconds": round(self.seconds, 1), "log": str(self.log),
                "seen": {k: round(v, 1) for k, v in self.seen.items()}, "missing": self.missing,
                "failure": self.failure or None}


@dataclass
class BootReport:
    iso: Path
    accel: str
    accel_reason: str
    markers: tuple[Marker, ...]
    results: list[FirmwareResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def as_json(self) -> dict[str, Any]:
        return {"iso": str(self.iso), "passed": self.passed, "accel": self.accel, "accel_reason": self.accel_reason,
                "markers": [{"name": m.name, "pattern": m.pattern} for m in self.markers],
                "firmwares": [r.as_json() for r in self.results]}


def raise_if_failed(report: BootReport) -> None:
    """ArtifactError (exit 8) naming each firmware that failed, with its last console lines."""
    failed = [r for r in report.results if not r.passed]
    if not failed:
        return
    details: list[str] = []
    for r in failed:
        details.append(f"--- {FIRMWARE_NAMES[r.firmware]}: {r.failure}")
        details.append(f"--- last {len(r.tail)} console lines ({r.log}) ---")
        details.extend(r.tail or ["(the console printed nothing)"])
    names = " and ".join(FIRMWARE_NAMES[r.firmware] for r in failed)
    raise ArtifactError(f"the ISO {report.iso} did not boot under {names}", details=details,
                        hint="read the console logs; --timeout gives a slow host more time per firmware")


def check_options(options: BootOptions) -> None:
    unknown = [f for f in options.firmwares if f not in FIRMWARES]
    if unknown or not options.firmwares:
        raise UsageError(f"--firmware takes bios, uefi (got {', '.join(options.firmwares) or 'nothing'})")
    if not 128 <= options.memory_mib <= MAX_MEMORY_MIB:
        raise UsageError(f"--memory must be between 128 and {MAX_MEMORY_MIB} MiB")
    if options.timeout <= 0 or options.cpus < 1 or options.disk_gib < 1:
        raise UsageError("--timeout, --cpus and --disk-size must be positive")
    if options.accel not in ("auto", "kvm", "tcg"):
        raise UsageError("--accel takes auto, kvm or tcg")


def boot_iso(iso: Path, options: BootOptions, on_note: Callable[[str], None] | None = None) -> BootReport:
    """Boot under each firmware in turn; returns every result (raise_if_failed turns failures into exit 8)."""
    check_options(options)
    note = on_note or (lambda _line: None)
    if not iso.is_file():
        raise ArtifactError(f"the ISO {iso} does not exist")
    host = boot_host(options.accel)
    _require(host, options)
    note(f"QEMU: {host.summary()}")
    report = BootReport(iso, host.accel.name, host.accel.reason, options.markers)
    log_dir = options.log_dir or iso.parent
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write the console logs in {log_dir}: {exc.strerror}",
                         hint="choose another directory with --log-dir") from exc
    for firmware in options.firmwares:
        log = log_dir / f"{iso.stem}.boot-{firmware}.log"
        note(f"booting {iso.name} under {FIRMWARE_NAMES[firmware]} with {host.accel.name.upper()} "
             f"(timeout {options.timeout:.0f} s, console in {log})")
        result = _boot_once(host, iso, firmware, options, log, host.accel.name)
        if not result.passed and result.accel == "kvm" and "KVM internal error" in result.failure:
            note("KVM failed during the boot ('KVM internal error'): booting again under TCG")
            result = _boot_once(host, iso, firmware, options, log, "tcg")
        report.results.append(result)
        seen = ", ".join(f"{name} {at:.1f}s" for name, at in result.seen.items())
        note(f"{FIRMWARE_NAMES[firmware]}: {'passed' if result.passed else 'FAILED'} in {result.seconds:.1f} s"
             + (f" ({seen})" if seen else "") + ("" if result.passed else f": {result.failure}"))
    return report


def _require(host: BootHost, options: BootOptions) -> None:
    if host.qemu is None:
        raise PreflightError(f"no boot test here: {host.accel.reason}", hint=INSTALL_HINT)
    if host.accel.name == "none":
        raise PreflightError(f"no boot test here: {host.accel.reason}", hint=INSTALL_HINT)
    if "uefi" in options.firmwares and host.ovmf is None:
        raise PreflightError("no UEFI boot test here: OVMF is not installed",
                             hint=f"{INSTALL_HINT}; or --firmware bios")


def qemu_command(host: BootHost, iso: Path, firmware: str, options: BootOptions, accel: str, log: Path,
                 disk: Path, ovmf_vars: Path | None) -> list[str]:
    assert host.qemu is not None
    cmd = [str(host.qemu), "-nodefaults", "-name", f"edgeforge-boot-{firmware}",
           # graphics=off turns on SeaBIOS's serial console, so the firmware and GRUB screens reach the log.
           "-machine", "q35,graphics=off", "-accel", accel, "-cpu", "host" if accel == "kvm" else "max",
           "-smp", str(options.cpus), "-m", str(options.memory_mib), "-vga", "std", "-display", "none",
           "-monitor", "none", "-serial", f"file:{log}", "-no-reboot", "-nic", "none",
           "-drive", f"file={_drive_path(iso)},format=raw,media=cdrom,readonly=on,if=ide",
           "-drive", f"file={_drive_path(disk)},format=raw,if=virtio", "-boot", "order=d"]
    if firmware == "uefi":
        assert host.ovmf is not None and ovmf_vars is not None
        cmd += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={_drive_path(host.ovmf[0])}",
                "-drive", f"if=pflash,format=raw,unit=1,file={_drive_path(ovmf_vars)}"]
    return cmd


def _boot_once(host: BootHost, iso: Path, firmware: str, options: BootOptions, log: Path,
               accel: str) -> FirmwareResult:
    watcher = ConsoleWatcher(options.markers)
    with tempfile.TemporaryDirectory(prefix="edgeforge-boot-") as tmp:
        disk = Path(tmp) / "disk.raw"
        with disk.open("wb") as f:
            f.truncate(options.disk_gib * 1024**3)
        ovmf_vars = None
        if firmware == "uefi" and host.ovmf is not None:
            ovmf_vars = Path(tmp) / "OVMF_VARS.fd"  # the firmware writes its boot entries: a copy per boot
            shutil.copyfile(host.ovmf[1], ovmf_vars)
        log.write_bytes(b"")
        stderr_path = Path(tmp) / "qemu.err"
        cmd = qemu_command(host, iso, firmware, options, accel, log, disk, ovmf_vars)
        started = time.monotonic()
        with stderr_path.open("wb") as stderr, log.open("rb") as console:
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
            except OSError as exc:
                raise PreflightError(f"cannot start {host.qemu}: {exc.strerror}", hint=INSTALL_HINT) from exc
            try:
                outcome = _watch(proc, console, watcher, started, options.timeout)
            finally:
                _stop(proc)
            watcher.feed(console.read(), time.monotonic() - started)
        seconds = time.monotonic() - started
        errors = stderr_path.read_text(errors="replace")
    if outcome == "exited" and watcher.done and watcher.failure is None:
        outcome = "passed"
    failure = _why(outcome, watcher, options, proc.returncode, errors)
    return FirmwareResult(firmware, not failure, accel, seconds, log, dict(watcher.seen), watcher.missing, failure,
                          [] if not failure else watcher.tail())


def _watch(proc: subprocess.Popen[bytes], console: Any, watcher: ConsoleWatcher, started: float,
           timeout: float) -> str:
    """passed | failure | exited | timeout"""
    while True:
        watcher.feed(console.read(), time.monotonic() - started)
        if watcher.failure is not None:
            return "failure"
        if watcher.done:
            return "passed"
        if proc.poll() is not None:
            return "exited"
        if time.monotonic() - started > timeout:
            return "timeout"
        time.sleep(_POLL_SECONDS)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _why(outcome: str, watcher: ConsoleWatcher, options: BootOptions, code: int | None, errors: str) -> str:
    if outcome == "passed":
        return ""
    missing = ", ".join(watcher.missing)
    if outcome == "failure":
        return f"the console showed a failure ({watcher.failure})"
    if outcome == "timeout":
        return f"the console never showed {missing} within {options.timeout:.0f} s"
    lines = [line for line in errors.splitlines() if line.strip() and "warning:" not in line]
    if lines:
        return f"QEMU stopped (exit {code}) before the console showed {missing}: {lines[-1].strip()[:300]}"
    return f"the machine stopped (powered off or rebooted) before the console showed {missing}"
