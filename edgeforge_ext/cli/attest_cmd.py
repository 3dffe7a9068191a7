"""`keygen` and `verify`: the signing key, and checking what a build signed (thin over the attest package)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgeforge_ext.cli.common import BUILD_FLAGS, load, wants_json, with_flags

# Credentials for the registries holding the images (as `images verify` takes them).
_REGISTRY_FLAGS = tuple(f for f in BUILD_FLAGS if f.key.startswith("registry."))


def keygen(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", metavar="PREFIX",
                                         help="write PREFIX.key (private, mode 0600) and PREFIX.pub")],
    json_out: Annotated[bool, typer.Option("--json", help="print the paths and key id as JSON")] = False,
) -> None:
    """Make a signing key pair for `build --attest`: ECDSA P-256 in PEM, PREFIX.key (mode 0600; encrypted
    when EDGEFORGE_ATTEST_KEY_PASSWORD is set) and PREFIX.pub (give it to whoever verifies: `edgeforge-ext
    verify --key PREFIX.pub`, or `cosign verify --key PREFIX.pub`). Existing files are never overwritten."""
    import os

    from edgeforge_ext import console
    from edgeforge_ext.attest.keys import load_verifier, write_key_pair
    from edgeforge_ext.secrets import remember, secret_from_env
    from edgeforge_ext.settings import ENV_ATTEST_KEY_PASSWORD

    password = secret_from_env(ENV_ATTEST_KEY_PASSWORD, dict(os.environ))
    remember(password)
    key, pub = write_key_pair(output, password)
    keyid = load_verifier(pub).keyid
    if wants_json(ctx, json_out):
        console.print_json({"private_key": str(key), "public_key": str(pub), "key_id": keyid,
                            "encrypted": password is not None})
        return
    state = "encrypted" if password else f"NOT encrypted: set {ENV_ATTEST_KEY_PASSWORD} to encrypt it"
    console.info(f"wrote {key} (mode 0600, {state})")
    console.info(f"wrote {pub} (key id {keyid})")


def verify(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(metavar="ISO|IMAGE...", show_default=False,
                                                 help="ISO files (their evidence beside them) or image references")],
    key: Annotated[Path, typer.Option("--key", metavar="PUB", help="the public key (PREFIX.pub of keygen)")],
    json_out: Annotated[bool, typer.Option("--json", help="print every result as JSON")] = False,
    *,
    flags: dict[str, Any],
    password_stdin: bool,
) -> None:
    """Check what `build --attest` signed: for an ISO, its provenance and SBOM envelopes beside it (the
    signature, the ISO's sha256 as their subject, the readable copies); for an image, its cosign signature
    (.sig tag) and its provenance and SBOM attestations (.att tag). Exit 8 naming what failed."""
    from edgeforge_ext import console
    from edgeforge_ext.attest.keys import load_verifier
    from edgeforge_ext.attest.verify import Result, verify_image, verify_iso
    from edgeforge_ext.errors import ArtifactError
    from edgeforge_ext.registry.client import ANONYMOUS, Clients, credentials_for
    from edgeforge_ext.registry.images import parse_ref

    verifier = load_verifier(key)
    results: list[Result] = []
    images = [t for t in targets if not _is_file(t)]
    config = load(ctx, flags, password_stdin=password_stdin) if images else None
    with Clients(lambda host: credentials_for(config, host) if config else ANONYMOUS) as clients:
        for target in targets:
            if _is_file(target):
                results.append(verify_iso(Path(target), verifier))
            else:
                ref = parse_ref(target)
                results.append(verify_image(clients.get(ref.domain), ref, verifier))
    failed = [r for r in results if not r.ok]
    if wants_json(ctx, json_out):
        console.print_json({"key_id": verifier.keyid, "results": [r.as_json() for r in results],
                            "failed": len(failed)})
    else:
        for r in results:
            what = ", ".join(r.checked)
            console.info(f"{'ok' if r.ok else 'FAILED'}  {r.target}" + (f"  ({r.digest})" if r.digest else "")
                         + (f": {what}" if r.ok and what else ""))
            for problem in r.problems:
                console.info(f"    {problem}")
    if failed:
        raise ArtifactError(f"{len(failed)} of {len(results)} did not verify: " + ", ".join(r.target for r in failed),
                            details=[f"{r.target}: {p}" for r in failed for p in r.problems])
    console.info(f"all {len(results)} verified with key {verifier.keyid}")


def _is_file(target: str) -> bool:
    """An ISO is a path (it exists, or it names a .iso); anything else is an image reference."""
    return Path(target).exists() or target.endswith(".iso")


def register(app: typer.Typer) -> None:
    app.command("keygen")(keygen)
    app.command("verify")(with_flags(_REGISTRY_FLAGS)(verify))
