"""Which operators each deployment backend can run, so that the audit and the backends
agree: TFLM's from its op resolver (tflm_ops.txt), the aot backend's from its registry."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_TFLM_OPS_FILE = Path(__file__).with_name("tflm_ops.txt")


def aot_ops() -> frozenset:
    """The (int8) operators the aot backend compiles to plain C; anything else needs TFLM."""
    from tinyopt.codegen.aot.registry import supported_ops
    return supported_ops()


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
