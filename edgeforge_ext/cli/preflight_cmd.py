"""`edgeforge-ext preflight`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from edgeforge_ext.cli.common import BUILD_FLAGS, load, wants_json, with_flags

_FLAGS = tuple(s for s in BUILD_FLAGS if s.key in ("build.arch", "build.k8s_versions", "earthly.image",
                                                  "earthly.buildkit_host", "earthly.buildkit_tls_ca",
                                                  "earthly.buildkit_tls_cert", "earthly.buildkit_tls_key"))


def preflight(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON on stdout")] = False,
    *,
    flags: dict[str, Any],
    password_stdin: bool,
) -> None:
    """Check the build host: architecture, CPUs, memory, free disk (build dir and Docker data root),
    Docker reachable and >= 18.09, privileged containers, git. All checks run and are reported
    together; exit 3 when a required one fails. Thresholds: preflight.min_cpus, preflight.min_memory_gb,
    preflight.min_disk_gb (e.g. EDGEFORGE_PREFLIGHT_MIN_CPUS=2)."""
    from edgeforge_ext import console
    from edgeforge_ext.preflight import raise_if_failed, run_preflight
    from edgeforge_ext.preflight_view import print_checks

    config = load(ctx, flags)
    from edgeforge_ext.build.plan import check_earthly_mode

    check_earthly_mode(config)  # earthly.privileged = false without a BuildKit host cannot build (exit 6)
    checks = run_preflight(config, provider_images=max(1, len(config.build.k8s_versions)))
    if wants_json(ctx, json_out):
        console.print_json({"ok": all(c.ok or not c.required for c in checks),
                            "checks": [c.as_json() for c in checks]})
    else:
        print_checks(checks)
    raise_if_failed(checks)


def register(app: typer.Typer) -> None:
    app.command("preflight")(with_flags(_FLAGS, password_stdin=False)(preflight))
