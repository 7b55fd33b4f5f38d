"""The real boards' CPU classes under emulation, through the same PlatformIO + serial path as
any board: the demo and the MLPerf keyword-spotting model on qemu-m0 (Cortex-M0, ARMv6-M: the
no-DSP path of the RP2040), qemu-m4, qemu-m7 (teensy41's core), qemu-m33 (DSP extension) and
qemu-m55 (Helium), byte-exact against the TFLM runtime; where the memory does not hold the
model (the micro:bit's 16 KB), the fit check refuses it before anything is built."""
from __future__ import annotations

import os

import pytest
from conftest import assert_one_line_error, mlperf_model, run_tinyopt
from qemu_fixtures import require_emulator

from tinyopt import platformio
from tinyopt.boards import load_board
from tinyopt.flash import flash, stop
from tinyopt.measure import measure

CORES = ["qemu-m0", "qemu-m4", "qemu-m7", "qemu-m33", "qemu-m55"]


def _run(model, board_name: str, backend: str, tmp_path):
    from tinyopt.codegen.generate import generate
    require_emulator()
    board = load_board(board_name)
    project = generate(model, board, backend=backend, out=tmp_path / f"{board_name}-{backend}")
    build = platformio.build(project.path, board)
    assert build.flash_bytes <= board.flash_bytes and build.ram_bytes <= board.ram_bytes
    result = flash(project.path, keep_running=True)
    try:
        m = measure(project.path, board, port=result.port, runs=3, windows=2, count=8, window_s=0.0)
    finally:
        stop(project.path)
    return m


def _check(m, backend: str) -> None:
    assert m.device["backend"] == backend
    assert m.outputs["inputs"] == 8 and m.outputs["exact_match_rate"] == 1.0
    assert m.cycles["median"] > 0 and m.cycles["max"] - m.cycles["min"] <= 0.001 * m.cycles["median"] + 64


@pytest.mark.slow
@pytest.mark.parametrize("core", CORES)
def test_demo_aot_byte_exact_on_every_core(core, demo_int8_tflite, tmp_path):
    _check(_run(demo_int8_tflite, core, "aot", tmp_path), "aot")


@pytest.mark.slow
@pytest.mark.parametrize("core", [c for c in CORES if c != "qemu-m0"])
def test_keyword_spotting_aot_byte_exact_where_it_fits(core, tmp_path):
    _check(_run(mlperf_model("kws_ref_model.tflite"), core, "aot", tmp_path), "aot")


def test_keyword_spotting_is_refused_on_the_microbit_before_building(tmp_path):
    model = mlperf_model("kws_ref_model.tflite")
    proc = run_tinyopt("generate", model, "--board", "qemu-m0", "--backend", "aot", "-o", tmp_path / "p",
                       timeout=300)
    assert_one_line_error(proc, "does not fit", "RAM")
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
@pytest.mark.tflm
@pytest.mark.parametrize("core", CORES)
def test_demo_tflm_byte_exact_on_every_core(core, demo_int8_tflite, tmp_path):
    if not os.environ.get("TINYOPT_TFLM_DIR"):
        pytest.skip("TINYOPT_TFLM_DIR not set: the tflm backend compiles a local TFLM source tree")
    if core == "qemu-m0":
        # TFLM's interpreter and arena do not leave the demo room in 16 KB of RAM
        proc = run_tinyopt("generate", demo_int8_tflite, "--board", core, "--backend", "tflm",
                           "-o", tmp_path / "p", timeout=300)
        assert_one_line_error(proc, "does not fit")
        return
    _check(_run(demo_int8_tflite, core, "tflm", tmp_path), "tflm")
