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


def _check_overlaps(sizes, steps, inputs, outputs, offsets, offers):
    """Live tensors never share bytes, except an offered source and target at their step, with
    the target starting at least the offered lag before the source."""
    from tinyopt.analysis.live_ranges import live_ranges
    ranges = live_ranges(sizes, steps, inputs, outputs, {})
    allowed = {(o.source, o.target): o for o in offers}
    for a in ranges.values():
        for b in ranges.values():
            if a.key >= b.key or a.last < b.first or b.last < a.first:
                continue
            a0, b0 = offsets[a.key], offsets[b.key]
            if a0 + a.size <= b0 or b0 + b.size <= a0:
                continue
            o = allowed.get((a.key, b.key)) or allowed.get((b.key, a.key))
            assert o is not None, (a, b, a0, b0)
            gap = offsets[o.source] - offsets[o.target]
            assert gap >= o.lag or (o.exact and gap == 0), (o, offsets[o.target], offsets[o.source])
            assert ranges[o.source].last == o.step == ranges[o.target].first


def test_random_schedules_with_in_place_offers_keep_the_rules():
    rng = np.random.default_rng(1)
    shrank = 0
    for trial in range(300):
        n = int(rng.integers(2, 14))
        sizes = {t: int(rng.integers(1, 3000)) for t in range(n + 1)}
        steps, offers = [], []
        for i in range(n):
            ins = [i] + ([int(rng.integers(0, i))] if i > 0 and rng.random() < 0.4 else [])
            steps.append((ins, [i + 1]))
            for src in ins:
                if rng.random() < 0.8:
                    offers.append(planner.Overlap(i, src, i + 1, int(rng.integers(-200, 2 * sizes[src])),
                                                  exact=bool(rng.random() < 0.3)))
        plain, plain_total = planner.plan(sizes, steps, [0], [n], {})
        offsets, total, taken = planner.plan_with_overlaps(sizes, steps, [0], [n], {}, offers)
        assert total <= plain_total, trial
        shrank += total < plain_total
        for t in sizes:
            assert offsets[t] % planner.ALIGN == 0 and offsets[t] >= 0
            assert offsets[t] + sizes[t] <= total
        _check_overlaps(sizes, steps, [0], [n], offsets, offers)
        assert {(o.source, o.target) for o in taken} <= {(o.source, o.target) for o in offers}
    assert shrank > 100, shrank


def test_an_exact_offer_shares_bytes_exactly_or_keeps_its_lag():
    """A residual folded into a convolution (fusion.py): its output may lie exactly over the residual
    or at least the lag below it, never in between (the kernels write several pixels together)."""
    sizes = {0: 512, 1: 512, 2: 512, 3: 512}
    steps = [([0], [1]), ([1, 0], [2]), ([2], [3])]      # 2 = conv(1) + residual 0
    offers = [planner.Overlap(1, 0, 2, 64, exact=True)]
    offsets, total, taken = planner.plan_with_overlaps(sizes, steps, [0], [3], {}, offers)
    assert taken and offsets[2] == offsets[0] and total == 1024
    # exact=False: the same offer needs the full lag
    offsets, total, _ = planner.plan_with_overlaps(sizes, steps, [0], [3], {}, [planner.Overlap(1, 0, 2, 64)])
    assert offsets[0] - offsets[2] >= 64 or offsets[2] >= offsets[0] + 512 or offsets[0] >= offsets[2] + 512


def test_an_offer_whose_source_lives_on_is_not_taken():
    # step 0 writes 1 from 0; 0 is read again at step 1 (a skip connection): it may not be overwritten
    sizes = {0: 400, 1: 400, 2: 400}
    steps = [([0], [1]), ([1, 0], [2])]
    _, _, taken = planner.plan_with_overlaps(sizes, steps, [0], [2], {}, [planner.Overlap(0, 0, 1, 0)])
    assert taken == []


def test_a_chain_of_in_place_layers_needs_one_map_plus_the_lags():
    # five same-size layers, each offering to write over its input with a lag of 40 bytes
    sizes = {t: 1000 for t in range(6)}
    steps = [([i], [i + 1]) for i in range(5)]
    offers = [planner.Overlap(i, i, i + 1, 40) for i in range(5)]
    offsets, total, taken = planner.plan_with_overlaps(sizes, steps, [0], [5], {}, offers)
    assert len(taken) == 5 and total == 1000 + 5 * 40
    assert [offsets[t] - offsets[t + 1] for t in range(5)] == [40] * 5
