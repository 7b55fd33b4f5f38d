"""Per-operator bit-exactness of the aot backend against the TFLM runtime, on tiny models
written directly with the TFLite schema: strides, SAME/VALID padding, dilation, depth
multipliers, per-channel and per-tensor scales, broadcasting, fused activations, and every
operator the backend lists."""
from __future__ import annotations

import pytest
from aot_builder import GraphBuilder
from aot_check import check_bit_exact

from tinyopt.analysis.op_support import aot_ops


def conv(seed, hw=(9, 9), cin=3, cout=8, k=(3, 3), stride=(1, 1), dil=(1, 1), padding="SAME", act="NONE",
         per_channel=True, bias=True, sparsity=0.0):
    g = GraphBuilder(seed)
    x = g.act([1, *hw, cin])
    w = g.weights([cout, *k, cin], per_channel=per_channel, sparsity=sparsity)
    ins = [x, w, g.bias(cout, g.scale_of(x), w) if bias else -1]
    eff = [(k[i] - 1) * dil[i] + 1 for i in range(2)]
    out = [(hw[i] + stride[i] - 1) // stride[i] if padding == "SAME" else (hw[i] - eff[i] + stride[i]) // stride[i]
           for i in range(2)]
    y = g.act([1, *out, cout])
    g.op("CONV_2D", ins, [y], "Conv2DOptions", padding=padding, strideH=stride[0], strideW=stride[1],
         dilationHFactor=dil[0], dilationWFactor=dil[1], fusedActivationFunction=act)
    return g.build([x], [y])


def depthwise(seed, hw=(8, 7), cin=4, mult=1, k=(3, 3), stride=(1, 1), dil=(1, 1), padding="SAME", act="NONE",
              per_channel=True):
    g = GraphBuilder(seed)
    x = g.act([1, *hw, cin])
    w = g.weights([1, *k, cin * mult], channels_dim=3, per_channel=per_channel)
    b = g.bias(cin * mult, g.scale_of(x), w)
    eff = [(k[i] - 1) * dil[i] + 1 for i in range(2)]
    out = [(hw[i] + stride[i] - 1) // stride[i] if padding == "SAME" else (hw[i] - eff[i] + stride[i]) // stride[i]
           for i in range(2)]
    y = g.act([1, *out, cin * mult])
    g.op("DEPTHWISE_CONV_2D", [x, w, b], [y], "DepthwiseConv2DOptions", padding=padding, strideH=stride[0],
         strideW=stride[1], depthMultiplier=mult, dilationHFactor=dil[0], dilationWFactor=dil[1],
         fusedActivationFunction=act)
    return g.build([x], [y])


def fully_connected(seed, batch=1, k=40, n=12, act="NONE", per_channel=False, sparsity=0.0):
    g = GraphBuilder(seed)
    x = g.act([batch, k])
    w = g.weights([n, k], per_channel=per_channel, sparsity=sparsity)
    b = g.bias(n, g.scale_of(x), w)
    y = g.act([batch, n])
    g.op("FULLY_CONNECTED", [x, w, b], [y], "FullyConnectedOptions", fusedActivationFunction=act)
    return g.build([x], [y])


def binary(seed, op, a_shape, b_shape, out_shape, act="NONE", const_b=False):
    g = GraphBuilder(seed)
    a = g.act(a_shape)
    if const_b:
        b = g.tensor(b_shape, "INT8", 0.05, 3, data=g.rng.integers(-128, 128, b_shape))
    else:
        b = g.act(b_shape)
    y = g.act(out_shape)
    g.op(op, [a, b], [y], "AddOptions" if op == "ADD" else "MulOptions", fusedActivationFunction=act)
    # the firmware interface has one input: a variable second operand gets a producer op
    if const_b:
        return g.build([a], [y])
    return _two_inputs_via_split(g, a, b, y, a_shape, b_shape)


def add_unequal_scales(seed, shape=(1, 4, 5, 8)):
    """ADD of operands whose scales differ 9x: the smaller one's rescale takes the one-step
    rounding (to_mbqm_rs), the larger one's the two-step form."""
    g = GraphBuilder(seed)
    a, b, y = g.act(shape, scale=0.09), g.act(shape, scale=0.01), g.act(shape, scale=0.1)
    g.op("ADD", [a, b], [y], "AddOptions", fusedActivationFunction="RELU")
    return _two_inputs_via_split(g, a, b, y, shape, shape)


def _two_inputs_via_split(g, a, b, y, a_shape, b_shape):
    """Feed both operands from one model input: a = the input requantized, b = a requantized (or
    a MEAN of it). Both operands die at the binary op, which may then write over either."""
    src = g.act(a_shape)
    ops = list(g.ops)          # the binary op goes after the two producers
    g.ops.clear()
    g.op("QUANTIZE", [src], [a])
    n = len(a_shape)
    axes = [i for i in range(n) if b_shape[i] == 1 and a_shape[i] != 1]
    if axes:
        g.op("MEAN", [a, g.const_i32(axes)], [b], "ReducerOptions", keepDims=True)
    else:
        g.op("QUANTIZE", [a], [b])
    g.ops.extend(ops)
    return g.build([src], [y])


def _conv_op(g, x, hw, cin, cout, k=(3, 3), stride=(1, 1), act="NONE", sparsity=0.0):
    """A SAME convolution of x appended to g; returns its output tensor."""
    w = g.weights([cout, *k, cin], sparsity=sparsity)
    out = [(hw[i] + stride[i] - 1) // stride[i] for i in range(2)]
    y = g.act([1, *out, cout])
    g.op("CONV_2D", [x, w, g.bias(cout, g.scale_of(x), w)], [y], "Conv2DOptions", padding="SAME",
         strideH=stride[0], strideW=stride[1], dilationHFactor=1, dilationWFactor=1, fusedActivationFunction=act)
    return y


def residual(seed, hw=(7, 9), c=8, k=(3, 3), side=1, shortcut=False, from_input=False, sparsity=0.0, act="RELU"):
    """A residual block whose ADD the aot backend folds into the convolution producing one operand
    (fusion.py): x -> conv A -> t; then ADD(t, conv B(t)) with conv B's output as the ADD's operand
    `side`; shortcut: ADD(conv A(x), conv 1x1(x)), the 1x1 run after conv A as in ResNet's later
    stages; from_input: ADD(x, conv(x)), the residual being the model input."""
    g = GraphBuilder(seed)
    x = g.act([1, *hw, c])
    if from_input:
        res, y = x, _conv_op(g, x, hw, c, c, k, act="RELU", sparsity=sparsity)
    elif shortcut:
        res = _conv_op(g, x, hw, c, c, k, act="RELU")
        y = _conv_op(g, x, hw, c, c, (1, 1), sparsity=sparsity)
    else:
        res = _conv_op(g, x, hw, c, c, k, act="RELU")
        y = _conv_op(g, res, hw, c, c, k, sparsity=sparsity)
    z = g.act([1, *hw, c])
    g.op("ADD", [y, res] if side == 0 else [res, y], [z], "AddOptions", fusedActivationFunction=act)
    return g.build([x], [z])


def residual_reshaped_after(seed, hw=(5, 6), c=8):
    """ADD(RESHAPE(conv 1x1(x)), conv 3x3(x)) with the 1x1 run after the 3x3: the 3x3 is read by the
    ADD alone, but its residual operand (an alias of the 1x1's output) does not exist yet when the
    3x3 runs, so nothing may be folded."""
    g = GraphBuilder(seed)
    x = g.act([1, *hw, c])
    y = _conv_op(g, x, hw, c, c, (3, 3))
    r = _conv_op(g, x, hw, c, c, (1, 1))
    r2 = g.act([1, *hw, c], g.scale_of(r), int(g.tensors[r].quantization.zeroPoint[0]))
    g.op("RESHAPE", [r, g.const_i32([1, *hw, c])], [r2], "ReshapeOptions", newShape=[1, *hw, c])
    z = g.act([1, *hw, c])
    g.op("ADD", [r2, y], [z], "AddOptions", fusedActivationFunction="NONE")
    return g.build([x], [z])


def pool(seed, op, hw=(9, 8), c=5, f=(3, 3), stride=(2, 2), padding="SAME", act="NONE"):
    g = GraphBuilder(seed)
    x = g.act([1, *hw, c])
    out = [(hw[i] + stride[i] - 1) // stride[i] if padding == "SAME" else (hw[i] - f[i] + stride[i]) // stride[i]
           for i in range(2)]
    y = g.act([1, *out, c], g.scale_of(x), int(g.tensors[x].quantization.zeroPoint[0]))
    g.op(op, [x], [y], "Pool2DOptions", padding=padding, strideH=stride[0], strideW=stride[1],
         filterHeight=f[0], filterWidth=f[1], fusedActivationFunction=act)
    return g.build([x], [y])


def unary(seed, op, shape=(2, 3, 20), out_scale=None, out_zp=None, options=None, **fields):
    g = GraphBuilder(seed)
    x = g.act(list(shape), float(g.rng.uniform(0.02, 0.3)))
    y = g.act(list(shape), out_scale, out_zp)
    g.op(op, [x], [y], options, **fields)
    return g.build([x], [y])


def mean(seed, shape, axes, keep):
    g = GraphBuilder(seed)
    x = g.act(shape)
    out = [1 if i in axes else d for i, d in enumerate(shape)] if keep else [d for i, d in enumerate(shape)
                                                                             if i not in axes]
    y = g.act(out)
    g.op("MEAN", [x, g.const_i32(axes)], [y], "ReducerOptions", keepDims=keep)
    return g.build([x], [y])


def pad(seed):
    g = GraphBuilder(seed)
    x = g.act([1, 4, 5, 3])
    y = g.act([1, 7, 6, 3], g.scale_of(x), int(g.tensors[x].quantization.zeroPoint[0]))
    g.op("PAD", [x, g.const_i32([[0, 0], [1, 2], [0, 1], [0, 0]])], [y], "PadOptions")
    return g.build([x], [y])


def concat(seed, axis):
    g = GraphBuilder(seed)
    x = g.act([1, 4, 3, 2], 0.05, 1)
    a = g.act([1, 4, 3, 2], 0.05, 1)
    c_shape = [1, 4, 3, 2]
    c = g.tensor(c_shape, "INT8", 0.05, 1, data=g.rng.integers(-128, 128, c_shape))
    out = list(c_shape)
    out[axis] *= 3
    y = g.act(out, 0.05, 1)
    g.op("RELU6", [x], [a])
    g.op("CONCATENATION", [x, a, c], [y], "ConcatenationOptions", axis=axis, fusedActivationFunction="NONE")
    return g.build([x], [y])


def float_roundtrip(seed):
    g = GraphBuilder(seed)
    x = g.act([1, 30], 0.07, 5)
    f = g.tensor([1, 30], "FLOAT32")
    y = g.act([1, 30], 0.05, -7)
    g.op("DEQUANTIZE", [x], [f])
    g.op("QUANTIZE", [f], [y])
    return g.build([x], [y])


def reshape_chain(seed):
    g = GraphBuilder(seed)
    x = g.act([1, 4, 4, 2])
    r = g.act([1, 32], g.scale_of(x), int(g.tensors[x].quantization.zeroPoint[0]))
    w = g.weights([6, 32], per_channel=False)
    b = g.bias(6, g.scale_of(x), w)
    y = g.act([1, 6])
    g.op("RESHAPE", [x, g.const_i32([1, 32])], [r], "ReshapeOptions", newShape=[1, 32])
    g.op("FULLY_CONNECTED", [r, w, b], [y], "FullyConnectedOptions", fusedActivationFunction="RELU")
    return g.build([x], [y])


CASES = {
    "conv_same_stride2_relu6_perchannel": lambda: conv(1, stride=(2, 2), act="RELU6"),
    "conv_valid_dilation2": lambda: conv(2, hw=(11, 10), padding="VALID", dil=(2, 2)),
    "conv_same_dilation_stride_mixed": lambda: conv(3, hw=(10, 9), stride=(2, 1), dil=(1, 2), act="RELU"),
    "conv_per_tensor_no_bias_5x3": lambda: conv(4, k=(5, 3), per_channel=False, bias=False),
    "conv_1x1_stride2_valid": lambda: conv(5, k=(1, 1), stride=(2, 2), padding="VALID", cin=16, cout=12),
    "conv_sparse_75": lambda: conv(6, cin=16, cout=8, sparsity=0.75, act="RELU"),
    "depthwise_same": lambda: depthwise(7, act="RELU"),
    "depthwise_mult2_stride2": lambda: depthwise(8, mult=2, stride=(2, 2), per_channel=False),
    "depthwise_mult3_valid_dilation": lambda: depthwise(9, hw=(9, 9), mult=3, padding="VALID", dil=(2, 2)),
    "fc_per_tensor_relu": lambda: fully_connected(10, act="RELU"),
    "fc_per_channel_batch2": lambda: fully_connected(11, batch=2, per_channel=True, act="RELU6"),
    "fc_sparse_80": lambda: fully_connected(12, k=100, n=20, sparsity=0.8),
    "add_same_shape_relu": lambda: binary(13, "ADD", [1, 4, 5, 3], [1, 4, 5, 3], [1, 4, 5, 3], act="RELU"),
    "add_broadcast_channels": lambda: binary(14, "ADD", [1, 4, 5, 3], [1, 1, 1, 3], [1, 4, 5, 3]),
    "add_const_broadcast": lambda: binary(15, "ADD", [1, 4, 5, 3], [1, 4, 1, 3], [1, 4, 5, 3], const_b=True),
    "mul_same_shape": lambda: binary(16, "MUL", [1, 6, 7], [1, 6, 7], [1, 6, 7], act="RELU6"),
    "mul_broadcast_rows": lambda: binary(17, "MUL", [1, 4, 5, 3], [1, 4, 1, 1], [1, 4, 5, 3]),
    "mul_const_broadcast": lambda: binary(18, "MUL", [2, 5], [1, 5], [2, 5], const_b=True),
    "avgpool_same_stride2": lambda: pool(19, "AVERAGE_POOL_2D", act="RELU"),
    "avgpool_valid_global": lambda: pool(20, "AVERAGE_POOL_2D", hw=(5, 5), f=(5, 5), stride=(1, 1), padding="VALID"),
    "maxpool_same_stride2": lambda: pool(21, "MAX_POOL_2D"),
    "maxpool_valid_2x2": lambda: pool(22, "MAX_POOL_2D", hw=(8, 6), f=(2, 2), padding="VALID", act="RELU6"),
    "softmax_rows": lambda: unary(23, "SOFTMAX", (3, 10), 1.0 / 256, -128, "SoftmaxOptions", beta=1.0),
    "softmax_beta_wide": lambda: unary(24, "SOFTMAX", (1, 37), 1.0 / 256, -128, "SoftmaxOptions", beta=0.7),
    "logistic": lambda: unary(25, "LOGISTIC", (1, 64), 1.0 / 256, -128),
    "relu_requantized": lambda: unary(26, "RELU"),
    "relu6": lambda: unary(27, "RELU6"),
    "quantize_int8_requant": lambda: unary(28, "QUANTIZE"),
    "dequantize_quantize_float": lambda: float_roundtrip(29),
    "mean_spatial_keepdims": lambda: mean(30, [1, 5, 6, 7], [1, 2], True),
    "mean_last_axis_drop": lambda: mean(31, [1, 4, 9], [2], False),
    "pad_4d": lambda: pad(32),
    "concat_channels_const": lambda: concat(33, 3),
    "concat_height": lambda: concat(34, 1),
    "reshape_in_place": lambda: reshape_chain(35),
    # shape classes of the blocked kernels (2 channels x 2 pixels conv, 4-channel depthwise,
    # 4-row fully connected): interior pairs, an odd last pixel, rows not a multiple of 4,
    # odd channel counts, padding at every border
    "conv_3x3_s1_pairs_c16": lambda: conv(36, hw=(7, 7), cin=16, cout=16, act="RELU"),
    "conv_3x3_s1_odd_channels": lambda: conv(37, hw=(6, 9), cin=5, cout=7),
    "conv_3x3_s1_row_remainder": lambda: conv(38, hw=(6, 8), cin=3, cout=6, padding="VALID"),
    "conv_1x1_s1_gemm": lambda: conv(39, hw=(5, 7), k=(1, 1), cin=12, cout=10, padding="VALID"),
    "conv_3x3_s2_same_borders": lambda: conv(40, hw=(10, 11), cin=8, cout=4, stride=(2, 2)),
    "depthwise_c8_s2_same": lambda: depthwise(41, hw=(9, 10), cin=8, stride=(2, 2), act="RELU6"),
    "depthwise_c6_not_multiple_of_4": lambda: depthwise(42, hw=(6, 6), cin=6),
    "depthwise_c8_5x5_borders": lambda: depthwise(43, hw=(8, 8), cin=8, k=(5, 5)),
    "depthwise_c4_mult2": lambda: depthwise(44, hw=(6, 5), cin=4, mult=2),
    "fc_4_rows_odd_depth": lambda: fully_connected(45, k=37, n=8, act="RELU"),
    "fc_4_rows_per_channel": lambda: fully_connected(46, k=64, n=12, per_channel=True),
    # the DSP matrix-product conv (zero-point padded patches, 1x1 in place) and the depthwise
    # border path: one input channel with a tall kernel (kws' first layer), an odd last
    # pixel of a row with K not a multiple of 4, 1x1 stride 2 with an odd row, depthwise
    # on a 5-wide map (more border than interior), SAME padding on one side only
    "conv_10x4_s2_c1_borders": lambda: conv(47, hw=(15, 10), cin=1, cout=8, k=(10, 4), stride=(2, 2), act="RELU"),
    "conv_3x3_s1_odd_width_k27": lambda: conv(48, hw=(7, 9), cin=3, cout=6, act="RELU6"),
    "conv_1x1_s2_same_odd_row": lambda: conv(49, hw=(7, 9), k=(1, 1), stride=(2, 2), cin=8, cout=4),
    "conv_5x5_s1_c4_wide_borders": lambda: conv(50, hw=(6, 7), cin=4, cout=2, k=(5, 5)),
    "depthwise_c8_narrow_w5_relu": lambda: depthwise(51, hw=(9, 5), cin=8, act="RELU"),
    "depthwise_c4_s2_same_one_sided": lambda: depthwise(52, hw=(8, 9), cin=4, stride=(2, 2)),
    "depthwise_c12_3x3_valid": lambda: depthwise(53, hw=(6, 7), cin=12, padding="VALID"),
    # rows too wide for the padded row buffer (border path) and windows too large for the
    # patch (row-wise path)
    "depthwise_c20_wide_border_path": lambda: depthwise(54, hw=(5, 40), cin=20, act="RELU6"),
    "conv_3x3_c72_row_path": lambda: conv(55, hw=(5, 6), cin=72, cout=4),
    "add_unequal_scales": lambda: add_unequal_scales(56),
    # fully connected with an input too long for the extended copy (word-wise path)
    "fc_4_rows_long_input": lambda: fully_connected(57, k=1100, n=8, act="RELU"),
    # a residual ADD folded into the convolution before it (fusion.py), on every conv path: the
    # DSP matrix product (conv value as the ADD's first or second operand), the 1x1 shortcut,
    # the model input as the residual, the sparse and the portable odd-channel paths, and the
    # row-wise DSP path (K > 576)
    "residual_conv_add_second": lambda: residual(58),
    "residual_conv_add_first": lambda: residual(59, side=0, act="NONE"),
    "residual_shortcut_1x1": lambda: residual(60, shortcut=True),
    "residual_from_input": lambda: residual(61, hw=(6, 5), from_input=True),
    "residual_sparse": lambda: residual(62, sparsity=0.8),
    "residual_odd_channels": lambda: residual(63, c=7),
    "residual_row_path_k648": lambda: residual(64, hw=(5, 6), c=72),
    # depthwise rows wider than the scratch allows: column tiles, the last one shorter
    "depthwise_c16_tiled_rows": lambda: depthwise(65, hw=(3, 61), cin=16, act="RELU"),
    "depthwise_c16_tiled_rows_s2": lambda: depthwise(66, hw=(3, 69), cin=16, stride=(2, 2)),
    # pruned convolutions as non-zero lists (the "auto" storage): four-pixel groups with a shorter
    # last one, padding at the borders, dilation and stride, a fused residual ADD, an all-zero channel
    "conv_list_80_borders": lambda: conv(67, hw=(7, 9), cin=8, cout=6, sparsity=0.8, act="RELU"),
    "conv_list_90_s2_dilated": lambda: conv(68, hw=(11, 10), cin=5, cout=4, stride=(2, 1), dil=(1, 2), sparsity=0.9),
    "conv_list_residual": lambda: residual(69, c=8, sparsity=0.85),
    "conv_list_empty_channel": lambda: conv(75, hw=(5, 6), cin=4, cout=3, k=(1, 1), padding="VALID", sparsity=0.99),
    # a residual that is also the convolution's input, 1x1 stride 1 with an odd channel count, as a
    # non-zero list (four pixels written per channel: its window lag alone is too small); a
    # RESHAPE'd residual computed after the convolution (nothing folded)
    "residual_from_input_1x1_list": lambda: residual(77, hw=(5, 6), c=15, k=(1, 1), from_input=True, sparsity=0.8),
    "residual_reshaped_after": lambda: residual_reshaped_after(78),
    # a window of 576 taps: the second pixel's extended inputs lie beyond LDRD's offset range
    "conv_3x3_c64_far_second_pixel": lambda: conv(76, hw=(4, 5), cin=64, cout=4, act="RELU"),
}


def case_options(name: str) -> dict:
    """The cases with pruned weights are generated with sparse storage wherever it is smaller
    ("size"): the default ("auto") keeps them dense on DSP cores, where that is faster."""
    return {"sparse": "size"} if "sparse" in name else {}


# the cases above run on the emulated cores too (tests/test_aot_kernels_cores.py)
KERNEL_CASES = ["conv_same_stride2_relu6_perchannel", "conv_1x1_stride2_valid", "conv_valid_dilation2",
                "conv_per_tensor_no_bias_5x3", "conv_sparse_75", "depthwise_same", "depthwise_mult2_stride2",
                "depthwise_mult3_valid_dilation", "fc_per_tensor_relu", "fc_per_channel_batch2", "fc_sparse_80",
                "add_same_shape_relu", "add_broadcast_channels", "mul_same_shape",
                *[name for name in CASES if list(CASES).index(name) >= list(CASES).index("conv_3x3_s1_pairs_c16")]]


def test_cases_cover_every_listed_operator():
    from tinyopt.analysis.reader import read_tflite
    seen = set()
    for make in CASES.values():
        seen.update(read_tflite(make()).opcodes)
    assert aot_ops() <= seen, sorted(aot_ops() - seen)


@pytest.mark.parametrize("name", sorted(CASES))
def test_operator_bit_exact(name, tmp_path):
    check_bit_exact(CASES[name](), tmp_path, samples=60, seed=len(name), options=case_options(name))


@pytest.mark.parametrize("name", ["conv_sparse_75", "depthwise_mult3_valid_dilation", "add_broadcast_channels",
                                  "softmax_beta_wide", "logistic", "mean_spatial_keepdims", "pad_4d",
                                  "dequantize_quantize_float", "fc_sparse_80", "concat_channels_const",
                                  "conv_list_80_borders", "conv_list_residual", "residual_from_input"])
def test_operator_sanitizers(name, tmp_path):
    check_bit_exact(CASES[name](), tmp_path, samples=30, sanitize=True, options=case_options(name))


def test_sparse_layers_are_chosen_and_smaller(tmp_path):
    fc75 = fully_connected(40, k=256, n=32, sparsity=0.75)
    lib, _ = check_bit_exact(fc75, tmp_path, samples=20, options={"sparse": "size"})
    (layer,) = lib.summary["sparse_layers"]
    assert layer["sparse_bytes"] <= 0.5 * layer["dense_bytes"]
    dense = check_bit_exact(fc75, tmp_path / "d", samples=20, options={"sparse": "off"})[0]
    assert dense.summary["sparse_layers"] == []
    assert lib.summary["weight_bytes"] < dense.summary["weight_bytes"]
    # an unpruned layer stays dense
    unpruned = check_bit_exact(fully_connected(41, k=64, n=8), tmp_path / "u", samples=5)[0]
    assert unpruned.summary["sparse_layers"] == []


def test_auto_sparse_storage_is_never_the_slower_one():
    """"auto" (sparse.thresholds, from measurements on the emulated M0 and M4): a convolution with
    75 % zeros as a non-zero list on both cores; a fully connected layer as a bitmap only from 90 %
    zeros (M0) / 93 % (M4, whose dense kernel is faster), dense below; 60 % zeros stay dense."""
    from tinyopt.boards import load_board
    from tinyopt.codegen.aot import model_library
    from tinyopt.errors import TinyoptError

    def encodings(raw, board):
        return [layer["encoding"] for layer in model_library(raw, board=load_board(board)).summary["sparse_layers"]]
    for board in ("qemu-m0", "qemu-m4"):
        assert encodings(conv(70, cin=16, cout=8, sparsity=0.75), board) == ["non-zero list"]
        assert encodings(conv(71, cin=16, cout=8, sparsity=0.6), board) == []
        assert encodings(fully_connected(72, k=256, n=32, sparsity=0.75), board) == []
        assert encodings(fully_connected(73, k=256, n=32, sparsity=0.96), board) == ["bitmap"]
    # "size" takes the smaller encoding: the bitmap at 75 % zeros, the list at 99 %
    conv99 = conv(76, hw=(5, 5), cin=64, cout=64, sparsity=0.99)
    assert [layer["encoding"] for layer in model_library(conv99, options={"sparse": "size"}).summary["sparse_layers"]] \
        == ["non-zero list"]
    conv75 = conv(70, cin=16, cout=8, sparsity=0.75)
    assert [layer["encoding"] for layer in model_library(conv75, options={"sparse": "size"}).summary["sparse_layers"]] \
        == ["bitmap"]
    fc91 = fully_connected(74, k=512, n=32, sparsity=0.915)
    assert (encodings(fc91, "qemu-m0"), encodings(fc91, "qemu-m4")) == (["bitmap"], [])
    with pytest.raises(TinyoptError, match="not one of auto, size, off"):
        model_library(fully_connected(42), options={"sparse": "smallest"})


@pytest.mark.parametrize("name", sorted(n for n in CASES if n.startswith(("conv", "depthwise", "fc", "reshape"))))
def test_operator_bit_exact_without_bias_folding(name, tmp_path, monkeypatch):
    """The path taken when bias + offset * sum(weights) would overflow int32: offsets per MAC."""
    from tinyopt.codegen.aot import lowering
    monkeypatch.setattr(lowering.Lowerer, "folded", lambda self, *args: None)
    check_bit_exact(CASES[name](), tmp_path, samples=20, sanitize=name.endswith(("sparse_75", "dilation")),
                    options=case_options(name))


def test_residual_adds_are_folded_into_their_convolution():
    """Each residual case runs as one CONV_2D+ADD step, so the byte-exact checks above check the fused code."""
    from tinyopt.codegen.aot import memory_plan
    assert not any(s.startswith("CONV_2D+ADD") for s in memory_plan(CASES["residual_reshaped_after"]())["steps"])
    for name in (n for n in CASES if n.startswith("residual_") and n != "residual_reshaped_after"):
        steps = memory_plan(CASES[name]())["steps"]
        assert not any(s.startswith("ADD") for s in steps) and any(s.startswith("CONV_2D+ADD") for s in steps), \
            (name, steps)


def test_depthwise_tiled_cases_take_column_tiles():
    from tinyopt.analysis.reader import read_tflite
    from tinyopt.codegen.aot import lowering
    for name in ("depthwise_c16_tiled_rows", "depthwise_c16_tiled_rows_s2"):
        (step,) = lowering.lower(read_tflite(CASES[name]())).steps
        assert step.params["rows"] and step.params["TW"] < step.params["OW"], name
        assert step.params["OW"] % step.params["TW"] != 0, name


def test_pair_interleaved_weights_are_the_rows_in_read_order():
    """The DSP matrix product reads, per channel pair, 4 taps of one channel then 4 of the other."""
    import numpy as np

    from tinyopt.codegen.aot.ops.conv import pair_interleaved, pair_stride
    rng = np.random.default_rng(0)
    for k in (1, 3, 4, 9, 27, 64, 147):
        w = rng.integers(-128, 128, (6, k)).astype(np.int8)
        got = pair_interleaved(w).reshape(3, pair_stride(k))
        for j in range(3):
            want = []
            for g in range(k // 4):
                want += list(w[2 * j, 4 * g:4 * g + 4]) + list(w[2 * j + 1, 4 * g:4 * g + 4])
            want += list(w[2 * j, 4 * (k // 4):]) + list(w[2 * j + 1, 4 * (k // 4):])
            want += [0] * (pair_stride(k) - 2 * k)
            assert list(got[j]) == want, (k, j)


REQUANT_CHECK = r"""
#include "tinyopt_aot_math.h"
void to_report(long bad);   /* prints bad, then "done" */
static uint32_t s = 2463534242u;
static uint32_t rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; }
int main(void) {
  const int32_t edge[] = {INT32_MIN, INT32_MIN + 1, INT32_MAX, -1, 0, 1, -2, 2};
  long bad = 0;
  for (long i = 0; i < TO_ROUNDS; ++i) {
    int32_t a = (int32_t)rnd() >> (rnd() % 31);
    const int32_t m = (int32_t)((1u << 30) + 1u + rnd() % ((1u << 30) - 1u));
    const int e = 2 + (int)(rnd() % 30);
    const int32_t zp = (int32_t)(rnd() % 256) - 128;
    int64_t b = ((int64_t)1 << (e - 2)) * (1 + 2 * zp), bound;
    if (i % 10 == 0) a = edge[i / 10 % 8];
    bad += to_mbqm_rs(a, m, e - 2) != to_mbqm(a, m, -e);
    /* to_rqb where the lowering uses it: |a| m / 2^32 + |b| + 2 < 2^31 */
    bound = (((a < 0 ? -(int64_t)a : (int64_t)a) * m) >> 32) + (b < 0 ? -b : b) + 2;
    if (bound < ((int64_t)1 << 31)) {
      bad += to_rqb(a, m, (int32_t)b, e - 1) != to_mbqm(a, m, -e) + zp;
    }
  }
  to_report(bad);
  return 0;
}
"""


@pytest.mark.parametrize("core", ["host", "m0", "m4", "m55"])
def test_one_step_requantizations_match_tflm(core, tmp_path):
    """to_mbqm_rs (one 64-bit rounding, used where 2^30 < m < 2^31 and shift <= -2) and to_rqb (the
    same with the zero point folded into the high word, used where the accumulators cannot make it
    wrap) against to_mbqm (TFLM's two roundings) over random and extreme accumulators and every
    shift: on the host, and on emulated cores without (M0) and with the DSP extension, whose
    SMLAL forms are inline asm."""
    import subprocess

    from tinyopt.codegen.render import render
    (tmp_path / "tinyopt_aot_math.h").write_text(render("aot/tinyopt_aot_math.h.j2", model_name="t"))
    (tmp_path / "t.c").write_text(REQUANT_CHECK)
    if core == "host":
        (tmp_path / "report.c").write_text(
            '#include <stdio.h>\nvoid to_report(long bad) { printf("%ld\\ndone\\n", bad); }\n')
        subprocess.run(["cc", "-O2", "-std=c99", "-Wall", "-Werror", "-DTO_ROUNDS=3000000", "-o", str(tmp_path / "t"),
                        str(tmp_path / "t.c"), str(tmp_path / "report.c")], check=True)
        lines = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, check=True).stdout.split()[:-1]
    else:
        from aot_qemu import build_program, missing_tools, run_elf
        if missing_tools():
            pytest.skip(missing_tools())
        (tmp_path / "report.c").write_text(
            "void to_puts(const char *s);\n"
            "void to_report(long bad) {\n  char b[24];\n  int n = 22;\n  b[23] = 0;\n  b[22] = '\\n';\n"
            "  do {\n    b[--n] = (char)('0' + bad % 10);\n    bad /= 10;\n  } while (bad > 0);\n"
            "  to_puts(b + n);\n  to_puts(\"done\\n\");\n}\n")
        elf = build_program([tmp_path / "t.c", tmp_path / "report.c"], [tmp_path], core, tmp_path,
                            ["-O2", "-DTO_ROUNDS=200000"])
        lines = run_elf(elf, core)
    assert lines == ["0"], lines


# every windowed and flat elementwise case above runs in place (its output over its input)
IN_PLACE_CASES = [n for n in CASES if n.startswith(("conv", "depthwise"))
                  or n in ("add_same_shape_relu", "add_unequal_scales", "mul_same_shape")]


def test_windowed_and_flat_cases_write_over_their_input():
    """So the byte-exact cases above (host, sanitizers, emulated cores) check the in-place order."""
    from tinyopt.codegen.aot import memory_plan
    plain = [n for n in IN_PLACE_CASES if not memory_plan(CASES[n]())["in_place"]]
    assert plain == []


# the lag spares one pixel for the kernels that write two pixels together; on the host a conv writes
# a pixel's channels while it still reads its window, so one pixel less than that clobbers, and a
# depthwise output channel only overwrites the same input channel, read by then: two pixels less
@pytest.mark.parametrize("name, pixels", [("conv_3x3_s1_pairs_c16", 2), ("depthwise_c8_5x5_borders", 3)])
def test_a_lag_too_small_is_caught(name, pixels, tmp_path, monkeypatch):
    """With the output allowed to start closer to its input than the kernels' write order permits,
    the byte-exact check sees the clobbered input: the lag is needed, and a wrong one is caught."""
    from tinyopt.codegen.aot import memory_plan, streaming
    real = streaming.window_lag
    monkeypatch.setattr(streaming, "window_lag",
                        lambda B, H, W, C, OH, OW, O, *rest: real(B, H, W, C, OH, OW, O, *rest) - pixels * O)
    assert memory_plan(CASES[name]())["in_place"]
    with pytest.raises(AssertionError, match="outputs differ"):
        check_bit_exact(CASES[name](), tmp_path, samples=10, options=case_options(name))
