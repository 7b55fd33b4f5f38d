"""aot lowering of CONV_2D and DEPTHWISE_CONV_2D: each function registered with @lowers turns one operator into
kernel steps (macros in firmware_templates/aot/kernels/conv.c.j2) with every constant
computed here."""
from __future__ import annotations

from tinyopt.analysis.reader import Operator
from tinyopt.codegen.aot import quant, streaming
from tinyopt.codegen.aot.lowering import Lowerer, unsupported
from tinyopt.codegen.aot.registry import lowers


def _conv(lw: Lowerer, op: Operator, depthwise: bool) -> None:
    x = lw.act(op, op.inputs[0])
    w = lw.weights(op, op.inputs[1])
    y = lw.act(op, op.outputs[0])
    tx, ty = lw.t(x), lw.t(y)
    if len(tx.shape) != 4 or len(w.shape) != 4 or len(ty.shape) != 4:
        raise unsupported(op, "only 4-D NHWC tensors")
    B, H, W, C = tx.shape
    _, OH, OW, O = ty.shape
    KH, KW = w.shape[1], w.shape[2]
    o = op.options
    SH, SW = o.get("strideH", 1), o.get("strideW", 1)
    DH, DW = o.get("dilationHFactor", 1), o.get("dilationWFactor", 1)
    prefix = f"op{op.index}"
    sx, zx = lw.qp(tx)
    sy, zy = lw.qp(ty)
    lo, hi = lw.range_(op, ty)
    p = dict(B=B, H=H, W=W, C=C, OH=OH, OW=OW, O=O, KH=KH, KW=KW, SH=SH, SW=SW, DH=DH, DW=DW,
             PH=lw.padding(SH, DH, H, KH, OH),
             PW=lw.padding(SW, DW, W, KW, OW),
             in_off=-zx, out_zp=zy, lo=lo, hi=hi, x={"tensor": x}, y={"tensor": y})
    bias_idx = op.inputs[2] if len(op.inputs) > 2 else -1
    p["bias"] = lw.bias(op, bias_idx, prefix, O)
    w2 = w.data.reshape(-1, O).T if depthwise else w.data.reshape(O, -1)
    p["fold"] = lw.folded(op, bias_idx, w2, -zx, prefix)
    # every window inside the input: no border path, only the folded bias is needed
    p["all_interior"] = bool(p["PH"] == 0 and p["PW"] == 0 and (OH - 1) * SH + (KH - 1) * DH <= H - 1
                             and (OW - 1) * SW + (KW - 1) * DW <= W - 1)
    if p["fold"] and p["all_interior"] and p["bias"]:
        p["bias"] = lw.drop_const(p["bias"])
    p["block"] = max(d for d in range(1, 33) if O % d == 0)
    lw.multipliers(prefix, quant.conv_multipliers(sx, w.scales, sy, O), p)
    overlap = {x: streaming.window_lag(B, H, W, C, OH, OW, O, SH, SW, p["PH"], p["PW"])}
    if depthwise:
        if O % C:
            raise unsupported(op, f"{O} output channels is not a multiple of {C} input channels")
        p["M"] = O // C
        p["w"] = lw.const(prefix + "_w", "int8_t", w.data)
        p["sparse"] = False
        lw.out.weight_bytes += w.data.size
        lw.out.dense_weight_bytes += w.data.size
        lw.step("depthwise_conv_2d", op, [x], [y], p, B * OH * OW * O * KH * KW, overlap)
    else:
        if w.shape[3] != C:
            raise unsupported(op, "grouped convolution")
        lw.store_weights(prefix, w.data.reshape(O, KH * KW, C), True, p, f"op{op.index} CONV_2D")
        lw.step("conv_2d", op, [x], [y], p, B * OH * OW * O * KH * KW * C, overlap)


@lowers("CONV_2D", kernels="conv")
def conv_2d(lw, op):
    """int8 2-D convolution, per-channel weights; dense or sparse storage per layer."""
    _conv(lw, op, False)


@lowers("DEPTHWISE_CONV_2D", kernels="conv")
def depthwise_conv_2d(lw, op):
    """int8 depthwise convolution, any depth multiplier."""
    _conv(lw, op, True)
