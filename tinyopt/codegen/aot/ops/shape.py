"""aot lowering of RESHAPE, PAD and CONCATENATION: each function registered with @lowers turns one operator into
kernel steps (macros in firmware_templates/aot/kernels/shape.c.j2) with every constant
computed here."""
from __future__ import annotations

import numpy as np

from tinyopt.codegen.aot.lowering import row_major_strides, unsupported
from tinyopt.codegen.aot.registry import lowers


@lowers("RESHAPE", kernels=None)
def reshape(lw, op):
    """no code: the output aliases the input's bytes."""
    x = lw.act(op, op.inputs[0])
    y = lw.act(op, op.outputs[0])
    lw.out.aliases[y] = x          # same bytes, no code


@lowers("PAD", kernels='shape')
def pad(lw, op):
    """constant padding with the output's zero point."""
    x = lw.act(op, op.inputs[0])
    y = lw.act(op, op.outputs[0])
    tx, ty = lw.t(x), lw.t(y)
    pads = lw.t(op.inputs[1])
    if pads.data is None:
        raise unsupported(op, "the paddings must be constant")
    pads = np.asarray(pads.data).reshape(-1, 2)
    n = len(tx.shape)
    si, so = row_major_strides(tx.shape), row_major_strides(ty.shape)
    base = int(sum(int(pads[i][0]) * so[i] for i in range(n)))
    dims = [{"n": tx.shape[i], "si": si[i], "so": so[i]} for i in range(n - 1)]
    p = dict(dims=dims, run=tx.shape[-1], base=base, N=ty.elements, value=lw.qp(ty)[1],
             x={"tensor": x}, y={"tensor": y})
    lw.step("pad", op, [x], [y], p, ty.elements)


@lowers("CONCATENATION", kernels='shape')
def concatenation(lw, op):
    """int8 concatenation of inputs quantized like the output."""
    y = lw.act(op, op.outputs[0])
    ty = lw.t(y)
    axis = int(op.options.get("axis", 0)) % len(ty.shape)
    sy, zy = lw.qp(ty)
    parts = []
    for k, idx in enumerate(op.inputs):
        t = lw.t(idx)
        s, z = lw.qp(t)
        if np.float32(s) != np.float32(sy) or z != zy:
            raise unsupported(op, "inputs quantized differently from the output (TFLM refuses this too)")
        src = lw.operand(op, idx, f"op{op.index}_in{k}")
        parts.append({"src": src, "inner": int(np.prod(t.shape[axis:]))})
    outer = int(np.prod(ty.shape[:axis])) if axis else 1
    if op.options.get("fusedActivationFunction", "NONE") != "NONE":
        raise unsupported(op, "a fused activation on CONCATENATION")
    p = dict(parts=parts, outer=outer, y={"tensor": y})
    ins = [q["src"]["tensor"] for q in parts if "tensor" in q["src"]]
    lw.step("concatenation", op, ins, [y], p, ty.elements)
