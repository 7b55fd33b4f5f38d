"""aot lowering of AVERAGE_POOL_2D and MAX_POOL_2D: each function registered with @lowers turns one operator into
kernel steps (macros in firmware_templates/aot/kernels/pooling.c.j2) with every constant
computed here."""
from __future__ import annotations

from tinyopt.codegen.aot.lowering import Lowerer
from tinyopt.codegen.aot.registry import lowers


def _pool(lw, op, kind):
    x = lw.act(op, op.inputs[0])
    y = lw.act(op, op.outputs[0])
    tx, ty = lw.t(x), lw.t(y)
    B, H, W, C = tx.shape
    _, OH, OW, _ = ty.shape
    o = op.options
    FH, FW, SH, SW = o["filterHeight"], o["filterWidth"], o["strideH"], o["strideW"]
    lo, hi = lw.range_(op, ty)
    p = dict(B=B, H=H, W=W, C=C, OH=OH, OW=OW, FH=FH, FW=FW, SH=SH, SW=SW,
             PH=Lowerer.padding(SH, 1, H, FH, OH), PW=Lowerer.padding(SW, 1, W, FW, OW),
             lo=lo, hi=hi, x={"tensor": x}, y={"tensor": y})
    lw.step(kind, op, [x], [y], p, ty.elements * FH * FW)


@lowers("AVERAGE_POOL_2D", kernels="pooling")
def average_pool_2d(lw, op):
    """int8 average pooling (rounded like TFLM), padding excluded from the count."""
    _pool(lw, op, "average_pool_2d")


@lowers("MAX_POOL_2D", kernels="pooling")
def max_pool_2d(lw, op):
    """int8 max pooling."""
    _pool(lw, op, "max_pool_2d")
