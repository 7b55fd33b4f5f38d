"""Per-layer profiling on the device: the `layers N%` extension against the real emulated
firmware (qemu-m4), malformed and truncated answers, the report fields and pictures, and the
plain inference figures, which the profiling code never touches."""
from __future__ import annotations

import json
import os

import pytest
from conftest import assert_one_line_error, mlperf_model, run_tinyopt
from qemu_fixtures import Relay, require_emulator

from tinyopt import platformio
from tinyopt.boards import load_board
from tinyopt.errors import LinkError
from tinyopt.flash import flash, stop
from tinyopt.measure import measure
from tinyopt.serial_link import DeviceLink


def _project(tmp_path, model, backend="aot", board="qemu-m4"):
    from tinyopt.codegen.generate import generate
    require_emulator()
    b = load_board(board)
    project = generate(model, b, backend=backend, out=tmp_path / f"p-{backend}")
    platformio.build(project.path, b)
    return project.path


@pytest.fixture(scope="module")
def running(tmp_path_factory, demo_int8_tflite):
    project = _project(tmp_path_factory.mktemp("layers"), demo_int8_tflite)
    result = flash(project, keep_running=True)
    yield project, result.port
    stop(project)


def test_layers_answer_from_the_real_firmware(running):
    _, port = running
    with DeviceLink(port, timeout=10) as link:
        link.handshake()
        plain = link.infer(4, 1, timeout=30).cycles_per_inference
        timing = link.layers(3, timeout=60)
        again = link.infer(4, 1, timeout=30).cycles_per_inference
    assert timing.runs == 3 and len(timing.steps) > 3
    assert [s[0] for s in timing.steps] == list(range(len(timing.steps)))
    assert timing.steps[0][2] == "CONV_2D" and timing.steps[-1][2] == "SOFTMAX"
    assert timing.overhead_pairs > 0 and timing.overhead_cycles > 0
    assert all(s[3] > 0 for s in timing.steps)
    # the plain path is the same code before and after profiling: identical to the timer's
    # tick. The window starts at an arbitrary phase of the SysTick tick (the idle wait for
    # the command is host time), so the 4-run average may move by one tick / 4 runs.
    tick = load_board("qemu-m4").emulator["instructions_per_tick"]
    assert abs(plain - again) <= tick / 4, (plain, again)


def test_per_layer_sum_matches_the_whole_inference_within_2_percent(running):
    project, port = running
    m = measure(project, port=port, runs=5, windows=2, count=3, window_s=0.0, layers=3)
    a = m.layer_agreement
    assert a["unit"] == "cycles" and abs(a["ratio"] - 1.0) < 0.02, a
    rows = m.layers
    assert {"index", "op", "macs", "cycles", "us", "cycles_per_mac", "share", "layer"} <= set(rows[0])
    assert abs(sum(r["share"] for r in rows) - 1.0) < 1e-3
    conv = [r for r in rows if r["op"] == "CONV_2D"]
    assert conv and all(r["macs"] > 0 and r["cycles_per_mac"] > 0 for r in conv)
    assert any(r["layer"] == "conv1" for r in rows)      # Keras names recovered
    assert m.layer_overhead["cycles_per_event_pair"] > 0


@pytest.mark.parametrize("damage", ["drop-total", "drop-row", "garble-row"])
def test_malformed_or_truncated_profile_is_a_clear_error(running, damage):
    _, port = running
    state = {"dropped": False}

    def mangle(line: bytes) -> bytes:
        text = line.strip()
        if damage == "drop-total" and text.startswith(b"m-layers-total-"):
            return b""
        if damage == "drop-row" and text.startswith(b"m-layer-[2,") and not state["dropped"]:
            state["dropped"] = True
            return b""
        if damage == "garble-row" and text.startswith(b"m-layer-[1,"):
            return text.replace(b"CONV_2D", b"CONV_2D,extra") + b"\r\n"
        return line

    relay = Relay(port, mangle)
    try:
        with DeviceLink(relay.port, timeout=5) as link:
            link.handshake()
            with pytest.raises(LinkError, match="layer profile") as err:
                link.layers(2, timeout=30)
        assert err.value.hint and "flash" in err.value.hint
    finally:
        relay.close()


def test_layers_command_refuses_bad_counts(running):
    _, port = running
    with DeviceLink(port, timeout=10) as link:
        link.handshake()
        for bad in ("layers 0", "layers 1001", "layers x", "layers 2 3"):
            lines = link.command(bad, allow_error=True)
            assert any(ln.startswith("m-error-[layers takes one number") for ln in lines), (bad, lines)
        assert "m-name-dut-[tinyopt]" in link.command("name")


@pytest.mark.slow
def test_build_with_layers_writes_the_table_and_both_pictures(tmp_path, demo_model_path):
    require_emulator()
    out = tmp_path / "out"
    proc = run_tinyopt("build", "--board", "qemu-m4", "--backend", "aot", "--layers", "2", "-o", out, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "per layer" in proc.stderr and "of the whole inference" in proc.stderr
    report = json.loads((out / "report.json").read_text())
    layers = report["measure"]["layers"]
    assert layers and all({"index", "op", "macs", "cycles"} <= set(r) for r in layers)
    assert (out / "layers.png").is_file() and (out / "memory.png").is_file()
    md = (out / "report.md").read_text()
    assert "## Per layer" in md and "layers.png" in md and "memory.png" in md
    # identical windows on -icount: one line instead of a plot of identical dots
    assert not (out / "latency.png").exists()
    assert any("no latency plot" in n for n in report.get("notes", []))

    # The same model again, side by side with the first build: the emulated firmware repeats
    # to the tick, so each layer agrees within the tick quantisation of both builds (one
    # SysTick tick, 40 instructions, each) and the difference of their measured timer costs.
    again = tmp_path / "again"
    proc = run_tinyopt("build", "--board", "qemu-m4", "--backend", "aot", "--layers", "2", "--compare", out,
                       "-o", again, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "side by side" in proc.stderr
    compared = json.loads((again / "report.json").read_text())["measure"]["layers_compared"]
    assert compared["reference_backend"] == "aot" and len(compared["rows"]) == len(layers)
    diffs = [(r["index"], r["cycles"] - r["reference_cycles"]) for r in compared["rows"]]
    assert all(abs(d) <= 2 * 40 + 10 for _, d in diffs), diffs
    assert abs(compared["ratio"] - 1.0) < 2e-3, compared["ratio"]
    assert "## Per layer, side by side" in (again / "report.md").read_text()


def test_compare_is_refused_before_any_work(tmp_path):
    """--compare without --layers, with a folder holding no report, or with a report that has no
    per-layer profile: one line, exit 2, and no output folder."""
    out = tmp_path / "out"
    assert_one_line_error(run_tinyopt("build", "--board", "qemu-m4", "--compare", tmp_path, "-o", out),
                          "--compare", "--layers")
    assert_one_line_error(run_tinyopt("build", "--board", "qemu-m4", "--layers", "2", "--compare", tmp_path,
                                      "-o", out), "no report.json")
    (tmp_path / "report.json").write_text(json.dumps({"measure": {"cycles": {"median": 1}}}))
    assert_one_line_error(run_tinyopt("build", "--board", "qemu-m4", "--layers", "2", "--compare", tmp_path,
                                      "-o", out), "no per-layer profile")
    (tmp_path / "report.json").write_text("{not json")
    assert_one_line_error(run_tinyopt("build", "--board", "qemu-m4", "--layers", "2", "--compare", tmp_path,
                                      "-o", out), "not readable")
    assert not out.exists()


def test_side_by_side_joins_on_the_operator_index_and_refuses_another_model():
    from tinyopt.errors import TinyoptError
    from tinyopt.layer_compare import side_by_side

    def report(backend, layers, model_bytes=1000):
        return {"backend": backend, "analysis": {"totals": {"model_bytes": model_bytes, "macs": 50}},
                "measure": {"layers": [{"index": i, "op": op, "layer": None, "macs": 10, "cycles": c}
                                       for i, op, c in layers]}}
    aot = report("aot", [(0, "CONV_2D", 100.0), (2, "SOFTMAX", 10.0)])
    tflm = report("tflm", [(0, "CONV_2D", 400.0), (1, "RESHAPE", 5.0), (2, "SOFTMAX", 20.0)])
    c = side_by_side(aot, tflm, "ref")
    assert [r["index"] for r in c["rows"]] == [0, 1, 2]
    assert c["rows"][0]["ratio"] == 0.25 and c["rows"][1]["cycles"] is None and c["rows"][1]["ratio"] is None
    assert c["cycles"] == 110 and c["reference_cycles"] == 425
    with pytest.raises(TinyoptError, match="another model"):
        side_by_side(aot, report("tflm", [(0, "CONV_2D", 1.0)], model_bytes=999), "ref")


@pytest.mark.slow
@pytest.mark.tflm
def test_tflm_profile_through_the_interpreters_profiler(tmp_path, demo_int8_tflite):
    if not os.environ.get("TINYOPT_TFLM_DIR"):
        pytest.skip("TINYOPT_TFLM_DIR not set: the tflm backend compiles a local TFLM source tree")
    project = _project(tmp_path, demo_int8_tflite, backend="tflm")
    result = flash(project, keep_running=True)
    try:
        with DeviceLink(result.port, timeout=10) as link:
            link.handshake()
            plain = link.infer(3, 1, timeout=60).cycles_per_inference
            link.layers(1, timeout=120)
            again = link.infer(3, 1, timeout=60).cycles_per_inference
        m = measure(project, port=result.port, runs=3, windows=1, count=2, window_s=0.0, layers=2)
    finally:
        stop(project)
    assert plain == again          # the interpreter without the profiler is back, unchanged
    assert abs(m.layer_agreement["ratio"] - 1.0) < 0.02, m.layer_agreement
    ops = [r["op"] for r in m.layers]
    assert "RESHAPE" in ops        # TFLM runs every operator, RESHAPE included


@pytest.mark.slow
def test_resnet_profile_on_qemu_m4(tmp_path):
    project = _project(tmp_path, mlperf_model("pretrainedResnet_quant.tflite"))
    result = flash(project, keep_running=True)
    try:
        m = measure(project, port=result.port, runs=1, windows=1, count=2, window_s=0.0, layers=1, timeout=60)
    finally:
        stop(project)
    assert abs(m.layer_agreement["ratio"] - 1.0) < 0.02, m.layer_agreement
    assert sum(r["macs"] for r in m.layers) == 12_501_632
