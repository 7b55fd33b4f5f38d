"""Tensor live ranges over a straight-line schedule: from the first step that writes a tensor
to the last step that reads it; model inputs live from before the first step (-1), model
outputs to after the last (len(steps)). An alias (RESHAPE) shares its source's storage, so
both count as one range. The analysis's peak of live bytes and the aot planner's placement
are both computed from these ranges."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LiveRange:
    key: int          # tensor index (the root of an alias chain)
    size: int         # bytes (the largest tensor of an alias chain)
    first: int        # step index of the first write (-1: model input)
    last: int         # step index of the last read (len(steps): model output)


def live_ranges(sizes: dict[int, int], steps: list[tuple[list[int], list[int]]], graph_inputs: list[int],
                graph_outputs: list[int], aliases: dict[int, int] | None = None) -> dict[int, LiveRange]:
    """sizes: tensor -> bytes for the tensors to track (others are ignored); steps: (inputs,
    outputs) per step in order; aliases: tensor -> tensor whose storage it reuses."""
    aliases = aliases or {}
    ranges: dict[int, LiveRange] = {}
    end = len(steps)

    def touch(t: int, when: int) -> None:
        if t not in sizes:
            return
        r = root_of(t, aliases)
        got = ranges.get(r)
        if got is None:
            ranges[r] = LiveRange(r, sizes[t], when, when)
        else:
            got.size = max(got.size, sizes[t])
            got.first = min(got.first, when)
            got.last = max(got.last, when)

    for t in graph_inputs:
        touch(t, -1)
    for i, (ins, outs) in enumerate(steps):
        for t in outs:
            touch(t, i)
        for t in ins:
            touch(t, i)
    for t in graph_outputs:
        touch(t, end)
    return ranges


def root_of(t: int, aliases: dict[int, int]) -> int:
    while t in aliases:
        t = aliases[t]
    return t
