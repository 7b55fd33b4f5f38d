"""aot lowering of SOFTMAX, LOGISTIC, RELU and RELU6: each function registered with @lowers turns one operator into
kernel steps (macros in firmware_templates/aot/kernels/activations.c.j2) with every constant
computed here."""
from __future__ import annotations

import numpy as np

from tinyopt.codegen.aot import quant
from tinyopt.codegen.aot.lowering import unsupported
from tinyopt.codegen.aot.registry import lowers


@lowers("SOFTMAX", kernels='activations')
def softmax(lw, op):
    """int8 softmax along the last axis (TFLM's gemmlowp-style exp and reciprocal)."""
    x = lw.act(op, op.inputs[0])
    y = lw.act(op, op.outputs[0])
    tx, ty = lw.t(x), lw.t(y)
    sy, zy = lw.qp(ty)
    if zy != -128 or np.float32(sy) != np.float32(1.0 / 256):
        raise unsupported(op, "int8 SOFTMAX needs output scale 1/256 and zero point -128")
    D = tx.shape[-1]
    p = dict(outer=tx.elements // D, D=D, x={"tensor": x}, y={"tensor": y},
             **quant.softmax_params(op.options.get("beta", 1.0), lw.qp(tx)[0]))
    lw.step("softmax", op, [x], [y], p, tx.elements)


@lowers("LOGISTIC", kernels='activations')
def logistic(lw, op):
    """int8 logistic (sigmoid), output zero point -128."""
    x = lw.act(op, op.inputs[0])
    y = lw.act(op, op.outputs[0])
    tx, ty = lw.t(x), lw.t(y)
    if lw.qp(ty)[1] != -128:
        raise unsupported(op, "int8 LOGISTIC needs output zero point -128")
    p = dict(N=tx.elements, x={"tensor": x}, y={"tensor": y}, **quant.logistic_params(*lw.qp(tx)))
    lw.step("logistic", op, [x], [y], p, tx.elements)


@lowers("RELU", kernels='activations')
def relu(lw, op):
    """int8 ReLU with requantization."""
    x = lw.act(op, op.inputs[0])
    y = lw.act(op, op.outputs[0])
    tx, ty = lw.t(x), lw.t(y)
    p = dict(N=tx.elements, x={"tensor": x}, y={"tensor": y},
             **quant.relu_params(*lw.qp(tx), *lw.qp(ty)))
    lw.step("relu", op, [x], [y], p, tx.elements)


@lowers("RELU6", kernels='activations')
def relu6(lw, op):
    """int8 ReLU6 as a clamp in the input's scale."""
    x = lw.act(op, op.inputs[0])
    y = lw.act(op, op.outputs[0])
    tx = lw.t(x)
    lo, hi = quant.relu6_bounds(*lw.qp(tx))
    lw.step("clamp", op, [x], [y], dict(N=tx.elements, lo=lo, hi=hi, x={"tensor": x}, y={"tensor": y}),
              tx.elements)
