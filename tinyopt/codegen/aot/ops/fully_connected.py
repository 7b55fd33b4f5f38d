"""aot lowering of FULLY_CONNECTED: each function registered with @lowers turns one operator into
kernel steps (macros in firmware_templates/aot/kernels/fully_connected.c.j2) with every constant
computed here."""
from __future__ import annotations

from tinyopt.codegen.aot import quant
from tinyopt.codegen.aot.lowering import unsupported
from tinyopt.codegen.aot.ops.conv import ext_words
from tinyopt.codegen.aot.registry import lowers


@lowers("FULLY_CONNECTED", kernels="fully_connected")
def fully_connected(lw, op):
    """int8 fully connected, per-tensor or per-channel weights; dense or sparse storage."""
    x = lw.act(op, op.inputs[0])
    w = lw.weights(op, op.inputs[1])
    y = lw.act(op, op.outputs[0])
    tx, ty = lw.t(x), lw.t(y)
    if len(w.shape) != 2:
        raise unsupported(op, "weights must be 2-D")
    O, K = w.shape
    if tx.elements % K:
        raise unsupported(op, "input size is not a multiple of the weights' depth")
    B = tx.elements // K
    prefix = f"op{op.index}"
    sx, zx = lw.qp(tx)
    sy, zy = lw.qp(ty)
    lo, hi = lw.range_(op, ty)
    p = dict(B=B, K=K, O=O, in_off=-zx, out_zp=zy, lo=lo, hi=hi, x={"tensor": x}, y={"tensor": y}, dsp=lw.dsp)
    bias_idx = op.inputs[2] if len(op.inputs) > 2 else -1
    p["bias"] = lw.bias(op, bias_idx, prefix, O)
    p["fold"] = lw.folded(op, bias_idx, w.data.reshape(O, K), -zx, prefix)
    if p["fold"] and p["bias"]:
        p["bias"] = lw.drop_const(p["bias"])
    if w.scales.size > 1:
        pairs = quant.conv_multipliers(sx, w.scales, sy, O)
    else:
        pairs = [quant.fc_per_tensor_multiplier(sx, float(w.scales[0]), sy)] * O
    bias_data = lw.t(bias_idx).data if bias_idx >= 0 else None
    lw.multipliers(prefix, pairs, p, lw.acc_bounds(bias_data, w.data.reshape(O, K), -zx), zy)
    lw.store_weights(prefix, w.data.reshape(O, 1, K), False, p, f"op{op.index} FULLY_CONNECTED", "fc")
    # DSP cores: the input sign-extended once for all rows, in the scratch (up to 1024 inputs)
    p["ext"] = bool(lw.dsp and O % 4 == 0 and p["fold"] and not p["sparse"] and K <= 1024)
    scratch = 4 * ext_words(K) if p["ext"] else 0
    lw.step("fully_connected", op, [x], [y], p, B * O * K, scratch=scratch)
