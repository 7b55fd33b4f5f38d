"""Structured (channel) pruning: coupled groups on the demo and the MLPerf Tiny models, exact
surgery (the pruned model computes what the original computes with the removed channels
cut off), valid int8 models with fewer MACs, and `tinyopt optimize --channels`."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import assert_one_line_error, mlperf_model, run_tinyopt


def _load(path):
    from tinyopt.keras_io import load_model
    return load_model(path)


def _inputs(model, n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n,) + tuple(model.input_shape[1:]), dtype=np.float32)


def _cut_off_reference(model, p, keep):
    """The original model with every removed channel's consumers zeroed: a removed channel
    then contributes nothing, so its outputs must equal the pruned model's."""
    from tinyopt.keras_io import fresh_copy
    from tinyopt.optimize.channels import _kept
    ref = fresh_copy(model)
    for layer in ref.layers:
        name = layer.name
        cls = p.classes.get(name)
        if name not in p.inputs or cls not in ("Conv2D", "Dense", "SeparableConv2D"):
            continue
        weights = layer.get_weights()
        desc = p.inputs[name]
        kept = set(_kept(p, desc, keep).tolist())
        gone = [i for i in range(desc.width * desc.spatial) if i not in kept]
        if gone:
            weights[0][..., gone, :] = 0
            layer.set_weights(weights)
    return ref


def _check_exact(model, ratio=0.5):
    from tinyopt.optimize import channels
    p = channels.plan(model)
    keep = channels.choose_keep(model, p, channels.stage_ratios(p, ratio))
    pruned = channels.apply(model, p, keep)
    x = _inputs(model)
    ref = _cut_off_reference(model, p, keep).predict(x, verbose=0)
    got = pruned.predict(x, verbose=0)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert pruned.count_params() < model.count_params()
    return p, pruned


def test_demo_groups_and_exact_surgery(demo_model_path):
    from tinyopt.optimize import channels
    model = _load(demo_model_path)
    p, pruned = _check_exact(model)
    widths = {g.producers[0]: g.size for g in p.prunable()}
    assert widths == {"conv1": 16, "pwconv2": 32, "conv3": 32, "fc1": 64}
    # conv1's channels run through the depthwise layer: it is pruned with them.
    assert pruned.get_layer("dwconv2").get_weights()[0].shape[2] == 8
    assert pruned.get_layer("fc1").get_weights()[0].shape == (4 * 4 * 16, 32)   # Flatten -> Dense rows
    assert channels.plan(model).fixed == {"logits": "model output"}
    same, _ = channels.prune(model, 0.0)
    x = _inputs(model)
    np.testing.assert_array_equal(same.predict(x, verbose=0), model.predict(x, verbose=0))


def test_resnet8_residual_groups_pruned_jointly():
    model = _load(mlperf_model("pretrainedResnet.h5"))
    p, pruned = _check_exact(model)
    groups = sorted(tuple(sorted(g.producers)) for g in p.prunable())
    # Each residual Add ties the block's last conv to its shortcut (identity or 1x1 conv).
    assert ("conv2d", "conv2d_2") in groups
    assert ("conv2d_4", "conv2d_5") in groups and ("conv2d_7", "conv2d_8") in groups
    for a, b in (("conv2d", "conv2d_2"), ("conv2d_4", "conv2d_5"), ("conv2d_7", "conv2d_8")):
        assert pruned.get_layer(a).filters == pruned.get_layer(b).filters == model.get_layer(a).filters // 2


def test_dscnn_depthwise_channels():
    model = _load(mlperf_model("kws_ref_model"))
    p, pruned = _check_exact(model)
    assert len(p.prunable()) == 5
    for layer in pruned.layers:
        if type(layer).__name__ == "DepthwiseConv2D":
            assert layer.get_weights()[0].shape[2] == 32


def test_ad01_dense_units():
    model = _load(mlperf_model("ad01.h5"))
    p, pruned = _check_exact(model)
    assert pruned.output_shape == model.output_shape == (None, 640)
    assert pruned.get_layer("dense_4").units == 4     # the 8-unit bottleneck, halved


def test_concatenate_and_per_stage():
    """Concatenate lays its inputs' channel spaces side by side; per-stage ratios."""
    from tinyopt.keras_io import keras
    from tinyopt.optimize import channels
    k = keras()
    k.utils.set_random_seed(1)
    x = k.Input((8, 8, 3))
    a = k.layers.Conv2D(8, 3, padding="same", activation="relu", name="a")(x)
    b = k.layers.Conv2D(12, 1, activation="relu", name="b")(x)
    c = k.layers.Concatenate(name="cat")([a, b])
    c = k.layers.BatchNormalization(name="bn")(c)
    d = k.layers.Conv2D(16, 3, padding="same", name="d")(c)
    e = k.layers.GlobalAveragePooling2D(name="gap")(d)
    model = k.Model(x, k.layers.Dense(4, name="out")(e))
    model.get_layer("bn").set_weights([np.random.default_rng(0).random(20, dtype=np.float32) + 0.5
                                       for _ in range(4)])
    p, pruned = _check_exact(model)
    assert pruned.get_layer("bn").get_weights()[0].shape == (10,)
    assert pruned.get_layer("d").get_weights()[0].shape[2] == 10
    staged, summary = channels.prune(model, (0.25, 0.75))
    kept = {tuple(g["layers"]): g["kept"] for g in summary["groups"]}
    assert kept[("a",)] == 6 and kept[("d",)] == 4


@pytest.mark.slow
def test_pruned_mlperf_models_convert_with_fewer_macs(tmp_path):
    """50 % channels off ResNet-8 and the DS-CNN: valid int8 models, MACs down by > 2x."""
    from tinyopt.analysis import analyze
    from tinyopt.convert import ConvertOptions, convert_model
    from tinyopt.optimize import channels
    for name in ("pretrainedResnet.h5", "kws_ref_model"):
        model = _load(mlperf_model(name))
        pruned, _ = channels.prune(model, 0.5)
        macs = []
        for tag, m in (("dense", model), ("pruned", pruned)):
            folder = tmp_path / f"{name}-{tag}"
            folder.mkdir()
            q = convert_model(m, None, ConvertOptions(calibration=8, calibrate_random=True), folder)
            macs.append(analyze(q.tflite_path).totals.macs)
        assert macs[1] < macs[0] / 2.5, (name, macs)


@pytest.mark.slow
def test_optimize_channels_cli(tmp_path, demo_model_path):
    out = tmp_path / "ch"
    run_tinyopt("optimize", "--channels", "0.5", "--epochs", "3", "--eval-samples", "200", "-o", out, check=True)
    rep = json.loads((out / "report.json").read_text())
    ch = rep["optimize"]["channels"]
    assert ch["steps"] == 2 and {g["kept"] for g in ch["groups"]} == {8, 16, 32}
    assert rep["int8"]["accuracy"] >= 0.9
    assert rep["int8"]["tflite_bytes"] < 25000          # the dense demo is ~53 kB


@pytest.mark.slow
def test_channels_combine_with_tfmot_and_distil(tmp_path):
    """--channels with --prune and --qat (PQAT), on unlabelled data (distillation): ad01."""
    from tinyopt.keras_io import load_model
    model = load_model(mlperf_model("ad01.h5"))
    rng = np.random.default_rng(0)
    data = tmp_path / "ad01.npz"
    np.savez(data, x_train=rng.standard_normal((256, 640)).astype(np.float32),
             x_val=rng.standard_normal((64, 640)).astype(np.float32))
    out = tmp_path / "ad"
    run_tinyopt("optimize", mlperf_model("ad01.h5"), "--data", data, "--channels", "0.5", "--prune", "0.5",
                "--qat", "--epochs", "1", "-o", out, check=True, timeout=900)
    rep = json.loads((out / "report.json").read_text())
    assert rep["optimize"]["distilled_from_original"] is True
    assert rep["optimize"]["qat_scheme"] == "PQAT"
    assert rep["optimize"]["channels"]["groups"][0]["kept"] == 64
    assert rep["int8"]["sparsity"] > 0.4
    assert rep["int8"]["tflite_bytes"] < 0.5 * model.count_params()     # int8 dense would be ~1 B/param


def test_bad_channels_value(tmp_path):
    proc = run_tinyopt("optimize", "--channels", "1.5", "-o", tmp_path / "x")
    assert_one_line_error(proc, "--channels 1.5")
    proc = run_tinyopt("optimize", "--channels", "half", "-o", tmp_path / "y")
    assert_one_line_error(proc, "--channels")


def test_batch_norm_statistics_are_re_estimated_after_tuning():
    """recalibrate_batch_norm makes each BatchNormalization's moving mean / variance those of
    the training inputs (the mean over its batches), with dropout off and momentum restored."""
    from tinyopt.keras_io import keras
    from tinyopt.optimize.training import recalibrate_batch_norm
    k = keras()
    inp = k.Input((6,))
    bn = k.layers.BatchNormalization(name="bn")
    out = k.layers.Dense(3)(k.layers.Dropout(0.5)(bn(inp)))
    model = k.Model(inp, out)
    bn.set_weights([np.ones(6), np.zeros(6), np.full(6, 50.0), np.full(6, 9.0)])   # stale statistics
    x = np.random.default_rng(1).normal(3.0, 2.0, (1024, 6)).astype(np.float32)
    assert recalibrate_batch_norm(model, x) == 1
    _, _, mean, var = bn.get_weights()
    np.testing.assert_allclose(mean, x[:1024].mean(axis=0), atol=1e-3)
    # the mean of the four batches' variances (Keras keeps the biased batch variance)
    batch_vars = np.mean([x[i:i + 256].var(axis=0) for i in range(0, 1024, 256)], axis=0)
    np.testing.assert_allclose(var, batch_vars, rtol=1e-3)
    assert bn.momentum == 0.99 and model.layers[2].rate == 0.5


@pytest.mark.slow
def test_distilled_residual_network_agrees_with_its_teacher(tmp_path):
    """ResNet-8 at 50 % channels, distilled on synthetic inputs: the int8 model agrees with the
    original most of the time (before the BatchNorm statistics were re-estimated after tuning,
    inference mode used the unpruned network's statistics: 0 % agreement)."""
    from tinyopt.keras_io import load_model
    model = load_model(mlperf_model("pretrainedResnet.h5"))
    data = tmp_path / "r8.npz"
    np.savez(data, **{k: v for k, v in zip(("x_train", "x_val"), _synthetic(model))})
    out = tmp_path / "r8"
    run_tinyopt("optimize", mlperf_model("pretrainedResnet.h5"), "--data", data, "--channels", "0.5",
                "--epochs", "3", "-o", out, check=True, timeout=900)
    rep = json.loads((out / "report.json").read_text())
    assert rep["optimize"]["distilled_from_original"] is True
    assert rep["int8"]["agreement"] > 0.5, rep["int8"]


def _synthetic(model, n_train=512, n_val=128):
    rng = np.random.default_rng(0)
    shape = tuple(model.input_shape[1:])
    return (rng.random((n_train,) + shape, dtype=np.float32), rng.random((n_val,) + shape, dtype=np.float32))
