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
               align16(tflm_bytes + margin), margin = 1 KiB + the largest kernel scratch
               buffer that optimized kernels (CMSIS-NN, ESP-NN) may request on top of the
               reference kernels the runtime measured (see _optimized_scratch_bytes).
               The 1 KiB covers persistent bookkeeping that differs between TFLM builds.
  peak_activation_bytes  the lower bound from tensor lifetimes (see lifetimes.py).
On the device the firmware reports interpreter.arena_used_bytes() (head + 32-bit tail); it
must be <= firmware_bytes, and with reference kernels it is <= tflm_bytes. The figure to
check on the device is therefore arena_used_bytes <= firmware_bytes; the head matches
head_bytes exactly with reference kernels.
"""
from __future__ import annotations

from dataclasses import dataclass

from tinyopt.analysis.reader import TfliteModel

ALIGNMENT = 16
FIXED_MARGIN = 1024


@dataclass(frozen=True)
class Arena:
    tflm_bytes: int | None
    head_bytes: int | None
    tail_bytes: int | None
    firmware_bytes: int | None
    margin_bytes: int | None
    peak_activation_bytes: int
    note: str

    @property
    def measured(self) -> bool:
        return self.tflm_bytes is not None

    def to_json(self) -> dict:
        return {"tflm_bytes": self.tflm_bytes, "head_bytes": self.head_bytes,
                "tail_bytes": self.tail_bytes, "firmware_bytes": self.firmware_bytes,
                "margin_bytes": self.margin_bytes,
                "peak_activation_bytes": self.peak_activation_bytes,
                "device_check": "arena_used_bytes <= firmware_bytes "
                                "(head equals head_bytes with reference kernels)",
                "note": self.note}


def align(n: int, to: int = ALIGNMENT) -> int:
    return (n + to - 1) // to * to


def _optimized_scratch_bytes(model: TfliteModel) -> int:
    """Largest per-operator scratch buffer an optimized kernel library may add: an int16
    im2col copy of one receptive field per output pixel pair for CONV_2D (k_h*k_w*in_c*2*2
    bytes, not needed for 1x1 kernels) and one int16 receptive field for DEPTHWISE_CONV_2D.
    Those are the sizes CMSIS-NN's convolution wrappers request; the reference kernels
    request none, so the runtime's figure does not include them."""
    largest = 0
    for op in model.operators:
        if op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D") or len(op.inputs) < 2:
            continue
        filt = model.tensor(op.inputs[1])
        if filt is None or len(filt.shape) != 4:
            continue
        _, kh, kw, c = filt.shape
        if op.opcode == "CONV_2D":
            need = 0 if kh == kw == 1 else 2 * kh * kw * c * 2
        else:
            need = kh * kw * c * 2
        largest = max(largest, need)
    return largest


def firmware_margin(model: TfliteModel) -> int:
    return align(FIXED_MARGIN + _optimized_scratch_bytes(model))


def runtime_arena_size(model: TfliteModel, peak_activation_bytes: int) -> int:
    return max(10 * model.size_bytes, 2 * peak_activation_bytes + (1 << 20))


def measure_arena(model: TfliteModel, peak_activation_bytes: int) -> Arena:
    """Run the TFLM runtime on the model (the caller has audited it) and read its figures."""
    from tinyopt.errors import TinyoptError
    from tinyopt.quiet import captured_stderr
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
    if failure is not None:
        said = [ln.strip() for ln in log[0].splitlines() if ln.strip()]
        detail = f" ({said[0][:160]})" if said else ""
        raise TinyoptError(failure.message + detail, failure.hint)
    usage = runner.arena_usage()
    margin = firmware_margin(model)
    return Arena(usage.total, usage.head, usage.tail, align(usage.total + margin), margin,
                 peak_activation_bytes,
                 "measured by the tflite_micro runtime (reference kernels, 64-bit host)")


def unmeasured_arena(peak_activation_bytes: int, reason: str) -> Arena:
    return Arena(None, None, None, None, None, peak_activation_bytes, reason)
