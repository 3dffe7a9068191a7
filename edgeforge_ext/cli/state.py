"""The global options of one invocation (kept apart from common.py so `--help` imports nothing heavy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class State:
    config_path: Path | None = None
    workdir: Path | None = None
    json: bool = False
    verbose: bool = False
    debug: bool = False
