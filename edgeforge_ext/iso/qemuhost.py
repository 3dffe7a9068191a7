"""Can this host boot an ISO under QEMU, and how: QEMU and OVMF found, and KVM or TCG.

KVM is used only after a real boot proves it: on some hosts /dev/kvm exists yet guests die with "KVM
internal error", or run far slower than plain emulation (nested virtualisation). The probe boots a
512-byte boot sector that writes a line to the serial port and leaves through QEMU's isa-debug-exit
device; KVM must finish it within KVM_PROBE_SECONDS, or TCG (software emulation) is used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

QEMU = "qemu-system-x86_64"
# (code, vars) pairs as distributions install them: Debian/Ubuntu (ovmf), Fedora/RHEL (edk2-ovmf), Arch
# (edk2-ovmf), openSUSE (qemu-ovmf-x86_64).
OVMF_PAIRS = (
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
    ("/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"),
    ("/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd"),
    ("/usr/share/qemu/ovmf-x86_64-code.bin", "/usr/share/qemu/ovmf-x86_64-vars.bin"),
)
INSTALL_HINT = "install QEMU and OVMF: apt-get install qemu-system-x86 ovmf (dnf install qemu-kvm edk2-ovmf)"
KVM_PROBE_SECONDS = 2.0
_PROBE_MARKER = b"edgeforge-probe-ok"
_PROBE_EXIT = 33  # isa-debug-exit turns the guest's `out 0xf4, 0x10` into exit status (0x10 << 1) | 1


@dataclass(frozen=True)
class Accel:
    name: str  # kvm | tcg | none (QEMU cannot boot even the probe)
    reason: str


@dataclass(frozen=True)
class BootHost:
    qemu: Path | None
    version: str
    ovmf: tuple[Path, Path] | None
    accel: Accel

    @property
    def usable(self) -> bool:
        return self.qemu is not None and self.accel.name != "none"

    def summary(self) -> str:
        if self.qemu is None:
            return f"{QEMU} not found"
        firmware = "SeaBIOS" + (f" and OVMF ({self.ovmf[0]})" if self.ovmf else "; no OVMF (UEFI boots cannot run)")
        return f"{self.version}, {firmware}; boots run under {self.accel.name.upper()}: {self.accel.reason}"


_probed: dict[tuple[str, str], BootHost] = {}


def boot_host(accel: str = "auto") -> BootHost:
    """Found once per process and accelerator choice (auto | kvm | tcg)."""
    qemu_path = shutil.which(QEMU)
    key = (qemu_path or "", accel)
    if key not in _probed:
        _probed[key] = _find(Path(qemu_path) if qemu_path else None, accel)
    return _probed[key]


def find_ovmf() -> tuple[Path, Path] | None:
    for code, variables in OVMF_PAIRS:
        if Path(code).is_file() and Path(variables).is_file():
            return Path(code), Path(variables)
    return None


def _find(qemu: Path | None, accel: str) -> BootHost:
    if qemu is None:
        return BootHost(None, "", find_ovmf(), Accel("none", f"{QEMU} is not installed"))
    return BootHost(qemu, _version(qemu), find_ovmf(), choose_accel(qemu, accel))


def _version(qemu: Path) -> str:
    try:
        out = subprocess.run([str(qemu), "--version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return "QEMU (version unknown)"
    first = out.stdout.splitlines()[0] if out.stdout else ""
    return first.replace("QEMU emulator version", "QEMU").strip() or "QEMU (version unknown)"


def choose_accel(qemu: Path, wanted: str = "auto") -> Accel:
    """KVM when a probe boot under it succeeds in time, else TCG when QEMU boots the probe at all."""
    kvm_why = ""
    if wanted in ("auto", "kvm"):
        kvm_why = _kvm_unavailable()
        if not kvm_why:
            ok, seconds, why = probe(qemu, "kvm", KVM_PROBE_SECONDS)
            if ok:
                return Accel("kvm", f"KVM proven by a probe boot ({seconds:.2f} s)")
            kvm_why = f"a probe boot under KVM failed: {why}"
        if wanted == "kvm":
            return Accel("none", f"KVM was asked for but {kvm_why}")
    ok, seconds, why = probe(qemu, "tcg", 30.0)
    if not ok:
        return Accel("none", f"QEMU could not boot a probe image under TCG either: {why}")
    reason = f"software emulation (probe boot {seconds:.2f} s)"
    return Accel("tcg", f"{reason}; KVM not used: {kvm_why}" if kvm_why else reason)


def _kvm_unavailable() -> str:
    if not Path("/dev/kvm").exists():
        return "/dev/kvm does not exist"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "no access to /dev/kvm (add the user to the kvm group)"
    return ""


def probe(qemu: Path, accel: str, deadline: float) -> tuple[bool, float, str]:
    """Boot the probe sector under `accel`: (worked, seconds, why not)."""
    with tempfile.TemporaryDirectory(prefix="edgeforge-probe-") as tmp:
        image, serial = Path(tmp) / "probe.img", Path(tmp) / "serial.log"
        image.write_bytes(probe_sector())
        cmd = [str(qemu), "-nodefaults", "-machine", "pc", "-accel", accel, "-cpu", "host" if accel == "kvm" else "max",
               "-m", "16", "-display", "none", "-monitor", "none", "-no-reboot", "-serial", f"file:{serial}",
               "-drive", f"file={_drive_path(image)},format=raw,if=ide", "-boot", "c",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
        started = time.monotonic()
        try:
            done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=deadline,
                                  check=False)
        except subprocess.TimeoutExpired:
            return False, time.monotonic() - started, f"it did not finish within {deadline:.1f} s"
        except OSError as exc:
            return False, 0.0, f"cannot run {qemu}: {exc.strerror}"
        seconds = time.monotonic() - started
        printed = serial.read_bytes() if serial.exists() else b""
        if done.returncode == _PROBE_EXIT and _PROBE_MARKER in printed:
            return True, seconds, ""
        errors = [line for line in done.stderr.splitlines() if line.strip() and "warning:" not in line]
        internal = next((line for line in errors if "KVM internal error" in line), None)
        why = internal or (errors[-1] if errors else f"exit status {done.returncode}, no probe output")
        return False, seconds, why.strip()[:300]


def probe_sector() -> bytes:
    """A BIOS boot sector: print the probe marker on COM1, then exit QEMU through isa-debug-exit."""
    code = bytes.fromhex(
        "fc"          # cld
        "31c0"        # xor ax, ax
        "8ed8"        # mov ds, ax
        "baf803"      # mov dx, 0x3f8        (COM1)
        "be1a7c"      # mov si, 0x7c1a       (the message, right after this code)
        "ac"          # next: lodsb
        "84c0"        # test al, al
        "7403"        # jz done
        "ee"          # out dx, al
        "ebf8"        # jmp next
        "b010"        # done: mov al, 0x10
        "e6f4"        # out 0xf4, al          (isa-debug-exit)
        "f4"          # hlt
        "ebfd"        # jmp hlt
    )
    body = code + _PROBE_MARKER + b"\r\n\0"
    return body + b"\0" * (510 - len(body)) + b"\x55\xaa"


def _drive_path(path: Path) -> str:
    """QEMU's -drive takes comma-separated options: a comma in a path is written twice."""
    return str(path).replace(",", ",,")
