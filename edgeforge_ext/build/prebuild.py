"""The checks a build runs before Earthly starts, shared by `build` and `plan` so both fail the same way.

`plan` has no side effects, so it renders in memory; `build` runs the same functions in its render and
validate steps. Checks of the host (preflight) and of the registry (registry-check) are not here:
they are about where and to where a build runs, not about what it builds.
"""

from __future__ import annotations

from pathlib import Path

from edgeforge_ext.build.plan import Plan
from edgeforge_ext.config import Config
from edgeforge_ext.errors import UsageError, ValidationError
from edgeforge_ext.render import Rendered, render_all


def render_in_memory(config: Config, plan: Plan) -> Rendered:
    """user-data and .arg as the render step would write them; ValidationError (exit 5) lists every
    problem of both."""
    return render_all(config, pe_version=plan.pe_version, k8s_versions=plan.source.k8s_versions,
                      contract=plan.source.contract)


def check_tree(config: Config, plan: Plan, checkout: Path) -> list[str]:
    """What the build needs from the checkout that the commit does not hold: the Secure Boot keys of
    a UKI build (made on the host by `earthly.sh +uki-genkey` with keys.sh). Returns warnings."""
    warnings: list[str] = []
    contract = plan.source.contract
    if config.build.uki and contract is not None and plan.iso_name:
        missing = [p for p in contract.uki_inputs() if not (checkout / p).exists()]
        if missing:
            raise ValidationError(
                "a UKI build needs the Secure Boot keys in the checkout, and some are missing",
                details=[f"{checkout / p} (the Earthfile's {contract_target()} copies it)" for p in missing],
                hint="make them with CanvOS's `./earthly.sh +uki-genkey` (it runs keys.sh on the host) or copy "
                "your own keys there; see CanvOS sb-private-ca/howto.md")
    for path in ca_cert_files(config):
        if not path.is_file():
            raise UsageError(f"CA certificate not found: {path} (build.ca_certs)")
    return warnings


def contract_target() -> str:
    from edgeforge_ext.canvos.contract import UKI_ISO_TARGET

    return f"+{UKI_ISO_TARGET}"


def ca_cert_files(config: Config) -> list[Path]:
    """build.ca_certs (load_config made relative paths from a config file relative to it)."""
    return [Path(p).expanduser().resolve() for p in config.build.ca_certs]


OWN_CERT_PREFIX = "edgeforge-"
# First line of an sc.crt the tool wrote (text before a PEM block is ignored by OpenSSL): a stale one is
# removed, a user's own sc.crt never.
SC_CRT_MARK = b"# written by edgeforge-ext from build.ca_certs\n"


def _ours(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(SC_CRT_MARK)) == SC_CRT_MARK
    except OSError:
        return False


def install_ca_certs(config: Config, plan: Plan, checkout: Path) -> list[Path]:
    """Put build.ca_certs where the checked-out tag's build reads extra CAs (its earthly.sh says how):
    `certs/edgeforge-<name>` (CanvOS v4.5+), or `sc.crt` with PROXY_CERT_PATH (v4.4.x). Files of an
    earlier build that are no longer configured are removed; the user's own certs/ files are not touched."""
    from edgeforge_ext.canvos.contract import CERTS_DIR, PROXY_CERT_PATH
    from edgeforge_ext.fsutil import atomic_write

    files = ca_cert_files(config)
    mechanism = plan.source.contract.cert_mechanism if plan.source.contract else CERTS_DIR
    written: list[Path] = []
    wanted: set[Path] = set()
    try:
        if mechanism == CERTS_DIR and (checkout / "certs").is_dir():
            for src in files:
                dest = checkout / "certs" / f"{OWN_CERT_PREFIX}{src.stem}.crt"
                atomic_write(dest, src.read_bytes())
                wanted.add(dest)
                written.append(dest)
        elif mechanism == PROXY_CERT_PATH and files:
            dest = checkout / "sc.crt"
            if dest.exists() and not _ours(dest):
                raise UsageError(f"{dest} is not the tool's: build.ca_certs would replace it",
                                 hint="add that certificate to build.ca_certs (--ca-cert) and remove the file")
            atomic_write(dest, SC_CRT_MARK + b"".join(src.read_bytes().rstrip(b"\n") + b"\n" for src in files))
            wanted.add(dest)
            written.append(dest)
        elif files:
            raise UsageError("build.ca_certs: this CanvOS checkout has no way to trust extra CA certificates "
                             "(its earthly.sh mounts neither certs/ nor PROXY_CERT_PATH)")
        stale = [*(checkout / "certs").glob(f"{OWN_CERT_PREFIX}*")] if (checkout / "certs").is_dir() else []
        stale += [checkout / "sc.crt"] if mechanism == PROXY_CERT_PATH and _ours(checkout / "sc.crt") else []
        for path in stale:
            if path not in wanted and path.is_file():
                path.unlink()
    except OSError as exc:
        raise UsageError(f"cannot install the CA certificates into {checkout}: {exc.strerror} "
                         f"({exc.filename})") from None
    return written
