"""The secrets a build gives Earthly live only in a private directory for that build: 0600 files read with
--arg-file-path / --secret-file / a sourced env file, never in argv, env or the checkout, and gone after."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from edgeforge_ext.build.earthly_inputs import earthly_inputs, plan_inputs
from edgeforge_ext.build.plan import make_plan
from tests.unit.test_contract import EARTHFILE_V49, EARTHFILE_V410
from tests.unit.test_plan_contract import cfg, source

PRO = "C1234567890pro-token"
PROXY = "http://user:pr0xy-pw@proxy:3128"


def _all_text(directory: Path) -> str:
    return "\n".join(p.read_text() for p in directory.rglob("*") if p.is_file())


def test_v4_10_ubuntu_pro_is_a_secret_file_and_proxy_credentials_an_env_file(tmp_path):
    config = cfg(tmp_path, {"EDGEFORGE_UBUNTU_PRO_KEY": PRO}, build__https_proxy=PROXY)
    plan = make_plan(config, source(EARTHFILE_V410))
    with earthly_inputs(config, plan, "ARCH=amd64\n") as inputs:
        private = inputs.private_dir
        assert private is not None and stat.S_IMODE(private.stat().st_mode) == 0o700
        secret = private / "secrets" / "UBUNTU_PRO_KEY"
        assert secret.read_text() == PRO and stat.S_IMODE(secret.stat().st_mode) == 0o600
        sourced = subprocess.run(["sh", "-c", '. "$1"; printf %s "$HTTPS_PROXY|$https_proxy"', "sh",
                                  str(private / "env")], capture_output=True, text=True, check=True).stdout
        assert sourced == f"{PROXY}|{PROXY}"
        # HTTPS_PROXY is a private build arg too, so Earthly reads the whole .arg from the private copy.
        assert "HTTPS_PROXY=http://user:pr0xy-pw@proxy:3128" in (private / "arg").read_text()
        spec = inputs.spec(plan.runs[0], "r1")
        assert "--secret-file" in spec.command
        assert "UBUNTU_PRO_KEY=/run/edgeforge/secrets/UBUNTU_PRO_KEY" in spec.command
        shown = " ".join([*spec.command, *(spec.entrypoint or []), *spec.env.values()])
        assert PRO not in shown and "pr0xy-pw" not in shown
    assert not private.exists()


def test_v4_9_ubuntu_pro_is_a_private_build_arg(tmp_path):
    config = cfg(tmp_path, {"EDGEFORGE_UBUNTU_PRO_KEY": PRO})
    plan = make_plan(config, source(EARTHFILE_V49))
    public = "ARCH=amd64\nCUSTOM_TAG=demo\n"
    with earthly_inputs(config, plan, public) as inputs:
        assert inputs.private_dir is not None
        arg = (inputs.private_dir / "arg").read_text()
        assert arg.startswith(public) and f"UBUNTU_PRO_KEY={PRO}\n" in arg
        assert inputs.arg_file == "/run/edgeforge/arg" and inputs.secret_files == {}
        assert inputs.command(plan.runs[0])[0] == "--arg-file-path=/run/edgeforge/arg"
    assert PRO not in public


def test_no_private_directory_without_secrets_and_plan_shows_the_same_command(tmp_path):
    config = cfg(tmp_path)
    plan = make_plan(config, source())
    with earthly_inputs(config, plan, "") as inputs:
        assert inputs.private_dir is None and inputs.arg_file is None
        assert inputs.command(plan.runs[0]) == plan_inputs(config, plan).command(plan.runs[0])


def test_plan_names_the_same_paths_without_writing_anything(tmp_path):
    config = cfg(tmp_path, {"EDGEFORGE_UBUNTU_PRO_KEY": PRO})
    plan = make_plan(config, source(EARTHFILE_V410))
    planned = plan_inputs(config, plan)
    assert planned.secret_files == {"UBUNTU_PRO_KEY": "/run/edgeforge/secrets/UBUNTU_PRO_KEY"}
    with earthly_inputs(config, plan, "") as inputs:
        assert inputs.command(plan.runs[0]) == planned.command(plan.runs[0])
