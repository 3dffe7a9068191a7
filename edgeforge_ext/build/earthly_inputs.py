"""What one build's Earthly containers are given, prepared from the configuration and the plan.

Kept apart from earthly.py (the container spec itself) because this is where secrets are handled:
- secret build args (proxy URLs with credentials; the Ubuntu Pro token on tags that take it as a
  build arg) go into a private `.arg` that Earthly reads with `--arg-file-path`;
- Earthly secrets (the Ubuntu Pro token from v4.10) go into files read with `--secret-file`;
- proxy URLs with credentials reach Earthly's own process through a sourced env file;
all in a 0700 directory of 0600 files, mounted read-only, removed when the build ends. The checkout's
`.arg`, the container's command line and its environment (`docker inspect`) hold none of them.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeforge_ext.argfile import private_args, quote_arg
from edgeforge_ext.build.earthly import (
    PRIVATE_ARG,
    PRIVATE_ENV,
    PRIVATE_SECRETS,
    PRIVATE_TARGET,
    BuildkitTls,
    docker_config_file,
    earthly_command,
    earthly_spec,
)
from edgeforge_ext.build.plan import EarthlyRun, Plan
from edgeforge_ext.canvos.contract import CERTS_DIR, PRO_KEY, PRO_SECRET
from edgeforge_ext.config import Config
from edgeforge_ext.engine import IMAGES_LABEL, ContainerSpec
from edgeforge_ext.errors import UsageError
from edgeforge_ext.fsutil import private_dir, write_private
from edgeforge_ext.secrets import Secret, url_secrets


@dataclass(frozen=True)
class EarthlyInputs:
    """Everything the Earthly containers of one build share."""

    image: str
    checkout: Path
    workdir: Path
    privileged: bool
    buildkit_host: str | None
    proxies: dict[str, str]  # the ones without credentials: plain environment
    tls: BuildkitTls | None
    docker_config: Path | None
    cert_mechanism: str
    earthly_build_args: str
    private_dir: Path | None = None
    secret_files: dict[str, str] = field(default_factory=dict)  # Earthly secret -> path in the container
    arg_file: str | None = None  # the private .arg inside the container
    local_args: dict[str, str] = field(default_factory=dict)  # plan.local_args: after the run's own, over .arg
    buildkit_config: str = ""  # buildkitd.toml lines (registry mirrors of build.inputs_registry)

    def command(self, run: EarthlyRun) -> list[str]:
        return earthly_command(run.target, {**run.build_args, **self.local_args}, secret_files=self.secret_files,
                               arg_file=self.arg_file)

    def spec(self, run: EarthlyRun, run_id: str, images: list[str] | None = None) -> ContainerSpec:
        """One run's container; `images` (the names it saves provider images under) go into a label, so
        a concurrent build saving the same names can tell (engine.other_builds_of)."""
        spec = earthly_spec(image=self.image, checkout=self.checkout, command=self.command(run),
                            privileged=self.privileged, buildkit_host=self.buildkit_host, proxies=self.proxies,
                            workdir=self.workdir, run_id=run_id, tls=self.tls, docker_config=self.docker_config,
                            private_dir=self.private_dir, cert_mechanism=self.cert_mechanism,
                            earthly_build_args=self.earthly_build_args, buildkit_config=self.buildkit_config)
        if images:
            spec.labels[IMAGES_LABEL] = ",".join(images)
        return spec


def buildkit_tls(config: Config) -> BuildkitTls | None:
    paths = config.earthly.buildkit_tls
    if not any(paths):
        return None
    for path in paths:
        if not Path(path).is_file():
            raise UsageError(f"BuildKit TLS file not found: {path}")
    return BuildkitTls(*(Path(p).resolve() for p in paths))


def split_proxies(config: Config) -> tuple[dict[str, str], dict[str, Secret]]:
    """(proxies for the plain environment, proxies with credentials: secrets)."""
    plain: dict[str, str] = {}
    secret: dict[str, Secret] = {}
    for key, value in config.build.proxies.items():
        if not value:
            continue
        if url_secrets(value):
            secret[key] = Secret(value, source=f"build.{key.lower()}")
        else:
            plain[key] = value
    return plain, secret


def describe(config: Config, plan: Plan) -> dict[str, Any]:
    """For `plan`: what the Earthly container will be given, without creating anything."""
    docker_config = docker_config_file()
    plain, secret = split_proxies(config)
    earthly_secrets = _earthly_secrets(config, plan)
    return {
        "image": plan.earthly_image,
        "image_from": plan.earthly_image_from,
        "docker_config": str(docker_config) if docker_config else None,
        "cert_mechanism": plan.source.contract.cert_mechanism if plan.source.contract else None,
        "tls": "mTLS" if buildkit_tls(config) else ("off" if str(plan.buildkit_host).startswith("tcp://") else None),
        "secrets": sorted(earthly_secrets),
        "private_args": list(plan.args.private),
        "proxies": sorted(plain) + sorted(f"{k} (credentials, private)" for k in secret),
        "earthly_build_args": config.earthly_build_args,
    }


def _earthly_secrets(config: Config, plan: Plan) -> dict[str, Secret]:
    contract = plan.source.contract
    if config.ubuntu_pro_key is not None and contract is not None and contract.ubuntu_pro == PRO_SECRET:
        return {PRO_KEY: config.ubuntu_pro_key}
    return {}


def plan_inputs(config: Config, plan: Plan) -> EarthlyInputs:
    """The inputs, with the container paths of the private files they will need (nothing written)."""
    _plain, secret_proxies = split_proxies(config)
    contract = plan.source.contract
    needs_private = bool(plan.args.private or _earthly_secrets(config, plan) or secret_proxies)
    return EarthlyInputs(
        image=plan.earthly_image, checkout=config.checkout_dir, workdir=config.workdir,
        privileged=plan.privileged, buildkit_host=plan.buildkit_host or None, proxies=_plain,
        tls=buildkit_tls(config), docker_config=docker_config_file(),
        cert_mechanism=contract.cert_mechanism if contract is not None else CERTS_DIR,
        earthly_build_args=config.earthly_build_args,
        private_dir=Path(PRIVATE_TARGET) if needs_private else None,  # replaced by the real one at build time
        secret_files={name: f"{PRIVATE_TARGET}/{PRIVATE_SECRETS}/{name}" for name in _earthly_secrets(config, plan)},
        arg_file=f"{PRIVATE_TARGET}/{PRIVATE_ARG}" if plan.args.private else None,
        local_args=dict(plan.local_args),
        buildkit_config=plan.buildkit_config,
    )


@contextmanager
def earthly_inputs(config: Config, plan: Plan, public_arg_text: str) -> Iterator[EarthlyInputs]:
    """The inputs for this build's Earthly runs, with the private files written into a 0700 directory
    of 0600 files that is removed afterwards."""
    inputs = plan_inputs(config, plan)
    if inputs.private_dir is None:
        yield inputs
        return
    _plain, secret_proxies = split_proxies(config)
    with private_dir("earthly") as private:  # 0700, this user's
        build_args = private_args(config, plan.args)
        if build_args:
            lines = [public_arg_text.rstrip("\n"), "# secret build args (edgeforge-ext, this build only)"]
            lines += [f"{key}={quote_arg(value.reveal())}" for key, value in build_args.items()]
            write_private(private / PRIVATE_ARG, "\n".join(lines) + "\n")
        earthly_secrets = _earthly_secrets(config, plan)
        if earthly_secrets:
            (private / PRIVATE_SECRETS).mkdir(mode=0o700)
            for name, value in earthly_secrets.items():
                # The file's bytes are the secret: Earthly hands them to `RUN --secret` unchanged.
                write_private(private / PRIVATE_SECRETS / name, value.reveal())
        if secret_proxies:
            env_lines = [f"{name}={shlex.quote(value.reveal())}" for key, value in secret_proxies.items()
                         for name in (key, key.lower())]
            write_private(private / PRIVATE_ENV, "\n".join(env_lines) + "\n")
        # The container runs as root, which reads this user's 0700/0600 files; nobody else can.
        yield replace(inputs, private_dir=private)


def configured_image(config: Config) -> str:
    """The Earthly image without a plan (preflight's probe, clean): --earthly-image, else the one the
    work directory's checkout pins in its earthly.sh, else the default."""
    from edgeforge_ext.canvos.earthly_script import parse_earthly_script
    from edgeforge_ext.settings import DEFAULT_EARTHLY_IMAGE

    if config.earthly.image:
        return str(config.earthly.image)
    try:
        text = (config.checkout_dir / "earthly.sh").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return DEFAULT_EARTHLY_IMAGE
    return parse_earthly_script(text).earthly_image or DEFAULT_EARTHLY_IMAGE
