"""One build in progress (what the steps read and write) and the options it runs with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeforge_ext.build.events import QuietReporter, Reporter
from edgeforge_ext.build.plan import Plan
from edgeforge_ext.build.report import Report
from edgeforge_ext.config import Config
from edgeforge_ext.secrets import Redactor


@dataclass
class BuildOptions:
    keep_user_data: bool = False
    discard_changes: bool = False
    wait: bool = True
    on_line: Callable[[str], None] | None = None
    reporter: Reporter = field(default_factory=QuietReporter)
    # Nightly hooks (nightly.py): a dated output directory instead of config.output_dir, and a callback
    # run after validate, before anything contacts a registry or starts a container (it may raise).
    output_dir: Path | None = None
    before_earthly: Callable[[Build], None] | None = None


@dataclass
class Build:
    """One build in progress: what the steps read and write."""

    config: Config
    options: BuildOptions
    output_dir: Path
    run_id: str
    report: Report = field(default_factory=Report)
    facts: Any = None
    plan: Plan | None = None
    rendered: Any = None
    user_data: bytes = b""  # the user-data the ISO must contain
    user_data_path: Path | None = None
    redactor: Redactor = field(default_factory=Redactor)
    earthly_started: float | None = None  # epoch seconds: when this build's Earthly step began

    @property
    def skip(self) -> tuple[str, ...]:
        return self.config.build.skip

    def the_plan(self) -> Plan:
        if self.plan is None:
            raise RuntimeError("no plan: the checkout step did not run")  # a bug (exit 1), not a usage error
        return self.plan
