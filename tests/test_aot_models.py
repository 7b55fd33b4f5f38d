"""The aot backend on real models: 100 random int8 inputs each, outputs byte-identical to
the TFLM runtime; the same binaries under AddressSanitizer + UBSan; activation buffer (kernel scratch included)
no bigger than TFLM's arena; the pruned demo stored sparse at <= 0.5x its dense weights."""
from __future__ import annotations

import pytest
from aot_check import check_bit_exact
from conftest import mlperf_model, run_tinyopt

MLPERF = ["ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite"]


@pytest.fixture(scope="session")
def pruned_demo_tflite(tmp_path_factory, demo_model_path):
    """The demo pruned to 75 % with tfmot, stripped and converted to int8 by tinyopt."""
    out = tmp_path_factory.mktemp("pruned_demo") / "out"
    run_tinyopt("optimize", "--prune", "0.75", "--epochs", "2", "--eval-samples", "100", "-o", out, check=True)
    return out / "model_int8.tflite"


def _check(raw: bytes, tmp_path, options: dict | None = None):
    lib, runner = check_bit_exact(raw, tmp_path / "o2", samples=100, options=options)
    arena = runner.arena_usage()
    # the planned buffer holds the kernels' scratch too (TFLM's arena tail holds its kernels' buffers)
    scratch = lib.memory_plan["scratch_bytes"]
    assert lib.activation_bytes <= min(arena.head + scratch, arena.total), (lib.activation_bytes, scratch, arena)
    check_bit_exact(raw, tmp_path / "san", samples=10, sanitize=True, seed=1, options=options)
    return lib


@pytest.mark.slow
@pytest.mark.parametrize("name", MLPERF)
def test_mlperf_model_bit_exact(name, tmp_path):
    _check(mlperf_model(name).read_bytes(), tmp_path)


@pytest.mark.slow
def test_demo_bit_exact(demo_int8_tflite, tmp_path):
    _check(demo_int8_tflite.read_bytes(), tmp_path)


@pytest.mark.slow
def test_pruned_demo_bit_exact_and_sparse(pruned_demo_tflite, tmp_path):
    """Stored as small as possible (--sparse size); the default keeps 75 % zeros dense on DSP cores."""
    lib = _check(pruned_demo_tflite.read_bytes(), tmp_path, {"sparse": "size"})
    s = lib.summary
    assert s["sparse_layers"], "no layer of the 75 % pruned demo was stored sparse"
    assert s["weight_bytes"] <= 0.5 * s["dense_weight_bytes"], s


@pytest.mark.slow
def test_resnet_h5_converted_by_tinyopt_bit_exact(tmp_path):
    """ResNet-8 from the Keras file, through tinyopt's own int8 conversion."""
    out = tmp_path / "resnet"
    run_tinyopt("convert", mlperf_model("pretrainedResnet.h5"), "--calibrate-random", "--calibration", "16",
                "-o", out, check=True)
    _check((out / "model_int8.tflite").read_bytes(), tmp_path)
