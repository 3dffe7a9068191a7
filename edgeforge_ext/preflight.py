"""Host checks, all run and reported together.

Probing (`probe_host`) is separate from judging (`evaluate`), so the thresholds are tested against
simulated hosts and the probes against the real machine.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeforge_ext.config import Config
from edgeforge_ext.errors import PRIVILEGED_WAYS_OUT, PreflightError

GB = 1024**3

PROVIDER_IMAGE_GB = 5  # the upper end of 2-5 GB per provider image
_MACHINE_TO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    required: bool
    detail: str
    hint: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HostFacts:
    """What the probes measured. None means "could not measure", with the reason in `notes`."""

    machine: str
    cpus: int | None
    memory_bytes: int | None
    build_dir: Path
    build_dir_free: int | None
    docker_error: str | None = None
    server_version: str | None = None
    api_version: str | None = None
    docker_root_dir: str | None = None
    docker_root_free: int | None = None
    privileged_probe_ran: bool = False
    privileged_allowed: bool = False
    privileged_detail: str = ""
    git_version: str | None = None
    boot_test: str | None = None  # how a boot test would run here (qemuhost.BootHost.summary), None: cannot
    boot_test_why: str = ""
    notes: dict[str, str] = field(default_factory=dict)


def run_preflight(config: Config, provider_images: int = 1) -> list[Check]:
    return evaluate(probe_host(config), config, provider_images=provider_images)


# Failures of the container engine itself: exit 6 (ARCHITECTURE.md), for every command alike.
ENGINE_CHECKS = ("docker", "docker_version", "privileged")


def raise_if_failed(checks: list[Check]) -> None:
    """PreflightError (exit 3) listing every failed required check; EngineError (exit 6) when the
    container engine is among them (no daemon, too old, privileged containers refused)."""
    failed = [c for c in checks if c.required and not c.ok]
    if not failed:
        return
    from edgeforge_ext.errors import EngineError

    error = EngineError if any(c.name in ENGINE_CHECKS for c in failed) else PreflightError
    raise error(
        f"preflight failed: {', '.join(c.name for c in failed)}",
        details=[f"{c.name}: {c.detail}" + (f" — {c.hint}" if c.hint else "") for c in failed],
    )


# --- probes -------------------------------------------------------------------------------------

def probe_host(config: Config) -> HostFacts:
    build_dir = _existing_parent(config.workdir)
    facts = HostFacts(
        machine=platform.machine(),
        cpus=_cpu_count(),
        memory_bytes=_memory_bytes(),
        build_dir=config.workdir,
        build_dir_free=_free_bytes(build_dir),
        git_version=_git_version(),
    )
    _probe_docker(facts, config)
    _probe_boot_test(facts)
    return facts


def _probe_boot_test(facts: HostFacts) -> None:
    from edgeforge_ext.iso.qemuhost import boot_host

    host = boot_host()
    if host.usable:
        facts.boot_test = host.summary()
    else:
        facts.boot_test_why = host.summary() if host.qemu is None else host.accel.reason


def _cpu_count() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _existing_parent(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _git_version() -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run([git, "--version"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().removeprefix("git version ")


def _probe_docker(facts: HostFacts, config: Config) -> None:
    from edgeforge_ext import engine
    from edgeforge_ext.errors import EngineError

    try:
        client = engine.client(timeout=30)
    except EngineError as exc:
        facts.docker_error = exc.message
        return
    try:
        info = engine.daemon_info(client)
        facts.server_version = info.server_version
        facts.api_version = info.api_version
        facts.docker_root_dir = info.docker_root_dir
        local_daemon = not os.environ.get("DOCKER_HOST", "unix://").startswith(("tcp://", "ssh://"))
        if local_daemon and Path(info.docker_root_dir).exists():
            facts.docker_root_free = _free_bytes(Path(info.docker_root_dir))
        else:
            facts.notes["docker_root"] = "the daemon is remote; its data root cannot be measured from here"
        if not _privileged_needed(config):
            # No container for a check that cannot matter: Earthly runs unprivileged.
            facts.privileged_detail = ("not probed: Earthly runs unprivileged (remote BuildKit or "
                                       "earthly.privileged=false)")
            return
        from edgeforge_ext.build.earthly_inputs import configured_image

        earthly_image = configured_image(config)
        image = _probe_image(client, earthly_image)
        if image is None:
            facts.privileged_detail = ("could not probe: no local image to run (the Earthly image "
                                       f"{earthly_image} is not pulled yet, and nothing is pulled "
                                       "by preflight)")
        else:
            result = engine.probe_privileged(client, image)
            facts.privileged_probe_ran = result.ran
            facts.privileged_allowed = result.allowed
            facts.privileged_detail = result.detail + ("" if image == earthly_image
                                                       else f" (probed with {image})")
    finally:
        client.close()


def _privileged_needed(config: Config) -> bool:
    # earthly.privileged = false without a BuildKit host is refused before preflight (plan.check_earthly_mode).
    return not config.earthly.buildkit_host


def _probe_image(client: Any, earthly_image: str) -> str | None:
    """The Earthly image when present, else any local image: a privileged no-op needs no particular one."""
    from edgeforge_ext import engine

    if engine.image_present(client, earthly_image):
        return earthly_image
    images = sorted(client.images.list(), key=lambda i: i.attrs.get("Size", 0))
    for image in images:
        if image.tags:
            return str(image.tags[0])
    return None


# --- judging ------------------------------------------------------------------------------------

def evaluate(facts: HostFacts, config: Config, provider_images: int = 1) -> list[Check]:
    """Every check, in a fixed order; `required` says whether a failure stops the build."""
    min_cpus = int(config.preflight.min_cpus)
    min_mem = int(config.preflight.min_memory_gb)
    min_disk = int(config.preflight.min_disk_gb) + PROVIDER_IMAGE_GB * max(0, provider_images - 1)
    privileged_needed = _privileged_needed(config)
    return [
        _arch(facts, str(config.build.arch)),
        _cpu(facts, min_cpus),
        _memory(facts, min_mem),
        _disk(facts, min_disk, provider_images),
        *_docker(facts),
        _privileged(facts, privileged_needed),
        _git(facts),
        _boot_test(facts),
    ]


def _arch(facts: HostFacts, want: str) -> Check:
    have = _MACHINE_TO_ARCH.get(facts.machine.lower(), facts.machine)
    if have == want:
        return Check("arch", True, True, f"host {facts.machine} builds {want}")
    hint = "build on an AMD64 (x86_64) Linux host, or point DOCKER_HOST at one (e.g. ssh://buildhost)"
    if want == "arm64":
        hint = "arm64 builds need an arm64 host (or set --arch amd64)"
    return Check("arch", False, True, f"host is {facts.machine} ({have}) but the build targets {want}", hint)


def _cpu(facts: HostFacts, minimum: int) -> Check:
    if facts.cpus is None:
        return Check("cpu", False, True, "could not count CPUs", "check /proc/cpuinfo")
    ok = facts.cpus >= minimum
    return Check("cpu", ok, True, f"{facts.cpus} CPUs (minimum {minimum})",
                 "" if ok else "use a bigger build host, or lower preflight.min_cpus "
                 "(EDGEFORGE_PREFLIGHT_MIN_CPUS) at the cost of a slower build")


def _memory(facts: HostFacts, minimum_gb: int) -> Check:
    if facts.memory_bytes is None:
        return Check("memory", False, True, "could not read the memory size", "check /proc/meminfo")
    gb = facts.memory_bytes / GB
    # MemTotal excludes memory the kernel reserves, so an "8 GB" host reports a little less.
    ok = facts.memory_bytes >= minimum_gb * GB * 0.95
    return Check("memory", ok, True, f"{gb:.1f} GB memory (minimum {minimum_gb} GB)",
                 "" if ok else "add memory or lower preflight.min_memory_gb")


def _disk(facts: HostFacts, minimum_gb: int, provider_images: int) -> Check:
    why = f"minimum {minimum_gb} GB" + (f" for {provider_images} provider images" if provider_images > 1 else "")
    problems: list[str] = []
    parts: list[str] = []
    for label, path, free in (("build dir", str(facts.build_dir), facts.build_dir_free),
                              ("Docker data root", facts.docker_root_dir, facts.docker_root_free)):
        if path is None:
            continue
        if free is None:
            parts.append(f"{label} {path}: not measured"
                         + (f" ({facts.notes['docker_root']})" if label != "build dir" and
                            "docker_root" in facts.notes else ""))
            continue
        parts.append(f"{label} {path}: {free / GB:.1f} GB free")
        if free < minimum_gb * GB:
            problems.append(label)
    ok = not problems
    hint = "" if ok else (f"free space on {' and '.join(problems)} (docker system prune, or --workdir on a bigger "
                          "disk), or lower preflight.min_disk_gb")
    return Check("disk", ok, True, "; ".join(parts) + f" ({why})", hint)


def _docker(facts: HostFacts) -> list[Check]:
    if facts.docker_error is not None:
        return [
            Check("docker", False, True, facts.docker_error,
                  "install Docker >= 18.09 and start it, or set DOCKER_HOST"),
            Check("docker_version", False, True, "not checked: the daemon is unreachable"),
        ]
    from edgeforge_ext.engine import MIN_API_VERSION, MIN_SERVER_VERSION, _version_tuple

    reachable = Check("docker", True, True, f"daemon reachable ({os.environ.get('DOCKER_HOST') or 'local socket'})")
    server = _version_tuple(facts.server_version or "0")
    api = _version_tuple(facts.api_version or "0")
    ok = server[:2] >= MIN_SERVER_VERSION and api[:2] >= _version_tuple(MIN_API_VERSION)[:2]
    minimum = "{}.{:02d}".format(*MIN_SERVER_VERSION)  # Docker's own spelling: 18.09
    version = Check("docker_version", ok, True,
                    f"server {facts.server_version}, API {facts.api_version} "
                    f"(minimum {minimum}, API {MIN_API_VERSION})",
                    "" if ok else f"upgrade Docker Engine to {minimum} or newer")
    return [reachable, version]


def _privileged(facts: HostFacts, needed: bool) -> Check:
    hint = PRIVILEGED_WAYS_OUT
    if facts.docker_error is not None:
        return Check("privileged", False, needed, "not checked: the daemon is unreachable", hint if needed else "")
    if not facts.privileged_probe_ran:
        # Unknown is not a failure: nothing is pulled by preflight; the build step finds out.
        return Check("privileged", True, False, facts.privileged_detail or "not probed", "")
    if facts.privileged_allowed:
        return Check("privileged", True, needed, facts.privileged_detail)
    detail = facts.privileged_detail
    if not needed:
        detail += " (not needed: Earthly runs unprivileged against a remote BuildKit)"
    return Check("privileged", False, needed, detail, hint if needed else "")


def _boot_test(facts: HostFacts) -> Check:
    """Not required: only `build --boot-test` and `iso boot` need QEMU."""
    from edgeforge_ext.iso.qemuhost import INSTALL_HINT

    if facts.boot_test is None:
        return Check("boot_test", False, False, f"no ISO boot test here: {facts.boot_test_why or 'not probed'}",
                     INSTALL_HINT)
    return Check("boot_test", True, False, facts.boot_test)


def _git(facts: HostFacts) -> Check:
    if facts.git_version is None:
        return Check("git", False, True, "git is not installed", "apt-get install git (or your OS's package)")
    return Check("git", True, True, f"git {facts.git_version}")
