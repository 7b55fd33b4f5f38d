"""Static memory plan: every activation tensor gets an offset in one buffer.

Lifetimes come from the straight-line schedule (first writer .. last reader; model inputs
live from the start, outputs to the end). Buffers are placed greedily, largest first, at
the lowest offset that does not overlap any buffer whose lifetime intersects - the same
strategy as TFLM's GreedyMemoryPlanner, so the result is never worse than its arena head.
An alias (RESHAPE) shares its source's storage and extends its lifetime."""
from __future__ import annotations

from dataclasses import dataclass

from tinyopt.errors import TinyoptError

ALIGN = 4            # int8/float activations only need 4-byte alignment on every MCU we target
MAX_BUFFER = (1 << 31) - 1   # offsets are emitted as C int constants


@dataclass
class Buffer:
    key: int          # tensor index (the root of an alias chain)
    size: int
    first: int        # step index of the first write (-1: model input)
    last: int         # step index of the last read
    offset: int = -1


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan(sizes: dict[int, int], steps: list[tuple[list[int], list[int]]], graph_inputs: list[int],
         graph_outputs: list[int], aliases: dict[int, int]) -> tuple[dict[int, int], int]:
    """sizes: tensor -> bytes; steps: (inputs, outputs) per step in order; aliases: tensor ->
    tensor whose storage it reuses. Returns (tensor -> offset, total bytes)."""
    def root(t: int) -> int:
        while t in aliases:
            t = aliases[t]
        return t

    buffers: dict[int, Buffer] = {}
    end = len(steps)

    def touch(t: int, when: int) -> None:
        r = root(t)
        size = sizes[t]
        if size > MAX_BUFFER:
            raise TinyoptError(f"tensor {t} needs {size} bytes, more than a static buffer can address",
                               "reduce the model's input or layer sizes, or use `--backend tflm`")
        b = buffers.get(r)
        if b is None:
            buffers[r] = Buffer(r, size, when, when)
        else:
            b.size = max(b.size, size)
            b.first = min(b.first, when)
            b.last = max(b.last, when)

    for t in graph_inputs:
        touch(t, -1)
    for i, (ins, outs) in enumerate(steps):
        for t in outs:
            touch(t, i)
        for t in ins:
            touch(t, i)
    for t in graph_outputs:
        touch(t, end)

    placed: list[Buffer] = []
    total = 0
    for b in sorted(buffers.values(), key=lambda b: (-b.size, b.first, b.key)):
        live = sorted((p for p in placed if p.first <= b.last and b.first <= p.last), key=lambda p: p.offset)
        offset = 0
        for p in live:
            if offset + b.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        b.offset = offset
        placed.append(b)
        total = max(total, offset + b.size)
        if total > MAX_BUFFER:
            raise TinyoptError(f"the activation buffer would need {total} bytes (more than 2 GiB)",
                               "the model's shapes are far too large for a microcontroller; use smaller inputs")
    offsets = {t: buffers[root(t)].offset for t in sizes if root(t) in buffers}
    return offsets, _align(total)
