"""Static memory plan: every activation tensor gets an offset in one buffer.

Lifetimes are the live ranges of tinyopt.analysis.live_ranges (first writer .. last
reader; model inputs live from the start, outputs to the end), the same ranges the
analysis's peak is computed from. Buffers are placed greedily, largest first, at the lowest
offset that does not overlap any buffer whose lifetime intersects - the same strategy as
TFLM's GreedyMemoryPlanner, so without overlaps the result is never worse than its arena head.
An alias (RESHAPE) shares its source's storage and extends its lifetime.

In-place execution: a step may offer to write its output over an input that dies there
(an Overlap, with the lag of streaming.py): the two may then share bytes provided the output
starts at least `lag` bytes below the input. Every other pair of buffers live at the same
time stays apart. A kernel's scratch (lowering.Step.scratch) is planned as a tensor with a
negative key that lives for its step only. The planner chooses among layouts by the total they yield: the plain one,
and in-place ones with several placement orders and subsets of the offers."""
from __future__ import annotations

from dataclasses import dataclass

from tinyopt.analysis.live_ranges import LiveRange, live_ranges, root_of
from tinyopt.errors import TinyoptError

ALIGN = 4            # int8/float activations only need 4-byte alignment on every MCU we target
MAX_BUFFER = (1 << 31) - 1   # offsets are emitted as C int constants


@dataclass(frozen=True)
class Overlap:
    """At step `step`, output `target` may start `lag` bytes before input `source` (overlapping it);
    with `exact`, also exactly at it (a kernel that reads each element just before writing the
    same element, in an order that breaks for smaller gaps: a residual operand)."""
    step: int
    source: int
    target: int
    lag: int
    exact: bool = False


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan(sizes: dict[int, int], steps: list[tuple[list[int], list[int]]], graph_inputs: list[int],
         graph_outputs: list[int], aliases: dict[int, int], overlaps: list[Overlap] | None = None
         ) -> tuple[dict[int, int], int]:
    """sizes: tensor -> bytes; steps: (inputs, outputs) per step in order; aliases: tensor ->
    tensor whose storage it reuses; overlaps: in-place offers. Returns (tensor -> offset, total bytes)."""
    offsets, total, _ = plan_with_overlaps(sizes, steps, graph_inputs, graph_outputs, aliases, overlaps)
    return offsets, total


def plan_with_overlaps(sizes, steps, graph_inputs, graph_outputs, aliases, overlaps=None):
    """plan(), also returning the overlaps the placement uses (source/target as alias roots)."""
    for t, size in sizes.items():
        if size > MAX_BUFFER:
            raise TinyoptError(f"tensor {t} needs {size} bytes, more than a static buffer can address",
                               "reduce the model's input or layer sizes, or use `--backend tflm`")
    ranges = live_ranges(sizes, steps, graph_inputs, graph_outputs, aliases)
    offers = _usable(overlaps or [], ranges, aliases)
    offset_of, total = _place(ranges, [], _LARGEST_FIRST)
    if offers:
        shared = _search(ranges, offers)
        if shared[1] < total:
            offset_of, total = shared
    used = [o for o in offers if _overlap(offset_of[o.source], ranges[o.source].size,
                                          offset_of[o.target], ranges[o.target].size)]
    offsets = {t: offset_of[root_of(t, aliases)] for t in sizes if root_of(t, aliases) in offset_of}
    return offsets, _align(total), used


_SEARCH_WORK = 20_000_000


def _search(ranges: dict[int, LiveRange], offers: list[Overlap], rounds: int = 3) -> tuple[dict[int, int], int]:
    """The smallest layout found with a subset of the offers: all of them first, then each
    offer dropped or taken back in turn while that shrinks the buffer (one long in-place chain
    drifts: each output sits `lag` below its input, so breaking it somewhere can pay)."""
    def best(subset):
        return min((_place(ranges, subset, order) for order in _ORDERS), key=lambda lay: lay[1])
    chosen = list(offers)
    layout = best(chosen)
    # a placement costs about n^2 steps: the search stops after a fixed amount of work, so a
    # model with thousands of layers is planned in seconds (and always the same way)
    budget = _SEARCH_WORK // max(1, len(ranges)) ** 2
    for _ in range(rounds):
        improved = False
        for o in offers:
            budget -= len(_ORDERS)
            if budget < 0:
                return layout
            trial = [a for a in chosen if a != o] if o in chosen else chosen + [o]
            got = best(trial)
            if got[1] < layout[1]:
                chosen, layout, improved = trial, got, True
        if not improved:
            break
    return layout


def _usable(overlaps: list[Overlap], ranges: dict[int, LiveRange], aliases) -> list[Overlap]:
    """The offers whose source dies at their step and whose target is born there, so no byte of
    the source is needed after the step that overwrites it."""
    out = []
    for o in overlaps:
        s, t = root_of(o.source, aliases), root_of(o.target, aliases)
        if s == t or s not in ranges or t not in ranges:
            continue
        if ranges[s].last != o.step or ranges[t].first != o.step:
            continue
        out.append(Overlap(o.step, s, t, -(-o.lag // ALIGN) * ALIGN, o.exact))   # rounded up: a larger lag is safe
    return out


def _overlap(a0: int, asize: int, b0: int, bsize: int) -> bool:
    return a0 < b0 + bsize and b0 < a0 + asize


# Placement orders. Largest first is TFLM's; an in-place chain puts each output below its input,
# so placing the latest tensors first leaves room under the earlier ones; the other orders are
# tried too and the smallest layout is kept. Kernel scratch (negative keys, one step long) goes
# last in every order: it fits whatever gap its step leaves, and placed early it can split an
# output from the input it is offered to overlap.
def _LARGEST_FIRST(r: LiveRange):
    return (r.key < 0, -r.size, r.first, r.key)


def _LARGEST_LATEST_FIRST(r: LiveRange):
    # among equal sizes (a residual stage) the later first: each output then lies where its
    # input can be placed one lag above it
    return (r.key < 0, -r.size, -r.first, r.key)


def _LATEST_FIRST(r: LiveRange):
    return (r.key < 0, -r.first, -r.size, r.key)


def _EARLIEST_FIRST(r: LiveRange):
    return (r.key < 0, r.first, -r.size, r.key)


_ORDERS = (_LARGEST_FIRST, _LARGEST_LATEST_FIRST, _LATEST_FIRST, _EARLIEST_FIRST)


def _place(ranges: dict[int, LiveRange], offers: list[Overlap], order) -> tuple[dict[int, int], int]:
    """Each buffer at the lowest offset where it overlaps no buffer live at the same time, except
    an offered partner on the permitted side (target at least `lag` bytes below its source)."""
    lags: dict[tuple[int, int], int] = {}
    exact: set[tuple[int, int]] = set()
    for o in offers:
        lags[(o.source, o.target)] = max(lags.get((o.source, o.target), o.lag), o.lag)
        if o.exact:
            exact.add((o.source, o.target))
    offset_of: dict[int, int] = {}
    placed: list[LiveRange] = []
    total = 0
    for b in sorted(ranges.values(), key=order):
        live = [p for p in placed if p.first <= b.last and b.first <= p.last]
        candidates = {0} | {_align(offset_of[p.key] + p.size) for p in live}
        for p in live:
            if (p.key, b.key) in lags:
                candidates.add(offset_of[p.key] - lags[(p.key, b.key)])
            if (b.key, p.key) in lags:
                candidates.add(offset_of[p.key] + lags[(b.key, p.key)])
            if (p.key, b.key) in exact or (b.key, p.key) in exact:
                candidates.add(offset_of[p.key])
        offset = next(c for c in sorted(candidates) if c >= 0 and _fits(b, c, live, offset_of, lags, exact))
        offset_of[b.key] = offset
        placed.append(b)
        total = max(total, offset + b.size)
        if total > MAX_BUFFER:
            raise TinyoptError(f"the activation buffer would need {total} bytes (more than 2 GiB)",
                               "the model's shapes are far too large for a microcontroller; use smaller inputs")
    return offset_of, total


def _fits(b: LiveRange, at: int, live: list[LiveRange], offset_of: dict[int, int], lags: dict,
          exact: set) -> bool:
    for p in live:
        pat = offset_of[p.key]
        if not _overlap(at, b.size, pat, p.size):
            continue
        if (p.key, b.key) in lags and (at <= pat - lags[(p.key, b.key)] or ((p.key, b.key) in exact and at == pat)):
            continue
        if (b.key, p.key) in lags and (pat <= at - lags[(b.key, p.key)] or ((b.key, p.key) in exact and at == pat)):
            continue
        return False
    return True
