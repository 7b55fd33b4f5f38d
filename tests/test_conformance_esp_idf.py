"""ESP-IDF's own CMake configure on the generated ESP32 / ESP32-S3 projects, run the way
platform-espressif32 6.9.0 runs it (scripts/conformance_esp_idf.py). Needs the ESP-IDF 5.3.1,
esp-tflite-micro and esp-nn trees and ESP-IDF's Python venv (TINYOPT_IDF_DIR,
TINYOPT_IDF_PYTHON, TINYOPT_TFLM_DIR, TINYOPT_ESP_NN_DIR; see scripts/conformance_trees.md);
skips with the reason when they are absent."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from tiny_models import tiny_cnn

from tinyopt.paths import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "conformance_esp_idf.py"
TREE_VARS = ("TINYOPT_IDF_DIR", "TINYOPT_IDF_PYTHON", "TINYOPT_TFLM_DIR", "TINYOPT_ESP_NN_DIR")


def _module():
    spec = importlib.util.spec_from_file_location("conformance_esp_idf", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conformance = _module()


@pytest.mark.parametrize("backend", ["tflm", "aot"])
@pytest.mark.parametrize("board", ["esp32", "esp32s3"])
def test_esp_idf_configures_the_generated_project(board, backend, tmp_path):
    missing = conformance.missing_trees(backend)
    if missing:
        pytest.skip(missing)
    status, reason = conformance.check(board, backend, tiny_cnn(), tmp_path)
    if status == "skipped":
        pytest.skip(reason)
    assert status == "configured", f"{reason} (log: {tmp_path}/{board}-{backend}.cmake.log)"
    assert "\n" not in reason


def test_cli_skips_without_trees(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in TREE_VARS}
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "none.tflite")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.strip().startswith("skipped: TINYOPT_IDF_DIR not set"), proc.stdout
