"""`tinyopt build` end to end on the emulated board: every stage, and the report's figures."""
from __future__ import annotations

import json
import os

import pytest
from conftest import assert_one_line_error, run_tinyopt
from qemu_fixtures import require_emulator

from tinyopt import platformio


def _check_report(out, backend: str) -> dict:
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "measured"
    assert report["backend"] == backend and report["board"]["name"] == "qemu-m4"
    m = report["measure"]
    assert m["complete"] and m["device"]["backend"] == backend
    assert m["latency_us"]["median"] > 0 and m["latency_us"]["min"] <= m["latency_us"]["max"]
    assert m["cycles"]["median"] > 0
    # -icount: windows agree to the SysTick tick
    assert (m["cycles"]["max"] - m["cycles"]["min"]) / m["cycles"]["median"] < 0.01
    assert m["outputs"]["inputs"] >= 20
    assert m["outputs"]["exact_match_rate"] == 1.0
    assert m["outputs"]["top1_agreement"] == 1.0
    assert "emulated" in m["note"]
    b = report["build"]
    assert 0 < b["flash_bytes"] < b["flash_max"] and 0 < b["ram_bytes"] < b["ram_max"]
    for name in ("report.md", "project/platformio.ini", "model/model_int8.tflite"):
        assert (out / name).is_file(), name
    # -icount windows agree: a note instead of a plot of identical dots
    windows = m["latency_us"]["per_window"]
    if (max(windows) - min(windows)) / m["latency_us"]["median"] < 1e-3:
        assert not (out / "latency.png").exists()
        assert any("no latency plot" in n for n in report.get("notes", []))
    else:
        assert (out / "latency.png").is_file()
    assert "emulated cycles" in (out / "report.md").read_text()
    assert not (out / "project" / ".tinyopt" / "port").exists(), "the emulator was left running"
    return report


@pytest.mark.slow
def test_build_demo_aot_on_qemu(tmp_path, demo_model_path):
    require_emulator()
    out = tmp_path / "out"
    proc = run_tinyopt("build", "--board", "qemu-m4", "--backend", "aot", "-o", out, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _check_report(out, "aot")
    assert report["measure"]["outputs"]["source"].endswith("demo.npz")   # real validation inputs
    assert "emulated cycles (instructions)" in proc.stderr
    # the project knows where its model is after OUT was renamed into place: measure again
    meta = json.loads((out / "project" / "tinyopt_project.json").read_text())
    assert meta["model"]["source"] == str(out / "model" / "model_int8.tflite")
    proc = run_tinyopt("flash", out / "project", "--keep-running", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    try:
        proc = run_tinyopt("measure", out / "project", "--runs", "5", "--windows", "2", "--count", "5",
                           "--json", timeout=300)
    finally:
        run_tinyopt("flash", out / "project", "--stop", timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads(proc.stdout)
    assert again["outputs"]["exact_match_rate"] == 1.0 and again["outputs"]["inputs"] == 5
    assert abs(again["cycles"]["median"] - report["measure"]["cycles"]["median"]) / again["cycles"]["median"] < 0.01


@pytest.mark.slow
def test_build_demo_tflm_on_qemu(tmp_path, demo_model_path):
    if not os.environ.get("TINYOPT_TFLM_DIR"):
        pytest.skip("TINYOPT_TFLM_DIR not set: the tflm backend compiles TFLM from a local source tree")
    require_emulator()
    out = tmp_path / "out"
    proc = run_tinyopt("build", "--board", "qemu-m4", "--backend", "tflm", "-o", out, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _check_report(out, "tflm")
    assert report["measure"]["device"]["arena-bytes"] > 0


def test_build_refuses_existing_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = run_tinyopt("build", "--board", "qemu-m4", "-o", out, timeout=120)
    assert_one_line_error(proc, "already exists", "--force")


def test_real_board_stops_after_generation_with_the_way_to_build(tmp_path, demo_int8_tflite):
    if platformio.registry_reachable():
        pytest.skip("the PlatformIO registry answers here: the board's platform would be downloaded")
    from tinyopt.boards import load_board
    board = load_board("nucleo_l4r5zi")
    if platformio._platform_installed(board.platformio["platform"]):
        pytest.skip("ststm32 is installed here: the project would build")
    out = tmp_path / "out"
    proc = run_tinyopt("build", demo_int8_tflite, "--board", "nucleo_l4r5zi", "--backend", "aot",
                       "-o", out, timeout=300)
    assert_one_line_error(proc, "project is ready at", "pio run -t upload -d")
    assert str(out / "project") in proc.stderr
    assert (out / "project" / "platformio.ini").is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "generated; not built on this machine"
