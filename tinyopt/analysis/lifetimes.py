"""Peak of live activation bytes, from tensor lifetimes (first producer .. last consumer).

This is the lower bound any memory planner can reach for the non-persistent part of the
arena (TFLM's "head"), before alignment and kernel scratch buffers. Comparing it with the
head TFLM's greedy planner actually needs shows the head-room."""
from __future__ import annotations

from tinyopt.analysis.reader import TfliteModel


def live_bytes_per_op(model: TfliteModel) -> list[int]:
    """Bytes of activations alive while each operator runs (its inputs, outputs and
    everything produced earlier and still needed later)."""
    n = len(model.operators)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i in model.inputs:
        first[i] = 0
    for op in model.operators:
        for i in op.outputs:
            first.setdefault(i, op.index)
            last[i] = max(last.get(i, op.index), op.index)
        for i in op.inputs:
            if i >= 0:
                last[i] = max(last.get(i, op.index), op.index)
    for i in model.outputs:
        last[i] = n - 1
    live = [0] * n
    for idx, start in first.items():
        tensor = model.tensors[idx]
        if tensor.is_constant or tensor.is_variable or idx not in last:
            continue
        for step in range(start, last[idx] + 1):
            live[step] += tensor.nbytes
    return live


def peak_activation_bytes(model: TfliteModel) -> int:
    live = live_bytes_per_op(model)
    return max(live) if live else sum(model.tensors[i].nbytes for i in model.inputs)
