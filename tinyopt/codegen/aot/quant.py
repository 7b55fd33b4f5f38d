"""Host-side quantization arithmetic, computed exactly the way TFLM's int8 kernels do it in
their Prepare step (quantization_util.cc, kernel_util.cc), so that the generated C only
does the Eval-time integer work. The float/double order of operations matters: a
float32 product rounded before the double division (per-tensor FULLY_CONNECTED) gives a
different multiplier than the all-double per-channel formula."""
from __future__ import annotations

import math

import numpy as np


def tflite_round(x: float) -> int:
    """std::round: half away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier (double-rounding build): real ~= m * 2^(shift - 31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = tflite_round(q * float(1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def f32(x) -> float:
    return float(np.float32(x))


def conv_multipliers(input_scale: float, filter_scales, output_scale: float, channels: int):
    """PopulateConvolutionQuantizationParams: one (multiplier, shift) per output channel,
    all in double (conv, depthwise, per-channel fully connected)."""
    scales = [f32(s) for s in np.atleast_1d(filter_scales)]
    out = []
    for c in range(channels):
        s = scales[c] if len(scales) > 1 else scales[0]
        out.append(quantize_multiplier(f32(input_scale) * s / f32(output_scale)))
    return out


def fc_per_tensor_multiplier(input_scale: float, filter_scale: float, output_scale: float):
    """GetQuantizedConvolutionMultipler: the input*filter product is taken in float32."""
    product = f32(np.float32(input_scale) * np.float32(filter_scale))
    return quantize_multiplier(product / f32(output_scale))


def quantize_value(scale: float, zero_point: int, value: float) -> int:
    """kernel_util.cc Quantize(): float division, rounded half away from zero."""
    return int(zero_point) + tflite_round(f32(np.float32(value) / np.float32(scale)))


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 outputs."""
    lo, hi = -128, 127
    if activation == "RELU":
        lo = max(lo, quantize_value(scale, zero_point, 0.0))
    elif activation == "RELU6":
        lo = max(lo, quantize_value(scale, zero_point, 0.0))
        hi = min(hi, quantize_value(scale, zero_point, 6.0))
    elif activation == "RELU_N1_TO_1":
        lo = max(lo, quantize_value(scale, zero_point, -1.0))
        hi = min(hi, quantize_value(scale, zero_point, 1.0))
    elif activation not in ("NONE", None, 0):
        raise ValueError(activation)
    return lo, hi


def add_params(s1: float, s2: float, so: float) -> dict:
    """CalculateOpDataAdd for int8: inputs scaled to a common 2*max scale, left shift 20."""
    left_shift = 20
    twice_max = 2.0 * max(f32(s1), f32(s2))
    m1 = quantize_multiplier(f32(s1) / twice_max)
    m2 = quantize_multiplier(f32(s2) / twice_max)
    mo = quantize_multiplier(twice_max / (float(1 << left_shift) * f32(so)))
    return {"left_shift": left_shift, "m1": m1, "m2": m2, "mo": mo}


def mul_multiplier(s1: float, s2: float, so: float):
    return quantize_multiplier(f32(s1) * f32(s2) / f32(so))


def input_radius(integer_bits: int, left_shift: int, total_bits: int = 31) -> int:
    """CalculateInputRadius (double arithmetic, floored)."""
    value = 1.0 * ((1 << integer_bits) - 1) * float(1 << (total_bits - integer_bits)) / math.ldexp(1.0, left_shift)
    return int(math.floor(value))


def softmax_params(beta: float, input_scale: float) -> dict:
    """PreprocessSoftmaxScaling with 5 integer bits for the scaled input differences."""
    integer_bits = 5
    real = min(float(beta) * f32(input_scale) * float(1 << (31 - integer_bits)), float((1 << 31) - 1))
    mult, shift = quantize_multiplier(real)
    diff_min = -input_radius(integer_bits, shift)
    return {"multiplier": mult, "left_shift": shift, "diff_min": diff_min}


def logistic_params(input_scale: float, input_zero_point: int) -> dict:
    """CalculateArithmeticOpDataLogistic for int8 (Q4.27 input, frexp-based multiplier)."""
    integer_bits = 4
    real = f32(input_scale) * float(1 << (31 - integer_bits))
    q, shift = math.frexp(real)
    mult = tflite_round(q * float(1 << 31))
    return {"zero_point": int(input_zero_point), "multiplier": mult, "left_shift": shift,
            "radius": input_radius(integer_bits, shift, 31)}


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """PrepareMeanOrSumHelper + the count folding QuantizedMeanOrSum does at run time."""
    mult, shift = quantize_multiplier(f32(input_scale) / f32(output_scale))
    s = min(count.bit_length() - 1, 32, 31 + shift)
    mult = int((mult << s) // count) if s >= 0 else int((mult >> -s) // count)
    # int32 cast as in C++ (the value fits for sane counts)
    mult = (mult + (1 << 31)) % (1 << 32) - (1 << 31)
    return mult, shift - s


def relu_params(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> dict:
    """CalculateReluOpData: the multiplier uses a float32 quotient."""
    mult, shift = quantize_multiplier(f32(np.float32(input_scale) / np.float32(output_scale)))
    lo = max(-128, int(output_zp) + tflite_round(f32(np.float32(0.0) / np.float32(output_scale))))
    return {"multiplier": mult, "shift": shift, "in_zp": int(input_zp), "out_zp": int(output_zp),
            "lo": lo, "hi": 127}


def relu6_bounds(input_scale: float, input_zp: int) -> tuple[int, int]:
    """Relu6Prepare: clamps to [zero, quantized 6.0] of the *input* quantization."""
    six = tflite_round(float(np.float32(6.0) / np.float32(input_scale))) + int(input_zp)
    six = max(-128, min(127, six))
    return int(input_zp), six
