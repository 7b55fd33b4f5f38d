"""aot lowering of CONV_2D and DEPTHWISE_CONV_2D: each function registered with @lowers turns one operator into
kernel steps (macros in firmware_templates/aot/kernels/conv.c.j2) with every constant
computed here."""
from __future__ import annotations

import numpy as np

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
             in_off=-zx, out_zp=zy, lo=lo, hi=hi, x={"tensor": x}, y={"tensor": y}, dsp=lw.dsp)
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
    bias_data = lw.t(bias_idx).data if bias_idx >= 0 else None
    lw.multipliers(prefix, quant.conv_multipliers(sx, w.scales, sy, O), p, lw.acc_bounds(bias_data, w2, -zx), zy)
    overlap = {x: streaming.window_lag(B, H, W, C, OH, OW, O, SH, SW, p["PH"], p["PW"])}
    if depthwise:
        if O % C:
            raise unsupported(op, f"{O} output channels is not a multiple of {C} input channels")
        p["M"] = O // C
        p["w"] = lw.const(prefix + "_w", "int8_t", w.data)
        p["sparse"] = False
        lw.out.dense_weight_bytes += w.data.size
        scratch = _depthwise_rows(p, lw.dsp)
        if p["rows"]:
            # the DSP path reads the weights sign-extended already (two LDRD-able words per tap and
            # four channels): twice the bytes of int8, for one instruction in four per tap
            p["w16"] = lw.const(prefix + "_w16", "int16_t", depthwise_halfword_pairs(w.data.reshape(KH * KW, C)), "dsp")
            lw.guard(p["w"], "portable")
            lw.out.weight_bytes += 2 * w.data.size
        else:
            lw.out.weight_bytes += w.data.size
        lw.step("depthwise_conv_2d", op, [x], [y], p, B * OH * OW * O * KH * KW, overlap, scratch)
    else:
        if w.shape[3] != C:
            raise unsupported(op, "grouped convolution")
        # the non-zero list kernel reads zero-point padded patches: it needs the folded bias
        lw.store_weights(prefix, w.data.reshape(O, KH * KW, C), True, p, f"op{op.index} CONV_2D", "conv",
                         listed=bool(p["fold"]))
        scratch = _nzlist(p) if p["nzlist"] else _gemm(p, lw.dsp)
        if p["gemm"]:
            # the DSP path reads the weights of each channel pair interleaved, four taps of one
            # channel then four of the other (one LDRD for both), the portable path row by row
            p["wp"] = lw.const(prefix + "_wp", "int8_t", pair_interleaved(w.data.reshape(O, -1)), "dsp")
            p["wp_stride"] = pair_stride(KH * KW * C)
            lw.guard(p["w"], "portable")
        lw.step("conv_2d", op, [x], [y], p, B * OH * OW * O * KH * KW * C, overlap, scratch)


# Largest scratch a windowed DSP kernel plans for (bytes): wider rows are cut into column tiles.
ROWS_SCRATCH = 4096
GEMM_MAX_K = 576


def ext_words(n: int) -> int:
    """Words n int8 values take once sign-extended (to_ext_s8: two per group of four, one per rest)."""
    return (n // 4) * 2 + n % 4


def pair_interleaved(w: np.ndarray) -> np.ndarray:
    """Rows (output channels) of W [O, K], O even, in the order the DSP matrix product reads them:
    for each pair of rows, each group of four columns of the first row then of the second, the
    K % 4 last columns of the first row then of the second, and zeros to the next word."""
    O, K = w.shape
    G = K // 4
    pairs = w.reshape(O // 2, 2, K)
    body = pairs[:, :, :4 * G].reshape(O // 2, 2, G, 4).transpose(0, 2, 1, 3).reshape(O // 2, 8 * G)
    tail = pairs[:, :, 4 * G:].reshape(O // 2, 2 * (K - 4 * G))
    pad = np.zeros((O // 2, pair_stride(K) - 2 * K), w.dtype)   # each pair starts word-aligned (LDRD)
    return np.concatenate([body, tail, pad], axis=1).reshape(-1)


def pair_stride(K: int) -> int:
    """Bytes from one channel pair's weights to the next in pair_interleaved: 2K rounded up to a word."""
    return -(-2 * K // 4) * 4


def _gemm(p: dict, dsp: bool) -> int:
    """DSP conv as a matrix product (p["gemm"]): two output pixels' windows sign-extended into the
    scratch, plus a raw patch when the channels are not a multiple of four. Returns scratch bytes."""
    K = p["KH"] * p["KW"] * p["C"]
    p["gemm"] = bool(dsp and not p["sparse"] and p["fold"] and p["O"] % 2 == 0 and p["DW"] == 1 and K <= GEMM_MAX_K)
    if not p["gemm"]:
        return 0
    direct = p["KH"] == 1 and p["KW"] == 1 and p["PH"] == 0 and p["PW"] == 0
    p["xs"] = ext_words(K)
    p["raw_patch"] = not direct and p["C"] % 4 != 0
    return 8 * p["xs"] + (-(-K // 4) * 4 if p["raw_patch"] else 0)


def depthwise_halfword_pairs(w: np.ndarray) -> np.ndarray:
    """Depthwise weights W [taps, C] (C % 4 == 0) as int16, per group of four channels c..c+3 its
    taps, each as the halfwords c, c+2, c+1, c+3: the order of to_ext_s8's two words (SXTB16 and
    SXTB16 ror 8 of an input word), so SMLABB / SMLATT pair them with the extended inputs."""
    taps, C = w.shape
    g = w.astype(np.int16).reshape(taps, C // 4, 4)[:, :, [0, 2, 1, 3]]
    return g.transpose(1, 0, 2).reshape(-1)


def _nzlist(p: dict) -> int:
    """The non-zero list kernel (p["nzlist"]): four output pixels' windows copied into the scratch
    as zero-point padded patches, KP bytes apart. Returns scratch bytes."""
    p["gemm"] = False
    p["KP"] = -(-p["KH"] * p["KW"] * p["C"] // 4) * 4
    return 4 * p["KP"]


def _depthwise_rows(p: dict, dsp: bool) -> int:
    """DSP depthwise with multiplier 1 and channels in fours (p["rows"]): for each output row, the
    KH input rows under a tile of TW output columns are sign-extended into the scratch, padded
    with the input zero point, so every pixel takes one unrolled path. Returns scratch bytes."""
    p["rows"] = bool(dsp and p["M"] == 1 and p["C"] % 4 == 0 and p["fold"])
    if not p["rows"]:
        return 0

    def row_bytes(tw: int) -> int:
        return p["KH"] * ((tw - 1) * p["SW"] + (p["KW"] - 1) * p["DW"] + 1) * p["C"] * 2
    tw = p["OW"]
    while tw > 1 and row_bytes(tw) > ROWS_SCRATCH:
        tw = -(-tw // 2)
    p["TW"] = tw
    p["TWP"] = (tw - 1) * p["SW"] + (p["KW"] - 1) * p["DW"] + 1
    # one tile, rows one apart: the KH rows are a ring, one new row extended per output row
    p["ring"] = bool(tw == p["OW"] and p["SH"] == 1 and p["DH"] == 1 and p["KH"] > 1)
    return row_bytes(tw)


@lowers("CONV_2D", kernels="conv")
def conv_2d(lw, op):
    """int8 2-D convolution, per-channel weights; dense or sparse storage per layer."""
    _conv(lw, op, False)


@lowers("DEPTHWISE_CONV_2D", kernels="conv")
def depthwise_conv_2d(lw, op):
    """int8 depthwise convolution, any depth multiplier."""
    _conv(lw, op, True)
