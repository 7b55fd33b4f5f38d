"""Which operators each deployment backend can run. One place, so the audit and the
backends themselves agree."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_TFLM_OPS_FILE = Path(__file__).with_name("tflm_ops.txt")

# The aot backend compiles these (int8) operators to plain C; anything else needs TFLM.
AOT_OPS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "AVERAGE_POOL_2D",
    "MAX_POOL_2D", "RESHAPE", "SOFTMAX", "LOGISTIC", "RELU", "RELU6", "QUANTIZE",
    "DEQUANTIZE", "MEAN", "PAD", "CONCATENATION",
})

BACKENDS = ("tflm", "aot")


@lru_cache(maxsize=1)
def _tflm_table() -> tuple[frozenset, frozenset]:
    builtins, customs = set(), set()
    for line in _TFLM_OPS_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("custom:"):
            customs.add(line[len("custom:"):])
        else:
            builtins.add(line)
    return frozenset(builtins), frozenset(customs)


def tflm_builtin_ops() -> frozenset:
    """Builtin opcodes TFLM implements (from micro_mutable_op_resolver.h)."""
    return _tflm_table()[0]


def tflm_custom_ops() -> frozenset:
    """Custom operators that ship with TFLM (they still need an explicit registration)."""
    return _tflm_table()[1]


def backend_ops(backend: str) -> frozenset:
    if backend == "aot":
        return AOT_OPS
    if backend == "tflm":
        return tflm_builtin_ops()
    raise ValueError(f"unknown backend {backend!r}")
