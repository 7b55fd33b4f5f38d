"""The tensor arena: measured by the TFLM Python runtime, plus the size the firmware allocates.

Figures (all bytes):
  tflm_bytes   what TFLM's RecordingMicroAllocator used on this host (head + tail)
  head_bytes   the non-persistent part: the activation plan and kernel scratch buffers.
               The planner and the tensor sizes are the same on the device, so with the
               reference kernels the device's head is this exact figure.
  tail_bytes   persistent structures (TfLiteEvalTensor, node/registration structs, kernel
               op data). They hold pointers, so on this 64-bit host they are larger than
               on a 32-bit microcontroller: the device's tail is smaller than this.
  firmware_bytes  the arena the generated TFLM firmware allocates:
               align16(tflm_bytes + margin), margin = align16(1 KiB + scratch), where
               scratch is the largest per-operator scratch buffer the board's optimized
               kernels may request on top of what the reference kernels (measured here)
               request (see scratch_bytes). The 1 KiB covers persistent bookkeeping that
               differs between TFLM builds (kernel op data, alignment).
  peak_activation_bytes  the lower bound from tensor lifetimes (see lifetimes.py).
On the device the firmware reports interpreter.arena_used_bytes() (head + 32-bit tail); it
must be <= firmware_bytes, and with reference kernels it is <= tflm_bytes. The figure the
firmware checks on the device is therefore arena_used_bytes <= firmware_bytes; the head
equals head_bytes exactly with reference kernels.
"""
from __future__ import annotations

from dataclasses import dataclass

from tinyopt.analysis.reader import Operator, TfliteModel

ALIGNMENT = 16
FIXED_MARGIN = 1024
KERNELS = ("reference", "cmsis-nn", "esp-nn")
DEFAULT_KERNELS = "cmsis-nn"     # no board given: the most common optimized library


@dataclass(frozen=True)
class Arena:
    tflm_bytes: int | None
    head_bytes: int | None
    tail_bytes: int | None
    firmware_bytes: int | None
    margin_bytes: int | None
    margin_kernels: str
    peak_activation_bytes: int
    note: str

    @property
    def measured(self) -> bool:
        return self.tflm_bytes is not None

    def to_json(self) -> dict:
        return {"tflm_bytes": self.tflm_bytes, "head_bytes": self.head_bytes,
                "tail_bytes": self.tail_bytes, "firmware_bytes": self.firmware_bytes,
                "margin_bytes": self.margin_bytes, "margin_kernels": self.margin_kernels,
                "peak_activation_bytes": self.peak_activation_bytes,
                "device_check": "arena_used_bytes <= firmware_bytes "
                                "(head equals head_bytes with reference kernels)",
                "note": self.note}


def align(n: int, to: int = ALIGNMENT) -> int:
    return (n + to - 1) // to * to


def normalize_kernels(kernels: str | None) -> str:
    """Board files describe kernels in words ("cmsis-nn (plain C paths on M0+)")."""
    text = (kernels or DEFAULT_KERNELS).lower()
    for name in ("esp-nn", "cmsis-nn", "reference"):
        if name in text:
            return name
    return DEFAULT_KERNELS


def _conv_dims(model: TfliteModel, op: Operator):
    x, filt = model.tensor(op.inputs[0]), model.tensor(op.inputs[1])
    if x is None or filt is None or len(x.shape) != 4 or len(filt.shape) != 4:
        return None
    _, in_h, in_w, in_c = x.shape
    return in_h, in_w, in_c, filt.shape


def _op_scratch(model: TfliteModel, op: Operator, kernels: str) -> int:
    if op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D") or len(op.inputs) < 2:
        return 0
    dims = _conv_dims(model, op)
    if dims is None or kernels == "reference":
        return 0
    in_h, in_w, in_c, fshape = dims
    conv = op.opcode == "CONV_2D"
    out_c, kh, kw = (fshape[0], fshape[1], fshape[2]) if conv else (fshape[3], fshape[1], fshape[2])
    if kernels == "cmsis-nn":
        # CMSIS-NN's s8 wrappers: an int16 im2col buffer of two receptive fields for a
        # general convolution (none for 1x1), one int16 receptive field for depthwise.
        if conv:
            return 0 if kh == kw == 1 else 2 * kh * kw * in_c * 2
        return kh * kw * in_c * 2
    # ESP-NN's SIMD (ESP32-S3) paths copy the input with its padding and an aligned copy of
    # the filter into the scratch buffer. This is a conservative bound on that request: a
    # fully padded input, the filter twice with each filter row (k_w * in_c bytes; for
    # depthwise the channels) rounded up to 16 bytes, per-channel int32 sums and alignment
    # slack. Plain ESP32 chips use ESP-NN's C paths (no scratch); the bound keeps the
    # firmware safe on both.
    padded_input = (in_h + kh) * (in_w + kw) * in_c
    filter_copy = kh * align(kw * in_c) * out_c if conv else kh * kw * align(out_c)
    return padded_input + 2 * filter_copy + 4 * out_c + 64


def scratch_bytes(model: TfliteModel, kernels: str) -> int:
    """Largest scratch buffer one operator may request with these kernels; the reference
    kernels request none, so the runtime's figure does not include it. Scratch buffers
    live only during their operator, so the largest one bounds the growth of the head."""
    return max((_op_scratch(model, op, kernels) for op in model.operators), default=0)


def firmware_margin(model: TfliteModel, kernels: str | None = None) -> int:
    return align(FIXED_MARGIN + scratch_bytes(model, normalize_kernels(kernels)))


def runtime_arena_size(model: TfliteModel, peak_activation_bytes: int) -> int:
    return max(10 * model.size_bytes, 2 * peak_activation_bytes + (1 << 20))


def measure_arena(model: TfliteModel, peak_activation_bytes: int,
                  kernels: str | None = None) -> Arena:
    """Run the TFLM runtime on the model (the caller has audited it) and read its figures."""
    from tinyopt.errors import TinyoptError
    from tinyopt.quiet import captured_stderr
    from tinyopt.tflm_probe import NativeLoadError
    from tinyopt.tflm_runtime import Runner
    # The runtime's default arena is 10x the model size, too small for a model with few
    # weights and large activations; the figures it reports do not depend on this size.
    size = runtime_arena_size(model, peak_activation_bytes)
    # TFLM logs its own complaints on fd 2; keep them for the error instead of the terminal.
    with captured_stderr() as log:
        try:
            runner = Runner(model.raw, arena_size=size)
            failure = None
        except TinyoptError as err:
            failure = err
    if isinstance(failure, NativeLoadError):
        raise failure   # a damaged file, not a model TFLM refuses
    if failure is not None:
        said = [ln.strip() for ln in log[0].splitlines() if ln.strip()]
        detail = f" ({said[0][:160]})" if said else ""
        raise TinyoptError(failure.message + detail, failure.hint)
    usage = runner.arena_usage()
    kernels = normalize_kernels(kernels)
    margin = firmware_margin(model, kernels)
    return Arena(usage.total, usage.head, usage.tail, align(usage.total + margin), margin,
                 kernels, peak_activation_bytes,
                 "measured by the tflite_micro runtime (reference kernels, 64-bit host)")


def unmeasured_arena(peak_activation_bytes: int, reason: str, kernels: str | None = None) -> Arena:
    return Arena(None, None, None, None, None, normalize_kernels(kernels), peak_activation_bytes,
                 reason)
