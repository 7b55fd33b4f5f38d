"""`tinyopt analyze` on small models the tests build and convert themselves: MAC counts
checked by hand, the arena checked against the TFLM runtime, and the audit catching each
kind of model TFLM cannot run (with the fix named)."""
from __future__ import annotations

import numpy as np
import pytest

import tinyopt  # noqa: F401  (TF_USE_LEGACY_KERAS=1 before TensorFlow)
from tinyopt.analysis import analyze, raise_for_audit
from tinyopt.errors import TinyoptError

# The converter warns about input statistics on every int8 conversion; it is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")


@pytest.fixture(scope="module")
def tf():
    from tinyopt.quiet import import_tensorflow
    return import_tensorflow()


@pytest.fixture(scope="module")
def keras(tf):
    import tf_keras
    return tf_keras


def convert(tf, model, mode: str, input_shape) -> bytes:
    """mode: int8 (full integer, int8 I/O), hybrid (dynamic range), float16, float."""
    from tinyopt.quiet import captured_stderr
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode in ("int8", "hybrid", "float16"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        def representative():
            rng = np.random.default_rng(0)
            for _ in range(8):
                yield [rng.uniform(-1, 1, (1, *input_shape)).astype(np.float32)]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    with captured_stderr():
        return conv.convert()


@pytest.fixture(scope="module")
def cnn(tf, keras) -> bytes:
    """conv 3x3 -> depthwise 3x3 -> max pool -> 1x1 conv + add -> avg pool -> dense -> softmax."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)   # 8x8x4
    x = keras.layers.DepthwiseConv2D(3, padding="valid", activation="relu", name="dw")(x)  # 6x6x4
    p = keras.layers.MaxPooling2D(2, name="maxpool")(x)                                  # 3x3x4
    q = keras.layers.Conv2D(4, 1, name="pw")(p)                                          # 3x3x4
    x = keras.layers.Add(name="add")([p, q])
    x = keras.layers.AveragePooling2D(3, name="avgpool")(x)                              # 1x1x4
    x = keras.layers.Flatten(name="flatten")(x)
    out = keras.layers.Dense(5, activation="softmax", name="fc")(x)
    return convert(tf, keras.Model(inp, out), "int8", (8, 8, 3))


# Hand-computed counts for the CNN above.
CNN_MACS = {
    "CONV_2D:conv": 8 * 8 * 4 * 3 * 3 * 3,      # out_h*out_w*out_c*k_h*k_w*in_c = 6912
    "DEPTHWISE_CONV_2D:dw": 6 * 6 * 4 * 3 * 3,  # out_h*out_w*out_c*k_h*k_w      = 1296
    "CONV_2D:pw": 3 * 3 * 4 * 1 * 1 * 4,        # 144
    "FULLY_CONNECTED:fc": 4 * 5,                # in*out                         = 20
}
CNN_OTHER = {
    "MAX_POOL_2D:maxpool": 3 * 3 * 4 * 2 * 2,   # out elements * window = 144
    "ADD:add": 3 * 3 * 4,                       # out elements = 36
    "AVERAGE_POOL_2D:avgpool": 1 * 1 * 4 * 3 * 3,  # 36
}


def test_cnn_macs_per_op_kind_match_hand_count(cnn):
    a = analyze(cnn)
    assert a.audit_ok, a.audit.to_json()
    got = {f"{op.name}:{op.layer}": op for op in a.ops}
    for key, macs in CNN_MACS.items():
        assert got[key].macs == macs, key
        assert got[key].other_ops == 0, key
    for key, other in CNN_OTHER.items():
        assert got[key].other_ops == other, key
        assert got[key].macs == 0, key
    softmax = next(op for op in a.ops if op.name == "SOFTMAX")
    assert softmax.other_ops == 5
    assert a.totals.macs == sum(CNN_MACS.values()) == 8372


def test_cnn_params_bytes_and_quant_kinds(cnn):
    a = analyze(cnn)
    got = {op.layer: op for op in a.ops}
    conv = got["conv"]
    # 4 filters of 3x3x3 int8 + 4 int32 biases
    assert conv.params == 4 * 27 + 4
    assert conv.weight_bytes == 4 * 27 + 4 * 4
    assert conv.output_bytes == 8 * 8 * 4
    weights = next(t for t in conv.inputs if t.constant and t.dtype == "INT8")
    assert weights.quant == "per-channel" and weights.shape == (4, 3, 3, 3)
    fc_weights = next(t for t in got["fc"].inputs if t.constant and t.dtype == "INT8")
    assert fc_weights.quant in ("per-channel", "per-tensor")   # TF 2.21: per-channel FC
    assert all(t.dtype == "INT8" for op in a.ops for t in op.outputs)
    assert a.totals.params == sum(op.params for op in a.ops)
    assert a.totals.model_bytes == len(cnn)


def test_cnn_arena_equals_tflm_runtime(cnn):
    from tinyopt.tflm_runtime import Runner
    a = analyze(cnn)
    usage = Runner(cnn).arena_usage()
    assert a.arena.tflm_bytes == usage.total
    assert (a.arena.head_bytes, a.arena.tail_bytes) == (usage.head, usage.tail)
    assert a.arena.firmware_bytes % 16 == 0
    assert a.arena.firmware_bytes >= a.arena.tflm_bytes + 1024
    # lifetimes give a lower bound of what the planner needs
    assert 0 < a.arena.peak_activation_bytes <= a.arena.head_bytes
    # the biggest moment: the 8x8x4 conv output and the 8x8x3 input are both alive
    assert a.arena.peak_activation_bytes >= 8 * 8 * 4 + 8 * 8 * 3


def test_arena_of_small_model_with_large_activations(tf, keras):
    """Few weights, 96x96x8 activations: the arena is far larger than the model file."""
    from tinyopt.tflm_runtime import Runner
    inp = keras.Input((96, 96, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", name="wide")(inp)
    out = keras.layers.Dense(2, name="d")(keras.layers.GlobalAveragePooling2D(name="gap")(x))
    model = convert(tf, keras.Model(inp, out), "int8", (96, 96, 3))
    a = analyze(model)
    assert a.audit_ok and a.arena.measured, a.audit.to_json()
    assert a.arena.head_bytes >= 96 * 96 * (3 + 8) > 10 * len(model)
    assert a.arena.tflm_bytes == Runner(model, arena_size=4 << 20).arena_usage().total
    conv = next(op for op in a.ops if op.layer == "wide")
    assert conv.macs == 96 * 96 * 8 * 3 * 3 * 3


def test_cnn_json_has_required_keys(cnn):
    import json
    data = json.loads(json.dumps(analyze(cnn).to_json()))
    op = data["ops"][0]
    for key in ("name", "macs", "params", "weight_bytes", "output_bytes", "index", "inputs",
                "outputs", "options", "other_ops"):
        assert key in op
    assert {"shape", "dtype", "quant"} <= set(op["inputs"][0])
    for key in ("macs", "params", "weight_bytes", "model_bytes"):
        assert isinstance(data["totals"][key], int)
    for key in ("tflm_bytes", "head_bytes", "tail_bytes", "firmware_bytes", "peak_activation_bytes"):
        assert isinstance(data["arena"][key], int)
    assert data["audit"]["errors"] == [] and "warnings" in data["audit"]
    assert "fit" not in data


def _codes(analysis):
    return [f.code for f in analysis.audit.errors]


def test_audit_float_model(tf, keras):
    inp = keras.Input((6, 6, 2), batch_size=1)
    out = keras.layers.Dense(3, name="head")(keras.layers.Flatten()(
        keras.layers.Conv2D(2, 3, name="feat")(inp)))
    a = analyze(convert(tf, keras.Model(inp, out), "float", (6, 6, 2)))
    assert _codes(a)[0] == "float-model"
    first = a.audit.errors[0]
    assert "int8" in first.hint and "representative" in first.hint and "tinyopt convert" in first.hint
    assert first.layer == "feat"
    assert not a.arena.measured      # the runtime was not started on a float model
    with pytest.raises(TinyoptError, match="float32") as info:
        raise_for_audit(a, "tflm")
    assert "representative" in info.value.hint


def test_audit_hybrid_model(tf, keras):
    inp = keras.Input((16,), batch_size=1)
    x = keras.layers.Dense(128, activation="relu", name="big_dense")(inp)   # 2048 weights: quantized
    out = keras.layers.Dense(4, name="out")(x)
    a = analyze(convert(tf, keras.Model(inp, out), "hybrid", (16,)))
    assert _codes(a)[0] == "hybrid-model", a.audit.to_json()
    first = a.audit.errors[0]
    assert "dynamic-range" in first.message and first.layer == "big_dense"
    assert "representative dataset" in first.hint
    assert not a.arena.measured


def test_audit_float_io_around_int8(tf, keras):
    inp = keras.Input((8,), batch_size=1)
    out = keras.layers.Dense(4, name="d")(inp)
    model = convert(tf, keras.Model(inp, out), "int8", (8,))
    a = analyze(model)
    assert a.audit_ok
    # the same model converted without int8 input/output types: QUANTIZE/DEQUANTIZE at the edges
    conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([np.ones((1, 8), np.float32)] for _ in range(4))
    from tinyopt.quiet import captured_stderr
    with captured_stderr():
        float_io = conv.convert()
    b = analyze(float_io)
    assert [f.code for f in b.audit.errors] == ["float-io", "float-io"], b.audit.to_json()
    assert "inference_input_type" in b.audit.errors[0].hint


def test_audit_float16_weights(tf, keras):
    inp = keras.Input((16,), batch_size=1)
    out = keras.layers.Dense(8, name="d16")(inp)
    a = analyze(convert(tf, keras.Model(inp, out), "float16", (16,)))
    assert _codes(a)[0] == "float16-weights"
    assert "tf.float16" in a.audit.errors[0].hint


def test_audit_lstm_not_unrolled(tf, keras):
    # A generic RNN over an LSTM cell converts to a WHILE loop over extra subgraphs.
    # (Converted as float: the int8 converter crashes on this graph in TF 2.21.)
    inp = keras.Input((6, 3), batch_size=1)
    x = keras.layers.RNN(keras.layers.LSTMCell(4), name="rnn_lstm")(inp)
    out = keras.layers.Dense(2, name="cls")(x)
    a = analyze(convert(tf, keras.Model(inp, out), "float", (6, 3)))
    assert _codes(a)[0] == "multiple-subgraphs"
    first = a.audit.errors[0]
    assert "WHILE" in first.message and first.layer == "rnn_lstm"
    assert "unroll=True" in first.hint


def test_audit_dynamic_batch_reshape(tf, keras):
    inp = keras.Input((4, 4, 2))                   # batch dimension left dynamic
    x = keras.layers.Conv2D(3, 3, padding="same", name="c")(inp)
    x = keras.layers.Lambda(lambda t: tf.reshape(t, (tf.shape(t)[0], 48)), name="dyn_reshape")(x)
    out = keras.layers.Dense(2, name="d")(x)
    a = analyze(convert(tf, keras.Model(inp, out), "int8", (4, 4, 2)))
    assert _codes(a) == ["shape-chain"], a.audit.to_json()   # int8 otherwise: only this error
    first = a.audit.errors[0]
    assert "SHAPE -> STRIDED_SLICE" in first.message and first.layer == "dyn_reshape"
    assert "batch_size=1" in first.hint


def test_audit_unsupported_and_backend_ops(tf, keras):
    inp = keras.Input((8,), batch_size=1)
    x = keras.layers.Dense(8, activation="gelu", name="gelu_dense")(inp)
    out = keras.layers.Dense(4, activation="tanh", name="tanh_dense")(x)
    a = analyze(convert(tf, keras.Model(inp, out), "int8", (8,)))
    ops = {op.name for op in a.ops}
    assert "GELU" in ops and "TANH" in ops
    errors = {f.code: f for f in a.audit.errors}
    assert "unsupported-op" in errors and "GELU" in errors["unsupported-op"].message
    assert "tflm_ops.txt" in errors["unsupported-op"].hint
    aot = [f.message for f in a.audit.backend_errors["aot"]]
    assert any("TANH" in m for m in aot) and not any("FULLY_CONNECTED" in m for m in aot)


def test_backend_errors_only_for_that_backend(cnn, tf, keras):
    inp = keras.Input((8,), batch_size=1)
    out = keras.layers.Dense(4, activation="tanh", name="t")(inp)
    a = analyze(convert(tf, keras.Model(inp, out), "int8", (8,)))
    assert a.audit_ok and a.arena.measured
    raise_for_audit(a, "tflm")
    with pytest.raises(TinyoptError, match="TANH.*aot") as info:
        raise_for_audit(a, "aot")
    assert "--backend tflm" in info.value.hint
    raise_for_audit(analyze(cnn), "aot")   # every op of the CNN is in the aot set
