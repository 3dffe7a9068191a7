"""What `plan` and `build` show humans: the plan before acting, the summary after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeforge_ext.build.plan import Plan
from edgeforge_ext.build.report import OS_PACK_NAME, REPORT_NAME, Report
from edgeforge_ext.config import Config


def checked_plan(config: Config) -> Plan:
    """The plan, after every check `build` runs before Earthly (same errors, same exit codes): the
    build contract of the checkout, the .arg and user-data rendered in memory, the checkout's own
    inputs (UKI keys) when the plan reads the work directory's checkout."""
    from edgeforge_ext import console
    from edgeforge_ext.build.plan import make_plan
    from edgeforge_ext.build.prebuild import check_tree, render_in_memory
    from edgeforge_ext.canvos import sources

    facts, checkout = sources.look(config)
    assert facts is not None  # look() clones when the work directory has no checkout at the ref
    if checkout is not None:
        console.note(f"reading CanvOS from the checkout in {checkout} ({facts.tag or facts.sha[:12]}; nothing fetched)")
    plan = make_plan(config, sources.to_source(facts))
    render_in_memory(config, plan)
    if checkout is not None:
        check_tree(config, plan, checkout)
    elif config.build.uki:
        console.warn("the Secure Boot keys of this UKI build are not checked: there is no checkout yet")
    return plan


def plan_json(plan: Plan, config: Config) -> dict[str, Any]:
    from edgeforge_ext.build.earthly_inputs import describe
    from edgeforge_ext.build.plan import plan_as_json

    return plan_as_json(plan, earthly_commands(plan, config), describe(config, plan))


def earthly_commands(plan: Plan, config: Config) -> list[list[str]]:
    """The Earthly command lines the build will run (no secret in them: files hold those)."""
    from edgeforge_ext.build.earthly_inputs import plan_inputs

    inputs = plan_inputs(config, plan)
    return [inputs.command(run) for run in plan.runs]


def print_plan(plan: Plan, config: Config) -> None:
    from edgeforge_ext import console
    from edgeforge_ext.build.earthly_inputs import describe

    src = plan.source
    inputs = describe(config, plan)
    image_from = {"earthly.sh": f"pinned by earthly.sh at {src.tag or src.ref}", "earthly.image": "--earthly-image",
                  "default": "edgeforge-ext's default"}.get(plan.earthly_image_from, plan.earthly_image_from)
    lines = [
        f"CanvOS      {src.url} @ {src.ref}" + (f" → {src.tag}" if src.tag and src.tag != src.ref else "")
        + (f" ({src.sha[:12]})" if src.sha else ""),
        f"PE_VERSION  {plan.pe_version}",
        f"target      {plan.target}",
        f"earthly     {plan.earthly_image} ({image_from}; "
        + ("privileged, local BuildKit" if plan.privileged else "unprivileged")
        + (f", BuildKit {plan.buildkit_host}" + (f", TLS {inputs['tls']}" if inputs["tls"] else "")
           if plan.buildkit_host else "") + ")",
        "  registry logins: " + (f"{inputs['docker_config']} mounted read-only" if inputs["docker_config"]
                                 else "none (no Docker config.json; Earthly pulls anonymously)"),
    ]
    if inputs["cert_mechanism"] and (config.build.ca_certs or inputs["cert_mechanism"] != "none"):
        how = {"certs-dir": "certs/ in the checkout", "proxy-cert-path": "PROXY_CERT_PATH (./sc.crt)",
               "none": "none"}.get(str(inputs["cert_mechanism"]), str(inputs["cert_mechanism"]))
        lines.append(f"  extra CAs: {how}" + (f"; {len(config.build.ca_certs)} from build.ca_certs"
                                              if config.build.ca_certs else ""))
    for cmd in earthly_commands(plan, config):
        lines.append("  earthly " + " ".join(cmd))
    if plan.args.values:
        lines.append(".arg        " + " ".join(f"{k}={v}" for k, v in plan.args.values.items()))
    if plan.args.private:
        lines.append(f"  private:  {', '.join(plan.args.private)} (a 0600 .arg for this build only, never in the "
                     "checkout)")
    if inputs["secrets"]:
        lines.append(f"  secrets:  {', '.join(str(s) for s in inputs['secrets'])} (Earthly --secret-file)")
    if plan.args.defaulted:
        shown = [n for n in plan.args.defaulted if n in _NOTABLE_DEFAULTS]
        rest = len(plan.args.defaulted) - len(shown)
        lines.append("  left to the Earthfile's defaults: " + ", ".join(shown)
                     + (f" and {rest} more (plan --json)" if rest else ""))
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


# Defaults worth naming in the human plan (the rest are in plan --json): the ones a user might expect
# the tool to set, and BASE_IMAGE, which the Earthfile derives from OS and version.
_NOTABLE_DEFAULTS = ("BASE_IMAGE", "UPDATE_KERNEL", "CIS_HARDENING", "FIPS_ENABLED", "IS_UKI", "EDGE_CUSTOM_CONFIG",
                     "KAIROS_VERSION", "SPECTRO_PUB_REPO", "ISO_NAME", "IMAGE_REPO")


class ConsoleReporter:
    """What a person at a terminal (or a CI log) sees of a build: the plan with -v, the preflight table
    with -v or when something failed, and the summary at the end (events.Reporter)."""

    def plan_ready(self, plan: Plan, config: Config) -> None:
        from edgeforge_ext import console

        if console.verbose():
            print_plan(plan, config)

    def preflight_done(self, checks: list[Any]) -> None:
        from edgeforge_ext import console
        from edgeforge_ext.preflight_view import print_checks

        if console.verbose() or any(c.required and not c.ok for c in checks):
            print_checks(checks)

    def build_done(self, report: Report, output_dir: Path) -> None:
        print_summary(report, output_dir)


def print_summary(report: Report, output_dir: Path) -> None:
    from edgeforge_ext import console

    console.info("")
    console.info(f"build {report.status}")
    if report.iso:
        console.info(f"ISO      {report.iso['path']}")
        console.info(f"         {report.iso['size']} bytes, sha256 {report.iso['sha256']}")
        inspect = report.iso.get("inspect")
        if inspect:
            console.info(f"         iso inspect: {'ok' if inspect.get('ok') else 'FAILED'} "
                         f"({len(inspect.get('checks', []))} checks)")
        for boot in (report.iso.get("boot") or {}).get("firmwares", []):
            console.info(f"         boot {boot['firmware']}: {'passed' if boot['passed'] else 'FAILED'} "
                         f"in {boot['seconds']} s ({boot['log']})")
    for image in report.provider_images:
        console.info(f"image    {image.ref}")
        for p in image.pushed:
            console.info(f"  pushed {p.ref}@{p.digest}")
        for ref in image.unpushed:
            console.info(f"  NOT pushed {ref}")
    from edgeforge_ext.build.os_pack import system_values

    system = system_values(report.os_pack)
    if system:
        console.info("OS layer (BYOOS) values:")
        for key, value in system.items():
            console.info(f"  system.{key}: {value}")
    console.info("steps:   " + ", ".join(f"{s.name} {s.status} {s.seconds:.1f}s" for s in report.steps))
    console.info(f"report   {output_dir / REPORT_NAME}; OS pack {output_dir / OS_PACK_NAME}")
