"""Operator fusion over the lowered steps: a residual ADD folded into the CONV_2D that produces
one of its operands.

In a residual block the ADD's operands are the block input X (kept alive across the block) and
the output Y of the block's last convolution. Run as two steps, Y is a whole tensor next to X
and the convolution's input at the convolution's step; fused, the convolution computes each
output value v (its own requantization and clamp, unchanged), then at once the ADD of v and
the same element of X, and writes the ADD's result Z. Y never exists, Z may take X's bytes (X is
read element by element just before Z is written there), and the ADD's pass over memory goes
away. The values are the ones the two TFLM operators produce: v is exactly the int8 Y[i]."""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from tinyopt.analysis.live_ranges import root_of

from . import streaming

if TYPE_CHECKING:
    from .lowering import Lowered

FUSED_KIND = "conv_2d"      # the kernel that takes a residual (conv.c.j2's put)


def fuse_residual_adds(low: Lowered, graph_outputs) -> None:
    """Fold every flat ADD one of whose operands is the output of a CONV_2D step read by that
    ADD alone into that step (the first such operand); the other operand must exist when the
    convolution runs."""
    outputs = set(graph_outputs)
    aliased = set(low.aliases) | set(low.aliases.values())
    fused, folded_into = set(), set()
    for j, add in enumerate(low.steps):
        if add.kind != "add" or not add.params.get("flat"):
            continue
        a, b = add.params["a"], add.params["b"]
        if "tensor" not in a or "tensor" not in b:
            continue
        producer = {t: i for i, s in enumerate(low.steps) for t in s.outputs}
        readers = defaultdict(list)
        for i, s in enumerate(low.steps):
            for t in s.inputs:
                readers[t].append(i)
        for side, (y, x) in enumerate(((a["tensor"], b["tensor"]), (b["tensor"], a["tensor"]))):
            i = producer.get(y)
            if i is None or i in folded_into or low.steps[i].kind != FUSED_KIND or "res" in low.steps[i].params:
                continue
            # the residual (through any RESHAPE alias) must have been computed when the conv runs
            if readers[y] != [j] or y in outputs or y in aliased or producer.get(root_of(x, low.aliases), -1) >= i:
                continue
            if low.act_tensors.get(y) != low.act_tensors.get(add.outputs[0]):
                continue
            _fold(low, i, j, y, x, side)
            fused.add(j)
            folded_into.add(i)
            break
    low.steps = [s for k, s in enumerate(low.steps) if k not in fused]


def _fold(low: Lowered, i: int, j: int, y: int, x: int, side: int) -> None:
    conv, add = low.steps[i], low.steps[j]
    z = add.outputs[0]
    p, q = conv.params, add.params
    # the ADD's arithmetic with the convolution's value as operand `side` (0: the ADD's first)
    p["res"] = {"x": {"tensor": x}, "side": side, "off1": q["off1"], "off2": q["off2"], "left_shift": q["left_shift"],
                "m1": q["m1"], "sh1": q["sh1"], "m2": q["m2"], "sh2": q["sh2"], "mo": q["mo"], "sho": q["sho"],
                "out_zp": q["out_zp"], "lo": q["lo"], "hi": q["hi"]}
    p["y"] = {"tensor": z}
    conv.outputs = [z]
    # Z[k] is written right after X[k] is read, but the kernels write several pixels' channel c
    # together (the DSP paths two, the non-zero list kernel four): Z may lie exactly over X, or at
    # least that many pixels less one below it. When X is also the convolution's input, its
    # window lag applies too, and Z cannot lie exactly over it.
    pixels = 4 if p.get("nzlist") else (2 if p.get("dsp") else 1)
    lag = streaming.residual_lag(p["O"], pixels)
    if x in conv.inputs:
        conv.overlap[x] = max(conv.overlap.get(x, 0), lag)
    else:
        conv.inputs = conv.inputs + [x]
        conv.overlap[x] = lag
        conv.exact_overlap.add(x)
    conv.opcode = f"{conv.opcode}+ADD"
    conv.fused_ops = conv.fused_ops + (add.op_index,)
    low.act_tensors.pop(y, None)
