"""Every kind of bad input: one line on stderr with a hint, exit 2 (130 for Ctrl-C), no
traceback, and no output directory (or temporary sibling) left behind."""
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from conftest import assert_one_line_error, mlperf_model, run_tinyopt


def _no_leftovers(parent, name="out"):
    left = [p.name for p in parent.iterdir() if p.name == name or p.name.startswith(f".{name}.")]
    assert not left, left


def test_missing_model(tmp_path):
    proc = run_tinyopt("convert", tmp_path / "nope.keras", "--calibrate-random", "-o", tmp_path / "out")
    assert_one_line_error(proc, "does not exist", "hint")
    _no_leftovers(tmp_path)


def test_truncated_h5(tmp_path):
    src = mlperf_model("ad01.h5").read_bytes()
    bad = tmp_path / "trunc.h5"
    bad.write_bytes(src[: len(src) // 3])
    proc = run_tinyopt("convert", bad, "--calibrate-random", "-o", tmp_path / "out")
    assert_one_line_error(proc, "cannot load", "hint")
    _no_leftovers(tmp_path)


def test_random_bytes_named_keras(tmp_path):
    bad = tmp_path / "noise.keras"
    bad.write_bytes(np.random.default_rng(1).bytes(4096))
    proc = run_tinyopt("convert", bad, "--calibrate-random", "-o", tmp_path / "out")
    assert_one_line_error(proc, "not a keras model file")
    _no_leftovers(tmp_path)


def test_directory_that_is_not_savedmodel(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "readme.txt").write_text("hello")
    proc = run_tinyopt("convert", tmp_path / "folder", "--calibrate-random", "-o", tmp_path / "out")
    assert_one_line_error(proc, "not a savedmodel")


def test_keras3_only_file(tmp_path):
    """A real Keras 3 .keras file (saved by the keras 3 package in a child process)."""
    path = tmp_path / "k3.keras"
    code = ("import keras; m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]); "
            f"m.save(r'{path}')")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="0", KERAS_BACKEND="tensorflow")
    made = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    if made.returncode != 0:
        pytest.skip(f"Keras 3 is not usable here: {made.stderr[-300:]}")
    with zipfile.ZipFile(path) as zf:
        assert b'"keras_version": "3.' in zf.read("metadata.json")
    proc = run_tinyopt("convert", path, "--calibrate-random", "-o", tmp_path / "out")
    assert_one_line_error(proc, "keras 3", "export")


def test_wrong_shape_data(tmp_path, demo_model_path):
    data = tmp_path / "bad.npz"
    np.savez(data, x_train=np.zeros((10, 7, 7, 1), np.float32), x_val=np.zeros((5, 7, 7, 1), np.float32))
    proc = run_tinyopt("convert", demo_model_path, "--data", data, "-o", tmp_path / "out")
    assert_one_line_error(proc, "(7, 7, 1)", "(8, 8, 1)")
    _no_leftovers(tmp_path)


def test_nan_data(tmp_path, demo_model_path):
    x = np.zeros((10, 8, 8, 1), np.float32)
    x[3, 2, 2, 0] = np.nan
    data = tmp_path / "nan.npz"
    np.savez(data, x_train=x, x_val=x)
    proc = run_tinyopt("optimize", demo_model_path, "--data", data, "--prune", "0.5", "-o", tmp_path / "out")
    assert_one_line_error(proc, "nan")
    _no_leftovers(tmp_path)


def test_prune_out_of_range(tmp_path):
    proc = run_tinyopt("optimize", "--prune", "1.5", "-o", tmp_path / "out")
    assert_one_line_error(proc, "--prune 1.5", "0.75")
    _no_leftovers(tmp_path)


def test_existing_output_is_refused_without_force(tmp_path, demo_model_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    proc = run_tinyopt("convert", "-o", out)
    assert_one_line_error(proc, "already exists", "--force")
    assert (out / "precious.txt").read_text() == "mine"
    run_tinyopt("convert", "-o", out, "--force", "--eval-samples", "20", check=True)
    assert not (out / "precious.txt").exists() and (out / "model_int8.tflite").is_file()


@pytest.mark.slow
def test_ctrl_c_during_training(tmp_path, demo_model_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "tinyopt", "optimize", "--prune", "0.5", "--epochs", "400",
                             "-o", str(out)], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    seen = ""
    # Wait until training really runs (its staging directory exists and a bar is drawn).
    while time.time() < deadline:
        if any(p.name.startswith(".out.tmp-") for p in tmp_path.iterdir()):
            time.sleep(8)
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, seen = proc.communicate(timeout=120)
    assert proc.returncode == 130, seen[-2000:]
    assert "Traceback" not in seen
    assert "interrupted" in seen.splitlines()[-1]
    _no_leftovers(tmp_path)


def test_rnn_not_unrolled_is_refused_before_conversion(tmp_path):
    import tf_keras as keras
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.LSTM(4), keras.layers.Dense(2)])
    path = tmp_path / "lstm.h5"
    model.save(path)
    proc = run_tinyopt("convert", path, "--calibrate-random", "-o", tmp_path / "out")
    assert_one_line_error(proc, "not unrolled", "unroll=True")
    _no_leftovers(tmp_path)
