"""optimize on the demo: pruning, M:N, clustering, QAT and distillation, end to end via the CLI."""
import json

import numpy as np
import pytest
from conftest import run_tinyopt

pytestmark = pytest.mark.slow


def _report(out):
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def pruned(tmp_path_factory, demo_model_path):
    out = tmp_path_factory.mktemp("pruned") / "out"
    proc = run_tinyopt("optimize", "--prune", "0.75", "-o", out, "--json", check=True)
    return out, json.loads(proc.stdout)


def test_prune_reaches_sparsity_and_keeps_accuracy(pruned):
    out, report = pruned
    assert report == _report(out)  # --json prints exactly what report.json holds
    assert report["schema"].startswith("tinyopt-report/")
    assert report["int8"]["sparsity"] >= 0.74
    assert report["int8"]["accuracy"] >= report["float"]["accuracy"] - 0.015
    for key in ("accuracy",):
        assert key in report["float"] and key in report["optimized"] and key in report["int8"]
    assert report["int8"]["tflite_bytes"] == (out / "model_int8.tflite").stat().st_size
    assert 0 < report["int8"]["gzip_bytes"] < report["int8"]["tflite_bytes"]
    layers = report["int8"]["layers"]
    assert {r["layer"] for r in layers} == {"conv1", "dwconv2", "pwconv2", "conv3", "fc1", "logits"}
    pruned_layers = set(report["optimize"]["pruned_layers"])
    # tfmot has no pruning for depthwise kernels: the report must say it was left dense.
    assert "dwconv2" in report["optimize"]["left_dense"] and "dwconv2" not in pruned_layers
    assert all(r["sparsity"] > 0.74 for r in layers if r["layer"] in pruned_layers)
    assert (out / "optimized.keras").is_file() and (out / "report.md").is_file()


def test_qat_preserves_pruned_sparsity(pruned, tmp_path):
    _, plain = pruned
    out = tmp_path / "qat"
    run_tinyopt("optimize", "--prune", "0.75", "--qat", "-o", out, check=True)
    report = _report(out)
    assert report["optimize"]["qat_scheme"] == "PQAT"
    assert abs(report["int8"]["sparsity"] - plain["int8"]["sparsity"]) <= 0.01


def test_cluster_16_leaves_at_most_16_values_per_channel(tmp_path):
    out = tmp_path / "c"
    run_tinyopt("optimize", "--cluster", "16", "--epochs", "3", "-o", out, check=True)
    report = _report(out)
    clustered = set(report["optimize"]["clustered_layers"])
    assert clustered
    for row in report["int8"]["layers"]:
        if row["layer"] in clustered:
            assert row["max_unique_per_channel"] <= 16, row
    # Per-tensor unique counts are reported too (per-channel scales split the clusters).
    assert all("unique_values" in r for r in report["int8"]["layers"])


def test_two_four_pattern(tmp_path):
    from tinyopt.analysis.reader import read_tflite
    out = tmp_path / "p24"
    run_tinyopt("optimize", "--prune-pattern", "2:4", "--epochs", "2", "-o", out, check=True)
    model = read_tflite(out / "model_int8.tflite")
    report = _report(out)
    pruned = set(report["optimize"]["pruned_layers"])
    assert "dwconv2" not in pruned and "dwconv2" in report["optimize"]["left_dense"]
    checked = 0
    for op in model.operators:
        if op.opcode not in ("CONV_2D", "FULLY_CONNECTED"):
            continue
        w = model.tensors[op.inputs[1]].data
        flat = w.reshape(w.shape[0], -1)
        if flat.shape[1] % 4:
            continue
        groups = flat.reshape(flat.shape[0], -1, 4)
        # tfmot's M:N groups run along the input-channel axis, the last axis of the kernel.
        assert np.all((groups == 0).sum(axis=2) >= 2), op.opcode
        checked += 1
    assert checked >= 2


def test_unlabelled_data_distils_from_original(tmp_path, demo_data_path):
    data = dict(np.load(demo_data_path))
    unlabeled = tmp_path / "unlabeled.npz"
    np.savez(unlabeled, x_train=data["x_train"], x_val=data["x_val"])
    from tinyopt.keras_io import demo_model_path
    out = tmp_path / "d"
    run_tinyopt("optimize", demo_model_path(), "--data", unlabeled, "--prune", "0.5", "--epochs", "3",
                "-o", out, check=True)
    report = _report(out)
    assert report["optimize"]["distilled_from_original"] is True
    assert "accuracy" not in report["int8"]
    assert report["int8"]["agreement"] >= 0.9
    assert report["int8"]["sparsity"] >= 0.49


def test_clustering_leaves_a_kernel_with_fewer_values_than_centroids_alone():
    """k-means++ needs at least K points: a kernel with no more distinct (nonzero, when
    sparsity is kept) values than K centroids stays as it is instead of failing in tfmot
    (a search trial with 80 % sparsity and 8 clusters did)."""
    from tinyopt.keras_io import keras
    from tinyopt.optimize.cluster import wrap_for_clustering
    k = keras()
    inp = k.Input((4,))
    small = k.layers.Dense(2, name="small")(inp)                 # 8 weights
    out = k.layers.Dense(16, name="wide")(k.layers.Dense(32, name="hidden")(small))
    model = k.Model(inp, out)
    w, b = model.get_layer("small").get_weights()
    w[:] = 0
    w.flat[:6] = np.arange(1, 7)                                   # 6 nonzero values
    model.get_layer("small").set_weights([w, b])
    _, clustered, dense = wrap_for_clustering(model, 8, preserve_sparsity=True)
    assert "small" in dense and "small" not in clustered
    assert {"hidden", "wide"} <= set(clustered)
    _, clustered, dense = wrap_for_clustering(model, 8, preserve_sparsity=False)
    assert "small" in dense                                        # 7 distinct values, zero included
