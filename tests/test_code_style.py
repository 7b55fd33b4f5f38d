"""The project's own habits, checked with the suite (and so by CI): ruff over the Python, and
clang-format over the C/C++ the templates ship and render (scripts/check_c_format.py)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinyopt.paths import PROJECT_ROOT


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(found).exists():
        pytest.skip(f"{name} not installed (pip install -e '.[test]' installs it)")
    return found


def test_ruff_is_clean():
    proc = subprocess.run([_tool("ruff"), "check", "--output-format", "concise", "tinyopt", "tests", "scripts",
                           "boards"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def test_c_and_cpp_follow_the_clang_format_style():
    _tool("clang-format")
    proc = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "check_c_format.py")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 not formatted" in proc.stdout
