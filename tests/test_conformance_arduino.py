"""The Arduino Cortex-M boards' generated projects compile against the real cores with the
flags their PlatformIO builders pass (scripts/conformance_arduino.py). Needs the core trees
named by TINYOPT_ARDUINO_MBED_DIR, TINYOPT_TEENSY_CORES_DIR, TINYOPT_STM32_CORE_DIR,
TINYOPT_CMSIS_DIR (and TINYOPT_TFLM_DIR, TINYOPT_CMSIS_NN_DIR, TINYOPT_TFLM_ARDUINO_DIR for
the tflm backend); each case skips with the reason when its trees are absent."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tinyopt.boards import load_board

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "conformance_arduino.py"
_spec = importlib.util.spec_from_file_location("conformance_arduino", _SCRIPT)
conformance = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conformance)


@pytest.fixture(scope="module")
def model():
    from tiny_models import tiny_cnn
    return tiny_cnn()


@pytest.mark.parametrize("backend", ["tflm", "aot"])
@pytest.mark.parametrize("board", conformance.ARDUINO_BOARDS)
def test_project_compiles_against_the_real_core(board, backend, tmp_path, request):
    declared = "compiled" if backend in load_board(board).backends else "unsupported"
    early = conformance.precheck(board, backend)      # no model needed to know this
    if early and early[0] == "skipped":
        pytest.skip(early[1])
    if early:
        assert early[0] == declared, early[1]
        return
    status, reason = conformance.check(board, backend, request.getfixturevalue("model"), tmp_path)
    if status == "skipped":
        pytest.skip(reason)
    assert status == declared, reason
    assert "\n" not in reason


def test_every_arduino_cortex_m_board_has_flags():
    from tinyopt.boards import all_boards
    arduino = {b.name for b in all_boards() if b.platformio.get("framework") == "arduino"}
    assert arduino == set(conformance.ARDUINO_BOARDS) == set(conformance.BOARDS)


def test_missing_tree_skips_naming_its_variable(monkeypatch):
    for var in ("TINYOPT_ARDUINO_MBED_DIR", "TINYOPT_ARDUINO_MBED_RP2040_DIR"):
        monkeypatch.delenv(var, raising=False)
    status, reason = conformance.precheck("nano33ble", "aot")
    assert status == "skipped" and "TINYOPT_ARDUINO_MBED_DIR" in reason


def test_cmsis_nn_board_skips_a_tflm_tree_without_cmsis_nn_kernels(monkeypatch, tmp_path):
    # esp-tflite-micro has no kernels/cmsis_nn/: the generated tinyopt_tflm.py stops the build
    # there, so the check must not compile the reference kernels instead and pass
    (tmp_path / "teensy4").mkdir()
    (tmp_path / "teensy4" / "Arduino.h").touch()
    micro = tmp_path / "tflm" / "tensorflow" / "lite" / "micro"
    micro.mkdir(parents=True)
    (micro / "micro_interpreter.h").touch()
    monkeypatch.setenv("TINYOPT_TEENSY_CORES_DIR", str(tmp_path))
    monkeypatch.setenv("TINYOPT_TFLM_DIR", str(tmp_path / "tflm"))
    status, reason = conformance.precheck("teensy41", "tflm")
    assert status == "skipped" and "kernels/cmsis_nn" in reason, reason
