"""What the core tells whoever shows a build: the reporter it is given. The core never imports a view;
the views (build_view, preflight_view) implement this, and `QuietReporter` shows nothing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from edgeforge_ext.build.plan import Plan
    from edgeforge_ext.build.report import Report
    from edgeforge_ext.config import Config
    from edgeforge_ext.preflight import Check


class Reporter(Protocol):
    def plan_ready(self, plan: Plan, config: Config) -> None:
        """The build's plan, before anything is built (shown with -v)."""

    def preflight_done(self, checks: list[Check]) -> None:
        """Every host check, before a failure stops the build."""

    def build_done(self, report: Report, output_dir: Path) -> None:
        """A build finished successfully: its report and where its outputs are."""


class QuietReporter:
    """Shows nothing (library use, tests that only look at the report)."""

    def plan_ready(self, plan: Plan, config: Config) -> None:
        pass

    def preflight_done(self, checks: list[Check]) -> None:
        pass

    def build_done(self, report: Report, output_dir: Path) -> None:
        pass
