"""aot lowering of ADD and MUL: each function registered with @lowers turns one operator into
kernel steps (macros in firmware_templates/aot/kernels/elementwise.c.j2) with every constant
computed here."""
from __future__ import annotations

from tinyopt.analysis.reader import Tensor
from tinyopt.codegen.aot import quant, streaming
from tinyopt.codegen.aot.lowering import unsupported
from tinyopt.codegen.aot.registry import lowers


def _broadcast(op, a: Tensor, b: Tensor, y: Tensor) -> dict:
    shape = list(y.shape)
    n = len(shape)
    if n > 6:
        raise unsupported(op, "more than 6 dimensions")

    def strides(t: Tensor):
        s = [1] * (n - len(t.shape)) + list(t.shape)
        st, acc = [0] * n, 1
        for i in range(n - 1, -1, -1):
            st[i] = acc if s[i] != 1 else 0
            acc *= s[i]
        return st
    if tuple(a.shape) == tuple(b.shape) == tuple(y.shape) or (a.elements == b.elements == y.elements):
        return {"flat": True, "N": y.elements}
    s1, s2 = strides(a), strides(b)
    dims = [{"n": shape[i], "s1": s1[i], "s2": s2[i]} for i in range(n)]
    return {"flat": False, "bdims": dims, "shape": shape, "N": y.elements}


def _binary(lw, op, kind: str):
    a, b = op.inputs[0], op.inputs[1]
    y = lw.act(op, op.outputs[0])
    ta, tb, ty = lw.t(a), lw.t(b), lw.t(y)
    prefix = f"op{op.index}"
    p = {"a": lw.operand(op, a, prefix + "_a"), "b": lw.operand(op, b, prefix + "_b"), "y": {"tensor": y}}
    p.update(_broadcast(op, ta, tb, ty))
    (s1, z1), (s2, z2), (so, zo) = lw.qp(ta), lw.qp(tb), lw.qp(ty)
    p["lo"], p["hi"] = lw.range_(op, ty)
    p.update(off1=-z1, off2=-z2, out_zp=zo)
    if kind == "add":
        q = quant.add_params(s1, s2, so)
        if max(q["m1"][1], q["m2"][1], q["mo"][1]) > 0:
            raise unsupported(op, "input/output scales whose ratio TFLM cannot represent")
        p.update(left_shift=q["left_shift"], m1=q["m1"][0], sh1=-q["m1"][1], m2=q["m2"][0], sh2=-q["m2"][1],
                 mo=q["mo"][0], sho=-q["mo"][1])
    else:
        p["mult"], p["shift"] = quant.mul_multiplier(s1, s2, so)
    ins = [v["tensor"] for v in (p["a"], p["b"]) if "tensor" in v]
    # element i of both inputs is read before element i is written: either input may be overwritten
    overlap = {t: streaming.flat_lag() for t in ins} if p["flat"] else {}
    lw.step(kind, op, ins, [y], p, ty.elements, overlap)


@lowers("ADD", kernels="elementwise")
def add(lw, op):
    """int8 addition with broadcasting (TFLM's shifted fixed-point scheme)."""
    _binary(lw, op, "add")


@lowers("MUL", kernels="elementwise")
def mul(lw, op):
    """int8 multiplication with broadcasting."""
    _binary(lw, op, "mul")
