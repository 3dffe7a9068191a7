"""What `plan` and `build` show humans: the plan before acting, the summary after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeforge_ext.config import Config
from edgeforge_ext.plan import Plan, Source
from edgeforge_ext.report import OS_PACK_NAME, REPORT_NAME, Report


def plan_source(config: Config) -> Source:
    """The CanvOS facts without side effects: the existing checkout, else ls-remote of the ref."""
    from edgeforge_ext import canvos

    url, ref = str(config["canvos.url"]), str(config["canvos.ref"])
    path = config.checkout_dir
    if (path / ".git").exists():
        facts = canvos.read_facts(path, url=url, ref=ref)
        if ref in ("latest", facts.tag, facts.sha) or facts.sha.startswith(ref):
            from edgeforge_ext.pipeline import source_from_facts

            return source_from_facts(facts)
    # No checkout yet: read the facts from a throw-away clone, so the user's work directory is untouched.
    import tempfile

    from edgeforge_ext.pipeline import source_from_facts

    with tempfile.TemporaryDirectory(prefix="edgeforge-plan-") as tmp:
        return source_from_facts(canvos.checkout(url, ref, Path(tmp) / "CanvOS"))


def earthly_commands(plan: Plan) -> list[list[str]]:
    from edgeforge_ext.earthly import earthly_command

    return [earthly_command(r.target, dict(r.build_args), privileged=plan.privileged) for r in plan.runs]


def print_plan(plan: Plan, config: Config) -> None:
    from edgeforge_ext import console

    src = plan.source
    lines = [
        f"CanvOS      {src.url} @ {src.ref}" + (f" → {src.tag}" if src.tag and src.tag != src.ref else "")
        + (f" ({src.sha[:12]})" if src.sha else ""),
        f"PE_VERSION  {plan.pe_version}",
        f"target      {plan.target}",
        f"earthly     {plan.earthly_image} ({'privileged, local BuildKit' if plan.privileged else 'unprivileged'}"
        + (f", BuildKit {plan.buildkit_host}" if plan.buildkit_host else "") + ")",
    ]
    for cmd in earthly_commands(plan):
        lines.append("  earthly " + " ".join(cmd))
    if plan.iso_file:
        lines.append(f"ISO         {config.output_dir / plan.iso_file}")
    for image in plan.provider_images:
        lines.append(f"image       {image.ref}")
        if plan.push_enabled and "push" not in plan.skip:
            for ref in image.push_refs:
                lines.append(f"  push →    {ref}")
    if not plan.push_enabled:
        lines.append("push        disabled")
    if plan.skip:
        lines.append(f"skip        {', '.join(plan.skip)}")
    for line in lines:
        console.info(line)
    for w in plan.warnings:
        console.warn(w)


def print_summary(report: Report, output_dir: Path) -> None:
    from edgeforge_ext import console

    console.info("")
    console.info(f"build {report.status}")
    if report.iso:
        console.info(f"ISO      {report.iso['path']}")
        console.info(f"         {report.iso['size']} bytes, sha256 {report.iso['sha256']}")
    for image in report.provider_images:
        console.info(f"image    {image.ref}")
        for p in image.pushed:
            console.info(f"  pushed {p.ref}@{p.digest}")
        for ref in image.unpushed:
            console.info(f"  NOT pushed {ref}")
    system: dict[str, Any] = report.os_pack.get("options", {}).get("system", {})
    if system:
        console.info("OS layer (BYOOS) values:")
        for key, value in system.items():
            console.info(f"  system.{key}: {value}")
    console.info("steps:   " + ", ".join(f"{s.name} {s.status} {s.seconds:.1f}s" for s in report.steps))
    console.info(f"report   {output_dir / REPORT_NAME}; OS pack {output_dir / OS_PACK_NAME}")
