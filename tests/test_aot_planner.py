"""The static activation planner: live buffers never overlap, offsets are aligned, aliases
share storage, and the plan is no larger than the sum of what is live at the peak."""
from __future__ import annotations

import numpy as np

from tinyopt.codegen.aot import planner


def _live(first_last, t, step):
    f, l = first_last[t]
    return f <= step <= l


def test_random_schedules_never_overlap_live_buffers():
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(2, 12))
        sizes = {t: int(rng.integers(1, 5000)) for t in range(n + 1)}
        # a chain with random skip connections: step i reads tensor i (and maybe an older one), writes i+1
        steps = []
        for i in range(n):
            ins = [i] + ([int(rng.integers(0, i))] if i > 0 and rng.random() < 0.4 else [])
            steps.append((ins, [i + 1]))
        offsets, total = planner.plan(sizes, steps, [0], [n], {})
        life = {}
        for t in sizes:
            uses = [i for i, (ins, outs) in enumerate(steps) if t in ins or t in outs]
            life[t] = (-1 if t == 0 else min(uses), n if t == n else max(uses))
        for t in sizes:
            assert offsets[t] % planner.ALIGN == 0
            assert offsets[t] + sizes[t] <= total
        for step in range(-1, n + 1):
            live = [t for t in sizes if _live(life, t, step)]
            spans = sorted((offsets[t], offsets[t] + sizes[t]) for t in live)
            for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
                assert a1 <= b0, (trial, step, spans)
            peak = sum(sizes[t] for t in live)
            assert total >= peak


def test_alias_shares_storage_and_extends_lifetime():
    sizes = {0: 100, 1: 100, 2: 100, 3: 40}
    steps = [([0], [1]), ([2], [3])]          # 1 -> 2 is a reshape (alias), no step
    offsets, total = planner.plan(sizes, steps, [0], [3], {2: 1})
    assert offsets[2] == offsets[1]
    assert offsets[3] + 40 <= offsets[1] or offsets[3] >= offsets[1] + 100
