"""The build contract of one CanvOS commit: what its Earthfile, earthly.sh and .arg.template say a
build needs. The checked-out tree is the source of truth; nothing here is a list kept by hand.

`read_contract` takes a reader of the commit's files (canvos.py supplies it) and returns a frozen
`BuildContract`; `plan`, `render` and the Earthly step ask it, so drift in a new CanvOS tag shows in
`plan`, not in a failed build an hour later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edgeforge_ext.canvos.earthfile import Earthfile, copy_sources, parse_earthfile
from edgeforge_ext.canvos.earthly_script import (
    CERTS_DIR,
    NO_CERTS,
    PROXY_CERT_PATH,
    EarthlyScript,
    HostStep,
    parse_earthly_script,
)

# How the Ubuntu Pro token reaches the build (earthly.sh / Earthfile at the tag).
PRO_SECRET = "secret"  # v4.10+: UBUNTU_PRO_ATTACH=true and `RUN --secret UBUNTU_PRO_KEY`
PRO_BUILD_ARG = "build-arg"  # up to v4.9.x: `ARG UBUNTU_PRO_KEY`, `pro attach $UBUNTU_PRO_KEY`
PRO_KEY = "UBUNTU_PRO_KEY"
PRO_TOGGLE = "UBUNTU_PRO_ATTACH"
UKI_ISO_TARGET = "build-uki-iso"


@dataclass(frozen=True)
class BuildContract:
    earthfile: Earthfile
    script: EarthlyScript | None  # None: the tree has no earthly.sh (a fork that dropped it)
    template_keys: tuple[str, ...]  # KEYs the .arg.template sets, commented options included
    dockerfile: str | None = None  # ./Dockerfile, which `FROM DOCKERFILE .` builds (its FROM is a build input)

    @property
    def earthly_image(self) -> str | None:
        return self.script.earthly_image if self.script else None

    @property
    def cert_mechanism(self) -> str:
        return self.script.cert_mechanism if self.script else NO_CERTS

    @property
    def docker_config(self) -> str:
        return self.script.docker_config if self.script else "none"

    @property
    def host_steps(self) -> tuple[HostStep, ...]:
        return self.script.host_steps if self.script else ()

    @property
    def ubuntu_pro(self) -> str | None:
        """How this tag takes the Ubuntu Pro token, or None when it cannot use one."""
        if PRO_KEY in self.earthfile.run_secrets and PRO_TOGGLE in self.earthfile.declared:
            return PRO_SECRET
        if PRO_KEY in self.earthfile.declared:
            return PRO_BUILD_ARG
        return None

    def secret_toggle(self, name: str) -> tuple[str, str] | None:
        """(ARG, value) under which earthly.sh passes the Earthly secret `name`, when it says."""
        for secret in self.script.secrets if self.script else ():
            if secret.name == name and secret.condition and len(secret.condition.args) == 1:
                arg, _default, _op, value = secret.condition.args[0]
                return arg, value
        return (PRO_TOGGLE, "true") if name == PRO_KEY else None

    def uki_inputs(self) -> tuple[str, ...]:
        """Local paths the UKI ISO target copies from the checkout (the Secure Boot keys that
        `earthly.sh +uki-genkey` makes with keys.sh on the host)."""
        return copy_sources(self.earthfile, UKI_ISO_TARGET)

    def as_json(self) -> dict[str, Any]:
        script = self.script
        return {
            "earthfile_version": self.earthfile.version,
            "args": {"declared": sorted(self.earthfile.declared - _builtins()),
                     "defaults": self.earthfile.defaults(),
                     "derived_in_if": list(self.earthfile.derived())},
            "targets": list(self.earthfile.targets),
            "run_secrets": list(self.earthfile.run_secrets),
            "privileged_run_targets": list(self.earthfile.privileged_runs),
            "earthly_sh": None if script is None else {
                "earthly_image": script.earthly_image,
                "earthly_version": script.earthly_version,
                "cert_mechanism": script.cert_mechanism,
                "docker_config": script.docker_config,
                "secrets": [s.name for s in script.secrets],
                "host_steps": [{"summary": h.summary, "line": h.line, "condition": h.condition.text,
                                "target": h.condition.target} for h in script.host_steps],
                "warnings": list(script.warnings),
            },
            "ubuntu_pro": self.ubuntu_pro,
        }


def _builtins() -> frozenset[str]:
    from edgeforge_ext.canvos.earthfile import BUILTIN_ARGS

    return BUILTIN_ARGS


def template_keys(text: str) -> tuple[str, ...]:
    """KEYs of an .arg.template, set ones and commented-out options (`# IS_UKI=true`)."""
    import re

    keys = re.findall(r"^\s*#?\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE)
    return tuple(dict.fromkeys(keys))


def read_contract(read: Callable[[str], str | None]) -> BuildContract:
    """The contract of a commit whose files `read(name)` returns (None when absent)."""
    earthfile = parse_earthfile(read("Earthfile") or "")
    script_text = read("earthly.sh")
    return BuildContract(
        earthfile=earthfile,
        script=parse_earthly_script(script_text) if script_text is not None else None,
        template_keys=template_keys(read(".arg.template") or ""),
        dockerfile=read("Dockerfile"),
    )


def applying_host_steps(contract: BuildContract, target: str,
                        values: Mapping[str, str]) -> tuple[list[HostStep], list[HostStep]]:
    """The host steps earthly.sh would run for this Earthly target and these build args: (certain,
    undecidable). `values` are the effective build args (.arg and command line, Earthfile defaults
    filled in)."""
    certain: list[HostStep] = []
    unknown: list[HostStep] = []
    for step in contract.host_steps:
        holds = step.condition.holds(target, values)
        if holds is True:
            certain.append(step)
        elif holds is None:
            unknown.append(step)
    return certain, unknown


__all__ = [
    "CERTS_DIR",
    "NO_CERTS",
    "PROXY_CERT_PATH",
    "PRO_BUILD_ARG",
    "PRO_KEY",
    "PRO_SECRET",
    "PRO_TOGGLE",
    "BuildContract",
    "applying_host_steps",
    "read_contract",
    "template_keys",
]
