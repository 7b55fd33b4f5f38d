"""What the aot backend refuses, and how it says so: operators it does not compile, float
models, shapes the static planner cannot address."""
from __future__ import annotations

import numpy as np
import pytest
from aot_builder import GraphBuilder

from tinyopt.codegen.aot import model_library
from tinyopt.errors import TinyoptError


def _error(raw: bytes) -> TinyoptError:
    with pytest.raises(TinyoptError) as info:
        model_library(raw)
    return info.value


def test_unsupported_operator_names_it_and_advises_tflm():
    g = GraphBuilder(0)
    x, y = g.act([1, 16]), g.act([1, 16], 1.0 / 128, 0)
    g.op("TANH", [x], [y])
    err = _error(g.build([x], [y]))
    assert "TANH" in err.message and "aot" in err.message
    assert "--backend tflm" in err.hint


def test_transpose_is_refused():
    g = GraphBuilder(0)
    x, y = g.act([1, 4, 6]), g.act([1, 6, 4])
    g.op("TRANSPOSE", [x, g.const_i32([0, 2, 1])], [y], "TransposeOptions")
    err = _error(g.build([x], [y]))
    assert "TRANSPOSE" in err.message and "--backend tflm" in err.hint


def test_float_model_is_refused():
    g = GraphBuilder(0)
    x = g.tensor([1, 8], "FLOAT32")
    w = g.tensor([4, 8], "FLOAT32", data=np.ones((4, 8), np.float32))
    y = g.tensor([1, 4], "FLOAT32")
    g.op("FULLY_CONNECTED", [x, w, -1], [y], "FullyConnectedOptions", fusedActivationFunction="NONE")
    err = _error(g.build([x], [y]))
    assert "float" in err.message.lower() and "int8" in err.message
    assert "tinyopt convert" in err.hint


def test_float_inside_int8_io_is_refused():
    g = GraphBuilder(0)
    x, y = g.act([1, 8]), g.act([1, 8])
    f, f2 = g.tensor([1, 8], "FLOAT32"), g.tensor([1, 8], "FLOAT32")
    g.op("DEQUANTIZE", [x], [f])
    g.op("LOGISTIC", [f], [f2])
    g.op("QUANTIZE", [f2], [y])
    err = _error(g.build([x], [y]))
    assert "LOGISTIC" in err.message and "float" in err.message.lower()


def test_planner_overflow_is_refused():
    g = GraphBuilder(0)
    x = g.act([1, 60000, 60000, 1])
    y = g.act([1, 60000, 60000, 1])
    g.op("RELU6", [x], [y])
    err = _error(g.build([x], [y]))
    assert "bytes" in err.message and ("buffer" in err.message or "address" in err.message)
    assert err.hint


def test_int16_activations_are_refused():
    g = GraphBuilder(0)
    x = g.tensor([1, 8], "INT16", 0.01, 0)
    y = g.tensor([1, 8], "INT16", 0.01, 0)
    g.op("RELU", [x], [y])
    err = _error(g.build([x], [y]))
    assert "INT16" in err.message and "--backend tflm" in err.hint


def test_generate_cli_refuses_unsupported_operator_in_one_line(tmp_path):
    from conftest import assert_one_line_error, run_tinyopt
    g = GraphBuilder(0)
    x, y = g.act([1, 16]), g.act([1, 16], 1.0 / 128, 0)
    g.op("TANH", [x], [y])
    model = tmp_path / "tanh.tflite"
    model.write_bytes(g.build([x], [y]))
    proc = run_tinyopt("generate", model, "--board", "qemu-m4", "--backend", "aot", "-o", tmp_path / "fw")
    assert_one_line_error(proc, "TANH", "--backend tflm")
    assert not (tmp_path / "fw").exists()


def test_generate_cli_refuses_float_model_in_one_line(tmp_path):
    from conftest import assert_one_line_error, run_tinyopt
    g = GraphBuilder(0)
    x = g.tensor([1, 8], "FLOAT32")
    w = g.tensor([4, 8], "FLOAT32", data=np.ones((4, 8), np.float32))
    y = g.tensor([1, 4], "FLOAT32")
    g.op("FULLY_CONNECTED", [x, w, -1], [y], "FullyConnectedOptions", fusedActivationFunction="NONE")
    model = tmp_path / "float.tflite"
    model.write_bytes(g.build([x], [y]))
    proc = run_tinyopt("generate", model, "--board", "qemu-m4", "--backend", "aot", "-o", tmp_path / "fw")
    assert_one_line_error(proc, "float", "int8")
