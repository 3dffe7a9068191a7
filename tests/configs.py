"""One way for tests to make a Config, as `load_config` builds it from its layers.

`make_config(tmp_path, env=..., toml=..., base=..., **flags)`: flags by dotted key, or with `__` for the
dot (`build__k8s_versions=["1.32.3"]`); `toml` is written to tmp_path/edgeforge.toml and read as the
config file; `base` holds a test module's own defaults (flags override them). The `make_config` fixture
(conftest.py) is the same, bound to the test's tmp_path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeforge_ext.config import Config, load_config


def make_config(tmp_path: Path, env: Mapping[str, str] | None = None, toml: str | None = None, *,
                base: Mapping[str, Any] | None = None, **flags: Any) -> Config:
    given: dict[str, Any] = {"workdir": str(tmp_path / "wd")}  # never the repository's own .edgeforge
    given.update(base or {})
    given.update({k.replace("__", "."): v for k, v in flags.items()})
    path = None
    if toml is not None:
        path = tmp_path / "edgeforge.toml"
        path.write_text(toml)
    return load_config(path, env=dict(env or {}), flags=given, cwd=tmp_path)
