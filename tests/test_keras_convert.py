"""convert on the demo and on the real MLPerf Tiny models."""
import json

import numpy as np
import pytest
from conftest import mlperf_model, run_tinyopt

from tinyopt.analysis.reader import read_tflite
from tinyopt.tflm_runtime import Runner

INT8_OK_TYPES = {"INT8", "INT32"}  # int32 only for biases


def _assert_int8_builtin(model):
    for op in model.operators:
        assert op.opcode != "CUSTOM", op
        for idx in op.inputs + op.outputs:
            if idx >= 0:
                assert model.tensors[idx].dtype in INT8_OK_TYPES, (op.opcode, model.tensors[idx].dtype)
    for idx in model.inputs + model.outputs:
        assert model.tensors[idx].dtype == "INT8"
        assert model.tensors[idx].shape[0] == 1  # batch size 1


def test_demo_convert_scores_int8_in_tflm_runtime(demo_int8_tflite):
    report = json.loads((demo_int8_tflite.parent / "report.json").read_text())
    assert report["command"] == "convert"
    assert report["int8"]["accuracy"] >= report["float"]["accuracy"] - 0.02
    assert report["int8"]["agreement"] >= 0.97
    _assert_int8_builtin(read_tflite(demo_int8_tflite))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ad01.h5", "pretrainedResnet.h5", "kws_ref_model"])
def test_mlperf_models_convert_to_int8_builtins(name, tmp_path):
    source = mlperf_model(name)
    out = tmp_path / "out"
    proc = run_tinyopt("convert", source, "--calibrate-random", "--calibration", "16", "-o", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = read_tflite(out / "model_int8.tflite")
    _assert_int8_builtin(model)
    runner = Runner((out / "model_int8.tflite").read_bytes())
    y = runner.run(np.random.default_rng(0).integers(-128, 128, runner.input_shape, dtype=np.int8))
    assert y.dtype == np.int8 and y.size > 0
    report = json.loads((out / "report.json").read_text())
    assert any("random" in n for n in report["notes"])


def test_int16x8_option(demo_model_path, tmp_path):
    out = tmp_path / "i16"
    run_tinyopt("convert", "--int16x8", "--calibration", "50", "--eval-samples", "50", "-o", out, check=True)
    model = read_tflite(out / "model_int8.tflite")
    assert model.tensors[model.inputs[0]].dtype == "INT16"
    report = json.loads((out / "report.json").read_text())
    assert report["int8"]["activations"] == "int16"
    assert report["int8"]["agreement"] >= 0.97


def test_convert_without_data_needs_explicit_random_calibration(tmp_path):
    source = mlperf_model("ad01.h5")
    proc = run_tinyopt("convert", source, "-o", tmp_path / "x")
    assert proc.returncode == 2 and "--calibrate-random" in proc.stderr
    assert not (tmp_path / "x").exists()
