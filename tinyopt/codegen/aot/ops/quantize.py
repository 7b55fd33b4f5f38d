"""aot lowering of QUANTIZE and DEQUANTIZE: each function registered with @lowers turns one operator into
kernel steps (macros in firmware_templates/aot/kernels/quantize.c.j2) with every constant
computed here."""
from __future__ import annotations

import numpy as np

from tinyopt.codegen.aot import quant
from tinyopt.codegen.aot.registry import lowers


@lowers("QUANTIZE", kernels='quantize')
def quantize(lw, op):
    """float32 to int8, or int8 to int8 with another scale (requantize)."""
    x = lw.act(op, op.inputs[0], ("INT8", "FLOAT32"))
    y = lw.act(op, op.outputs[0])
    tx, ty = lw.t(x), lw.t(y)
    (sx, zx), (sy, zy) = lw.qp(tx), lw.qp(ty)
    if tx.dtype == "FLOAT32":
        p = dict(N=tx.elements, scale=float(np.float32(sy)).hex(), zp=zy, x={"tensor": x}, y={"tensor": y})
        lw.step("quantize_float", op, [x], [y], p, tx.elements)
    else:
        mult, shift = quant.quantize_multiplier(quant.f32(sx) / quant.f32(sy))
        p = dict(N=tx.elements, mult=mult, shift=shift, in_zp=zx, out_zp=zy, x={"tensor": x}, y={"tensor": y})
        lw.step("requantize", op, [x], [y], p, tx.elements)


@lowers("DEQUANTIZE", kernels='quantize')
def dequantize(lw, op):
    """int8 to float32."""
    x = lw.act(op, op.inputs[0])
    y = lw.act(op, op.outputs[0], ("FLOAT32",))
    tx = lw.t(x)
    sx, zx = lw.qp(tx)
    p = dict(N=tx.elements, scale=quant.f32(sx).hex(), zp=zx, x={"tensor": x}, y={"tensor": y})
    lw.step("dequantize", op, [x], [y], p, tx.elements)
