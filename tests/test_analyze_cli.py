"""`tinyopt analyze` as a user runs it: bad files give one line and exit 2, --json is
machine-readable on stdout, --plot writes an image, -o writes report.json."""
from __future__ import annotations

import json
import os

import pytest
from conftest import assert_one_line_error, mlperf_model, run_tinyopt


@pytest.fixture(scope="module")
def kws():
    return mlperf_model("kws_ref_model.tflite")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.tflite"
    path.write_bytes(b"")
    assert_one_line_error(run_tinyopt("analyze", path), "empty", "hint")


def test_random_bytes(tmp_path):
    path = tmp_path / "random.tflite"
    path.write_bytes(os.urandom(4096))
    assert_one_line_error(run_tinyopt("analyze", path), "not a TFLite flatbuffer")


@pytest.mark.parametrize("keep", [300, 5000, 40000])
def test_truncated_file(tmp_path, kws, keep):
    path = tmp_path / "cut.tflite"
    path.write_bytes(kws.read_bytes()[:keep])
    assert_one_line_error(run_tinyopt("analyze", path), "truncated")


def test_missing_file_and_unknown_board(tmp_path, kws):
    assert_one_line_error(run_tinyopt("analyze", tmp_path / "nope.tflite"), "does not exist")
    assert_one_line_error(run_tinyopt("analyze", kws, "--board", "no-such-board"), "unknown board")


def test_json_on_stdout(kws):
    proc = run_tinyopt("analyze", kws, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["totals"]["macs"] == 2_656_768
    assert data["arena"]["tflm_bytes"] > data["arena"]["head_bytes"] > 0
    assert data["audit"]["errors"] == []
    assert len(data["ops"]) == 13 and data["ops"][0]["name"] == "CONV_2D"


def test_table_plot_and_report_dir(tmp_path, kws):
    png = tmp_path / "layers.png"
    out = tmp_path / "report"
    proc = run_tinyopt("analyze", kws, "--plot", png, "-o", out)
    assert proc.returncode == 0, proc.stderr
    text = proc.stderr + proc.stdout
    for fragment in ("DEPTHWISE_CONV_2D", "depthwise_conv2d_3", "2,656,768", "head 16,000 B",
                     "audit: TFLM can run this model"):
        assert fragment in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["macs"] == 2_656_768
    assert (out / "analysis.png").is_file()
    # the output directory is not overwritten without --force
    assert_one_line_error(run_tinyopt("analyze", kws, "-o", out), "already exists")


def test_audit_error_exit_code(tmp_path):
    """A float model: the report is printed and the exit status is 1 (not a crash)."""
    from tinyopt.tflm_runtime import _runtime
    sine = os.path.join(os.path.dirname(_runtime().__file__), "sine_float.tflite")
    if not os.path.isfile(sine):
        pytest.skip("tflite_micro ships no sine_float.tflite in this version")
    proc = run_tinyopt("analyze", sine, "--json")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    assert data["audit"]["errors"][0]["code"] == "float-model"
    assert data["arena"]["tflm_bytes"] is None
