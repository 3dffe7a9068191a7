"""scripts/check-architecture passes on the package and fails, naming each, on the violations it is for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check-architecture"


def run(package: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(SCRIPT)] + ([str(package)] if package else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_the_package_keeps_the_rules():
    done = run()
    assert done.returncode == 0, done.stdout
    assert "no cycle, no violation" in done.stdout


def test_each_violation_is_named(tmp_path):
    pkg = tmp_path / "edgeforge_ext"
    pkg.mkdir()
    files = {
        "__init__.py": "",
        "a.py": "from edgeforge_ext import b\n",
        "b.py": "def f():\n    from edgeforge_ext import a  # a cycle through a lazy import\n",
        "plan.py": "import docker\n\ndef g(config):\n    return config['build.arch']\n\n\n"
                   "def h(config, part):\n    return config[f'earthly.buildkit_tls_{part}']\n",
        "pipeline.py": "from edgeforge_ext import build_view\n",
        "build_view.py": "",
        "engine.py": "import docker\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    done = run(pkg)
    assert done.returncode == 1
    out = done.stdout
    assert "import cycle: a -> b" in out
    assert "plan.py: imports docker, which only engine may" in out
    assert "plan.py:4: reads config['build.arch'] by its string key" in out
    assert "plan.py:8: reads config[f'earthly.buildkit_tls_{part}'] by its string key" in out
    assert "the core module pipeline imports the view build_view" in out
    assert "engine.py" not in out
