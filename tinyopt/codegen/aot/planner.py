"""Static memory plan: every activation tensor gets an offset in one buffer.

Lifetimes are the live ranges of tinyopt.analysis.live_ranges (first writer .. last
reader; model inputs live from the start, outputs to the end), the same ranges the
analysis's peak is computed from. Buffers are placed greedily, largest first, at the lowest
offset that does not overlap any buffer whose lifetime intersects - the same strategy as
TFLM's GreedyMemoryPlanner, so the result is never worse than its arena head.
An alias (RESHAPE) shares its source's storage and extends its lifetime."""
from __future__ import annotations

from tinyopt.analysis.live_ranges import LiveRange, live_ranges, root_of
from tinyopt.errors import TinyoptError

ALIGN = 4            # int8/float activations only need 4-byte alignment on every MCU we target
MAX_BUFFER = (1 << 31) - 1   # offsets are emitted as C int constants


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan(sizes: dict[int, int], steps: list[tuple[list[int], list[int]]], graph_inputs: list[int],
         graph_outputs: list[int], aliases: dict[int, int]) -> tuple[dict[int, int], int]:
    """sizes: tensor -> bytes; steps: (inputs, outputs) per step in order; aliases: tensor ->
    tensor whose storage it reuses. Returns (tensor -> offset, total bytes)."""
    for t, size in sizes.items():
        if size > MAX_BUFFER:
            raise TinyoptError(f"tensor {t} needs {size} bytes, more than a static buffer can address",
                               "reduce the model's input or layer sizes, or use `--backend tflm`")
    buffers = live_ranges(sizes, steps, graph_inputs, graph_outputs, aliases)
    offset_of: dict[int, int] = {}
    placed: list[LiveRange] = []
    total = 0
    for b in sorted(buffers.values(), key=lambda b: (-b.size, b.first, b.key)):
        live = sorted((p for p in placed if p.first <= b.last and b.first <= p.last), key=lambda p: offset_of[p.key])
        offset = 0
        for p in live:
            if offset + b.size <= offset_of[p.key]:
                break
            offset = max(offset, _align(offset_of[p.key] + p.size))
        offset_of[b.key] = offset
        placed.append(b)
        total = max(total, offset + b.size)
        if total > MAX_BUFFER:
            raise TinyoptError(f"the activation buffer would need {total} bytes (more than 2 GiB)",
                               "the model's shapes are far too large for a microcontroller; use smaller inputs")
    offsets = {t: offset_of[root_of(t, aliases)] for t in sizes if root_of(t, aliases) in offset_of}
    return offsets, _align(total)
