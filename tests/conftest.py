"""Shared test fixtures: the CLI as a subprocess, the MLPerf Tiny models from ../shared,
and the demo model (trained once per user cache)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tinyopt  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
from tinyopt.paths import PROJECT_ROOT

MLPERF_DIR = Path(os.environ.get("TINYOPT_MLPERF_DIR", PROJECT_ROOT.parent / "shared" / "models" / "mlperf_tiny"))


def mlperf_model(name: str) -> Path:
    """A reference model from ../shared/models/mlperf_tiny, or skip the test with the reason."""
    path = MLPERF_DIR / name
    if not path.exists():
        pytest.skip(f"MLPerf Tiny model {name} not found in {MLPERF_DIR} (set TINYOPT_MLPERF_DIR)")
    return path


def run_tinyopt(*args, timeout=600, check=False, env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run `python -m tinyopt ARGS` as a user would, capturing stdout and stderr."""
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "tinyopt", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"tinyopt {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str, code: int = 2) -> None:
    """The contract for bad input: exit code, one line on stderr with a hint, no traceback."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == code, f"exit {proc.returncode}, stderr:\n{proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    assert lines[0].startswith("error:"), lines[0]
    for frag in fragments:
        assert frag.lower() in lines[0].lower(), f"{frag!r} not in {lines[0]!r}"


@pytest.fixture(scope="session")
def demo_model_path() -> Path:
    from tinyopt.keras_io import demo_model_path
    return demo_model_path()


@pytest.fixture(scope="session")
def demo_data_path(demo_model_path) -> Path:
    from tinyopt.keras_io import demo_data_path
    return demo_data_path()


@pytest.fixture(scope="session")
def demo_int8_tflite(tmp_path_factory, demo_model_path) -> Path:
    """The demo converted to int8 once per test session."""
    out = tmp_path_factory.mktemp("demo_int8") / "out"
    run_tinyopt("convert", "-o", out, check=True)
    return out / "model_int8.tflite"
