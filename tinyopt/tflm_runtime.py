"""The int8 numeric reference: the TFLM Python runtime (`tflite_micro`), which runs the
same kernels as the C++ library on the device. Also the source of the exact arena size."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from tinyopt.errors import TinyoptError
from tinyopt.quiet import captured_stderr


def _runtime():
    from tflite_micro.python.tflite_micro import runtime
    return runtime


@dataclass(frozen=True)
class ArenaUsage:
    total: int      # what RecordingMicroAllocator reports as used on this (64-bit) host
    head: int       # the activation plan: non-persistent buffers; identical on the device
    tail: int       # persistent structures; pointer-size dependent, smaller on 32-bit MCUs


class Runner:
    """Runs one int8 model in the TFLM runtime, one input at a time (batch 1)."""

    def __init__(self, model_bytes: bytes, arena_size: int | None = None):
        from tinyopt.tflm_probe import check_loads
        check_loads(bytes(model_bytes), arena_size)   # a crash there, not in this process
        try:
            self._interp = _runtime().Interpreter.from_bytes(bytes(model_bytes), arena_size=arena_size)
        except Exception as err:
            raise TinyoptError(f"the TFLM runtime cannot load this model: {str(err).strip()[:200]}",
                               "run `tinyopt analyze` on it to see which operator or type is unsupported") from None
        self.input_details = self._interp.get_input_details(0)
        self.output_details = self._interp.get_output_details(0)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.input_details["shape"])

    @property
    def input_dtype(self):
        return np.dtype(self.input_details["dtype"])

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: one quantized input (any shape with the right element count)."""
        x = np.asarray(x, dtype=self.input_dtype).reshape(self.input_shape)
        self._interp.set_input(x, 0)
        self._interp.invoke()
        return np.array(self._interp.get_output(0), copy=True)

    def arena_usage(self) -> ArenaUsage:
        # print_allocations writes from C++ to fd 2 (stderr).
        with captured_stderr() as box:
            self._interp.print_allocations()
        return _parse_allocations(box[0])


def _parse_allocations(text: str) -> ArenaUsage:
    def grab(label):
        m = re.search(rf"Arena allocation {label} (\d+) bytes", text)
        if not m:
            raise TinyoptError("could not read the arena figures from the TFLM runtime",
                               "check that the installed tflite-micro matches the pinned version (`tinyopt doctor`)")
        return int(m.group(1))
    return ArenaUsage(total=grab("total"), head=grab("head"), tail=grab("tail"))


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype=np.int8) -> np.ndarray:
    """Float to int8 the way TFLite's QUANTIZE op does it (round half away from zero)."""
    info = np.iinfo(dtype)
    # np.round rounds half to even; TFLite rounds half away from zero.
    v = np.asarray(x, np.float64) / scale
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (np.asarray(q, np.float32) - zero_point) * np.float32(scale)


def _quantization(details: dict) -> tuple[float, int]:
    qp = details["quantization_parameters"]
    scale = float(qp["scales"][0]) if len(qp["scales"]) else 1.0
    zero_point = int(qp["zero_points"][0]) if len(qp["zero_points"]) else 0
    return scale, zero_point


def input_quantization(runner: Runner) -> tuple[float, int]:
    return _quantization(runner.input_details)


def output_quantization(runner: Runner) -> tuple[float, int]:
    return _quantization(runner.output_details)
