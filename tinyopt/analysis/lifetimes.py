"""Peak of live activation bytes, from tensor lifetimes (first producer .. last consumer).

This is the lower bound any memory planner can reach for the non-persistent part of the
arena (TFLM's "head"), before alignment and kernel scratch buffers. Comparing it with the
head TFLM's greedy planner actually needs shows the head-room."""
from __future__ import annotations

from tinyopt.analysis.live_ranges import live_ranges
from tinyopt.analysis.reader import TfliteModel


def live_bytes_per_op(model: TfliteModel) -> list[int]:
    """Bytes of activations alive while each operator runs (its inputs, outputs and
    everything produced earlier and still needed later)."""
    n = len(model.operators)
    sizes = {i: t.nbytes for i, t in enumerate(model.tensors) if not t.is_constant and not t.is_variable}
    steps = [([i for i in op.inputs if i >= 0], list(op.outputs)) for op in model.operators]
    live = [0] * n
    for r in live_ranges(sizes, steps, model.inputs, model.outputs).values():
        for step in range(max(r.first, 0), min(r.last, n - 1) + 1):
            live[step] += r.size
    return live


def peak_activation_bytes(model: TfliteModel) -> int:
    live = live_bytes_per_op(model)
    return max(live) if live else sum(model.tensors[i].nbytes for i in model.inputs)
