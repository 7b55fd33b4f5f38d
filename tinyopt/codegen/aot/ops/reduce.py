"""aot lowering of MEAN: each function registered with @lowers turns one operator into
kernel steps (macros in firmware_templates/aot/kernels/reduce.c.j2) with every constant
computed here."""
from __future__ import annotations

import numpy as np

from tinyopt.codegen.aot import quant
from tinyopt.codegen.aot.lowering import row_major_strides, unsupported
from tinyopt.codegen.aot.registry import lowers


@lowers("MEAN", kernels='reduce')
def mean(lw, op):
    """int8 mean over constant axes."""
    x = lw.act(op, op.inputs[0])
    y = lw.act(op, op.outputs[0])
    tx, ty = lw.t(x), lw.t(y)
    axis_t = lw.t(op.inputs[1])
    if axis_t.data is None:
        raise unsupported(op, "the axis must be a constant")
    n = len(tx.shape)
    axes = sorted({int(a) % n for a in np.atleast_1d(axis_t.data)})
    st = row_major_strides(tx.shape)
    kept = [{"n": tx.shape[i], "s": st[i]} for i in range(n) if i not in axes]
    red = [{"n": tx.shape[i], "s": st[i]} for i in axes]
    count = int(np.prod([tx.shape[i] for i in axes])) if axes else 1
    (sx, zx), (sy, zy) = lw.qp(tx), lw.qp(ty)
    mult, shift = quant.mean_multiplier(sx, sy, count)
    if shift < -31 or shift > 30:
        raise unsupported(op, "a scale ratio outside what the int8 kernel represents")
    p = dict(kept=kept, red=red, count=count, in_zp=zx, out_zp=zy, mult=mult, shift=shift,
             x={"tensor": x}, y={"tensor": y})
    lw.step("mean", op, [x], [y], p, tx.elements)
