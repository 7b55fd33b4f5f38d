"""Lower a TfliteModel to a straight-line list of kernel steps with every constant
precomputed (multipliers, shifts, padding, activation ranges, broadcast strides). Each
step names a kernel macro in firmware_templates/aot/kernels.c.j2 and carries the values
it is specialised with; activation operands are tensor references that the planner
turns into buffer offsets."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyopt.analysis.backends import AOT_OPS
from tinyopt.analysis.reader import Operator, Tensor, TfliteModel
from tinyopt.errors import TinyoptError

from . import planner, quant, sparse

TFLM_HINT = "use `--backend tflm`, which interprets every TFLM operator"


@dataclass
class Const:
    name: str
    ctype: str            # int8_t int32_t uint8_t uint32_t
    values: np.ndarray


@dataclass
class Step:
    kind: str             # kernel macro name
    fn: str               # generated C function name
    opcode: str
    op_index: int
    inputs: list          # activation tensors read
    outputs: list         # activation tensors written
    params: dict
    macs: int = 0


@dataclass
class Lowered:
    steps: list = field(default_factory=list)
    consts: list = field(default_factory=list)
    aliases: dict = field(default_factory=dict)     # tensor -> tensor sharing its storage
    act_tensors: dict = field(default_factory=dict)  # tensor -> bytes
    weight_bytes: int = 0          # int8 weights as stored (dense or sparse encoding)
    dense_weight_bytes: int = 0    # the same weights stored densely
    other_const_bytes: int = 0     # biases, multipliers, shifts, bitmap starts
    sparse_layers: list = field(default_factory=list)


def _row_major_strides(shape) -> list[int]:
    """Element strides of a dense row-major (C order) array of SHAPE."""
    st, acc = [0] * len(shape), 1
    for i in range(len(shape) - 1, -1, -1):
        st[i], acc = acc, acc * int(shape[i])
    return st


def unsupported(op: Operator, why: str) -> TinyoptError:
    return TinyoptError(f"operator {op.opcode} (#{op.index}) is not supported by the aot backend: {why}",
                        TFLM_HINT)


class _Lowerer:
    def __init__(self, model: TfliteModel, use_sparse: bool, min_sparsity: float):
        self.m = model
        self.use_sparse = use_sparse
        self.min_sparsity = min_sparsity
        self.out = Lowered()

    # ---- tensors -------------------------------------------------------------------
    def t(self, idx: int) -> Tensor:
        return self.m.tensors[idx]

    def qp(self, t: Tensor) -> tuple[float, int]:
        if t.scales.size == 0:
            return 1.0, 0
        return float(t.scales[0]), int(t.zero_points[0]) if t.zero_points.size else 0

    def act(self, op: Operator, idx: int, dtypes=("INT8",)) -> int:
        t = self.t(idx)
        if t.is_constant:
            raise unsupported(op, f"input {t.name!r} is a constant where an activation is expected")
        if t.dtype not in dtypes:
            raise unsupported(op, f"tensor {t.name!r} is {t.dtype}, this kernel takes {'/'.join(dtypes)}")
        if t.nbytes > planner.MAX_BUFFER:
            raise TinyoptError(f"tensor {t.name!r} {list(t.shape)} of {op.opcode} (#{op.index}) needs {t.nbytes} bytes, "
                               "more than the static activation buffer can address",
                               "reduce the model's input or layer sizes; no microcontroller has that much RAM")
        self.out.act_tensors[idx] = t.nbytes
        return idx

    def operand(self, op: Operator, idx: int, name: str) -> dict:
        """An int8 operand that may be a constant (ADD/MUL/CONCATENATION)."""
        t = self.t(idx)
        if t.is_constant:
            if t.dtype != "INT8":
                raise unsupported(op, f"constant {t.name!r} is {t.dtype}")
            self.const(name, "int8_t", t.data)
            self.out.other_const_bytes += t.nbytes
            return {"const": name}
        return {"tensor": self.act(op, idx)}

    def const(self, name: str, ctype: str, values) -> str:
        self.out.consts.append(Const(name, ctype, np.asarray(values).reshape(-1)))
        return name

    def range_(self, op: Operator, out: Tensor) -> tuple[int, int]:
        act = op.options.get("fusedActivationFunction", "NONE")
        try:
            return quant.activation_range(act, *self.qp(out))
        except ValueError:
            raise unsupported(op, f"fused activation {act}") from None

    def multipliers(self, prefix: str, pairs: list[tuple[int, int]], p: dict) -> None:
        """Per-channel multipliers, or one constant when all channels agree."""
        if len(set(pairs)) == 1:
            p["mult"], p["shift"] = pairs[0]
            p["per_channel"] = False
        else:
            p["mult"] = self.const(prefix + "_mult", "int32_t", [m for m, _ in pairs])
            p["shift"] = self.const(prefix + "_shift", "int32_t", [s for _, s in pairs])
            p["per_channel"] = True
            self.out.other_const_bytes += 8 * len(pairs)

    def bias(self, op: Operator, idx: int, prefix: str, channels: int):
        if idx < 0:
            return None
        b = self.t(idx)
        if b.dtype != "INT32" or b.data is None:
            raise unsupported(op, f"bias {b.name!r} is {b.dtype}{'' if b.data is not None else ' and not constant'}")
        self.out.other_const_bytes += 4 * channels
        return self.const(prefix + "_bias", "int32_t", b.data)

    def folded(self, op: Operator, bias_idx: int, w2: np.ndarray, in_off: int, prefix: str):
        """bias + in_off * sum(weights) per output channel: lets kernels drop the per-MAC
        input-offset add where no padding is involved. The integer sum is the same, so the
        result stays bit-exact. None when a value would not fit int32."""
        b = self.t(bias_idx).data.astype(np.int64) if bias_idx >= 0 else np.zeros(w2.shape[0], np.int64)
        f = b + int(in_off) * w2.astype(np.int64).sum(axis=1)
        if f.min() < -(1 << 31) or f.max() >= (1 << 31):
            return None
        self.out.other_const_bytes += 4 * f.size
        return self.const(prefix + "_fold", "int32_t", f.astype(np.int32))

    def drop_const(self, name: str) -> None:
        for c in self.out.consts:
            if c.name == name:
                self.out.other_const_bytes -= c.values.size * c.values.itemsize
        self.out.consts = [c for c in self.out.consts if c.name != name]
        return None

    def weights(self, op: Operator, idx: int) -> Tensor:
        w = self.t(idx)
        if w.dtype != "INT8" or w.data is None:
            raise unsupported(op, f"weights {w.name!r} are {w.dtype}{'' if w.data is not None else ' and not constant'}")
        if w.zero_points.size and np.any(w.zero_points != 0):
            raise unsupported(op, "weights with a non-zero zero point")
        return w

    def store_weights(self, prefix: str, w3: np.ndarray, need_starts: bool, p: dict, layer: str) -> None:
        """Dense or sparse weights, whichever is smaller. w3: [channels, taps, inputs]."""
        enc = sparse.choose(w3, need_starts, self.use_sparse, self.min_sparsity)
        self.out.dense_weight_bytes += w3.size
        if enc is None:
            p["sparse"] = False
            p["w"] = self.const(prefix + "_w", "int8_t", w3)
            self.out.weight_bytes += w3.size
            return
        p["sparse"] = True
        p["bits"] = self.const(prefix + "_bits", "uint8_t", enc.bitmap)
        p["vals"] = self.const(prefix + "_vals", "int8_t", enc.values if enc.values.size else [0])
        p["tap_bytes"] = enc.tap_bytes
        if need_starts:
            p["starts"] = self.const(prefix + "_starts", "uint32_t", enc.starts)
        self.out.weight_bytes += enc.nbytes
        self.out.sparse_layers.append({"layer": layer, "dense_bytes": int(w3.size), "sparse_bytes": int(enc.nbytes),
                                       "zeros": float(1.0 - enc.values.size / max(1, w3.size))})

    # ---- operators -----------------------------------------------------------------
    def lower(self) -> Lowered:
        m = self.m
        if m.subgraph_count != 1:
            raise TinyoptError(f"the model has {m.subgraph_count} subgraphs (control flow)",
                               TFLM_HINT)
        bad = [op.opcode for op in m.operators if op.opcode not in AOT_OPS]
        if bad:
            names = ", ".join(dict.fromkeys(bad))
            raise TinyoptError(f"operator {names} is not supported by the aot backend "
                               f"(it compiles {', '.join(sorted(AOT_OPS))})", TFLM_HINT)
        for idx in list(m.inputs) + list(m.outputs):
            t = self.t(idx)
            if t.dtype != "INT8":
                kind = "a float model" if t.dtype.startswith("FLOAT") else f"a model with {t.dtype} activations"
                raise TinyoptError(f"model {'input' if idx in m.inputs else 'output'} {t.name!r} is {t.dtype}: "
                                   f"the aot backend compiles full-integer int8 models, this is {kind}",
                                   "convert it to int8 with `tinyopt convert` (int8 inputs and outputs), "
                                   "or use `--backend tflm`")
        for op in m.operators:
            self._check_float(op)
            try:
                getattr(self, "op_" + op.opcode.lower())(op)
            except (ValueError, IndexError, KeyError, TypeError, ZeroDivisionError, OverflowError) as err:
                # The lowering trusts shapes the TFLM runtime accepted; a damaged file can still
                # carry operands no valid converter output has (a shape of the wrong rank...).
                raise TinyoptError(
                    f"operator {op.opcode} (#{op.index}) has operands the aot backend cannot lower "
                    f"({type(err).__name__}: {str(err)[:100]})",
                    "the file may be damaged: `tinyopt analyze` shows its shapes; or use `--backend tflm`") from None
        return self.out

    def _check_float(self, op: Operator) -> None:
        if op.opcode in ("QUANTIZE", "DEQUANTIZE"):
            return
        for idx in op.inputs + op.outputs:
            if idx >= 0 and self.t(idx).dtype.startswith("FLOAT"):
                raise TinyoptError(f"operator {op.opcode} (#{op.index}) computes in {self.t(idx).dtype}: this is "
                                   "a float model, the aot backend compiles int8 models only",
                                   "convert it to int8 with `tinyopt convert`, or use `--backend tflm`")

    def step(self, kind: str, op: Operator, inputs: list, outputs: list, params: dict, macs: int = 0) -> None:
        fn = f"op{op.index}_{op.opcode.lower()}"
        self.out.steps.append(Step(kind, fn, op.opcode, op.index, inputs, outputs, params, macs))

    @staticmethod
    def padding(stride: int, dilation: int, in_size: int, filt: int, out_size: int) -> int:
        eff = (filt - 1) * dilation + 1
        return max(0, ((out_size - 1) * stride + eff - in_size) // 2)

    def _conv_common(self, op: Operator, depthwise: bool) -> None:
        x = self.act(op, op.inputs[0])
        w = self.weights(op, op.inputs[1])
        y = self.act(op, op.outputs[0])
        tx, ty = self.t(x), self.t(y)
        if len(tx.shape) != 4 or len(w.shape) != 4 or len(ty.shape) != 4:
            raise unsupported(op, "only 4-D NHWC tensors")
        B, H, W, C = tx.shape
        _, OH, OW, O = ty.shape
        KH, KW = w.shape[1], w.shape[2]
        o = op.options
        SH, SW = o.get("strideH", 1), o.get("strideW", 1)
        DH, DW = o.get("dilationHFactor", 1), o.get("dilationWFactor", 1)
        prefix = f"op{op.index}"
        sx, zx = self.qp(tx)
        sy, zy = self.qp(ty)
        lo, hi = self.range_(op, ty)
        p = dict(B=B, H=H, W=W, C=C, OH=OH, OW=OW, O=O, KH=KH, KW=KW, SH=SH, SW=SW, DH=DH, DW=DW,
                 PH=self.padding(SH, DH, H, KH, OH),
                 PW=self.padding(SW, DW, W, KW, OW),
                 in_off=-zx, out_zp=zy, lo=lo, hi=hi, x={"tensor": x}, y={"tensor": y})
        bias_idx = op.inputs[2] if len(op.inputs) > 2 else -1
        p["bias"] = self.bias(op, bias_idx, prefix, O)
        w2 = w.data.reshape(-1, O).T if depthwise else w.data.reshape(O, -1)
        p["fold"] = self.folded(op, bias_idx, w2, -zx, prefix)
        # every window inside the input: no border path, only the folded bias is needed
        p["all_interior"] = bool(p["PH"] == 0 and p["PW"] == 0 and (OH - 1) * SH + (KH - 1) * DH <= H - 1
                                 and (OW - 1) * SW + (KW - 1) * DW <= W - 1)
        if p["fold"] and p["all_interior"] and p["bias"]:
            p["bias"] = self.drop_const(p["bias"])
        p["block"] = max(d for d in range(1, 33) if O % d == 0)
        self.multipliers(prefix, quant.conv_multipliers(sx, w.scales, sy, O), p)
        if depthwise:
            if O % C:
                raise unsupported(op, f"{O} output channels is not a multiple of {C} input channels")
            p["M"] = O // C
            p["w"] = self.const(prefix + "_w", "int8_t", w.data)
            p["sparse"] = False
            self.out.weight_bytes += w.data.size
            self.out.dense_weight_bytes += w.data.size
            self.step("depthwise_conv_2d", op, [x], [y], p, B * OH * OW * O * KH * KW)
        else:
            if w.shape[3] != C:
                raise unsupported(op, "grouped convolution")
            self.store_weights(prefix, w.data.reshape(O, KH * KW, C), True, p, f"op{op.index} CONV_2D")
            self.step("conv_2d", op, [x], [y], p, B * OH * OW * O * KH * KW * C)

    def op_conv_2d(self, op):
        self._conv_common(op, False)

    def op_depthwise_conv_2d(self, op):
        self._conv_common(op, True)

    def op_fully_connected(self, op):
        x = self.act(op, op.inputs[0])
        w = self.weights(op, op.inputs[1])
        y = self.act(op, op.outputs[0])
        tx, ty = self.t(x), self.t(y)
        if len(w.shape) != 2:
            raise unsupported(op, "weights must be 2-D")
        O, K = w.shape
        if tx.elements % K:
            raise unsupported(op, "input size is not a multiple of the weights' depth")
        B = tx.elements // K
        prefix = f"op{op.index}"
        sx, zx = self.qp(tx)
        sy, zy = self.qp(ty)
        lo, hi = self.range_(op, ty)
        p = dict(B=B, K=K, O=O, in_off=-zx, out_zp=zy, lo=lo, hi=hi, x={"tensor": x}, y={"tensor": y})
        bias_idx = op.inputs[2] if len(op.inputs) > 2 else -1
        p["bias"] = self.bias(op, bias_idx, prefix, O)
        p["fold"] = self.folded(op, bias_idx, w.data.reshape(O, K), -zx, prefix)
        if p["fold"] and p["bias"]:
            p["bias"] = self.drop_const(p["bias"])
        if w.scales.size > 1:
            pairs = quant.conv_multipliers(sx, w.scales, sy, O)
        else:
            pairs = [quant.fc_per_tensor_multiplier(sx, float(w.scales[0]), sy)] * O
        self.multipliers(prefix, pairs, p)
        self.store_weights(prefix, w.data.reshape(O, 1, K), False, p, f"op{op.index} FULLY_CONNECTED")
        self.step("fully_connected", op, [x], [y], p, B * O * K)

    def _broadcast(self, op, a: Tensor, b: Tensor, y: Tensor) -> dict:
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

    def _binary(self, op, kind: str):
        a, b = op.inputs[0], op.inputs[1]
        y = self.act(op, op.outputs[0])
        ta, tb, ty = self.t(a), self.t(b), self.t(y)
        prefix = f"op{op.index}"
        p = {"a": self.operand(op, a, prefix + "_a"), "b": self.operand(op, b, prefix + "_b"), "y": {"tensor": y}}
        p.update(self._broadcast(op, ta, tb, ty))
        (s1, z1), (s2, z2), (so, zo) = self.qp(ta), self.qp(tb), self.qp(ty)
        p["lo"], p["hi"] = self.range_(op, ty)
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
        self.step(kind, op, ins, [y], p, ty.elements)

    def op_add(self, op):
        self._binary(op, "add")

    def op_mul(self, op):
        self._binary(op, "mul")

    def _pool(self, op, kind):
        x = self.act(op, op.inputs[0])
        y = self.act(op, op.outputs[0])
        tx, ty = self.t(x), self.t(y)
        B, H, W, C = tx.shape
        _, OH, OW, _ = ty.shape
        o = op.options
        FH, FW, SH, SW = o["filterHeight"], o["filterWidth"], o["strideH"], o["strideW"]
        lo, hi = self.range_(op, ty)
        p = dict(B=B, H=H, W=W, C=C, OH=OH, OW=OW, FH=FH, FW=FW, SH=SH, SW=SW,
                 PH=self.padding(SH, 1, H, FH, OH), PW=self.padding(SW, 1, W, FW, OW),
                 lo=lo, hi=hi, x={"tensor": x}, y={"tensor": y})
        self.step(kind, op, [x], [y], p, ty.elements * FH * FW)

    def op_average_pool_2d(self, op):
        self._pool(op, "average_pool_2d")

    def op_max_pool_2d(self, op):
        self._pool(op, "max_pool_2d")

    def op_reshape(self, op):
        x = self.act(op, op.inputs[0])
        y = self.act(op, op.outputs[0])
        self.out.aliases[y] = x          # same bytes, no code

    def op_softmax(self, op):
        x = self.act(op, op.inputs[0])
        y = self.act(op, op.outputs[0])
        tx, ty = self.t(x), self.t(y)
        sy, zy = self.qp(ty)
        if zy != -128 or np.float32(sy) != np.float32(1.0 / 256):
            raise unsupported(op, "int8 SOFTMAX needs output scale 1/256 and zero point -128")
        D = tx.shape[-1]
        p = dict(outer=tx.elements // D, D=D, x={"tensor": x}, y={"tensor": y},
                 **quant.softmax_params(op.options.get("beta", 1.0), self.qp(tx)[0]))
        self.step("softmax", op, [x], [y], p, tx.elements)

    def op_logistic(self, op):
        x = self.act(op, op.inputs[0])
        y = self.act(op, op.outputs[0])
        tx, ty = self.t(x), self.t(y)
        if self.qp(ty)[1] != -128:
            raise unsupported(op, "int8 LOGISTIC needs output zero point -128")
        p = dict(N=tx.elements, x={"tensor": x}, y={"tensor": y}, **quant.logistic_params(*self.qp(tx)))
        self.step("logistic", op, [x], [y], p, tx.elements)

    def op_relu(self, op):
        x = self.act(op, op.inputs[0])
        y = self.act(op, op.outputs[0])
        tx, ty = self.t(x), self.t(y)
        p = dict(N=tx.elements, x={"tensor": x}, y={"tensor": y},
                 **quant.relu_params(*self.qp(tx), *self.qp(ty)))
        self.step("relu", op, [x], [y], p, tx.elements)

    def op_relu6(self, op):
        x = self.act(op, op.inputs[0])
        y = self.act(op, op.outputs[0])
        tx = self.t(x)
        lo, hi = quant.relu6_bounds(*self.qp(tx))
        self.step("clamp", op, [x], [y], dict(N=tx.elements, lo=lo, hi=hi, x={"tensor": x}, y={"tensor": y}),
                  tx.elements)

    def op_quantize(self, op):
        x = self.act(op, op.inputs[0], ("INT8", "FLOAT32"))
        y = self.act(op, op.outputs[0])
        tx, ty = self.t(x), self.t(y)
        (sx, zx), (sy, zy) = self.qp(tx), self.qp(ty)
        if tx.dtype == "FLOAT32":
            p = dict(N=tx.elements, scale=float(np.float32(sy)).hex(), zp=zy, x={"tensor": x}, y={"tensor": y})
            self.step("quantize_float", op, [x], [y], p, tx.elements)
        else:
            mult, shift = quant.quantize_multiplier(quant.f32(sx) / quant.f32(sy))
            p = dict(N=tx.elements, mult=mult, shift=shift, in_zp=zx, out_zp=zy, x={"tensor": x}, y={"tensor": y})
            self.step("requantize", op, [x], [y], p, tx.elements)

    def op_dequantize(self, op):
        x = self.act(op, op.inputs[0])
        y = self.act(op, op.outputs[0], ("FLOAT32",))
        tx = self.t(x)
        sx, zx = self.qp(tx)
        p = dict(N=tx.elements, scale=quant.f32(sx).hex(), zp=zx, x={"tensor": x}, y={"tensor": y})
        self.step("dequantize", op, [x], [y], p, tx.elements)

    def op_mean(self, op):
        x = self.act(op, op.inputs[0])
        y = self.act(op, op.outputs[0])
        tx, ty = self.t(x), self.t(y)
        axis_t = self.t(op.inputs[1])
        if axis_t.data is None:
            raise unsupported(op, "the axis must be a constant")
        n = len(tx.shape)
        axes = sorted({int(a) % n for a in np.atleast_1d(axis_t.data)})
        st = _row_major_strides(tx.shape)
        kept = [{"n": tx.shape[i], "s": st[i]} for i in range(n) if i not in axes]
        red = [{"n": tx.shape[i], "s": st[i]} for i in axes]
        count = int(np.prod([tx.shape[i] for i in axes])) if axes else 1
        (sx, zx), (sy, zy) = self.qp(tx), self.qp(ty)
        mult, shift = quant.mean_multiplier(sx, sy, count)
        if shift < -31 or shift > 30:
            raise unsupported(op, "a scale ratio outside what the int8 kernel represents")
        p = dict(kept=kept, red=red, count=count, in_zp=zx, out_zp=zy, mult=mult, shift=shift,
                 x={"tensor": x}, y={"tensor": y})
        self.step("mean", op, [x], [y], p, tx.elements)

    def op_pad(self, op):
        x = self.act(op, op.inputs[0])
        y = self.act(op, op.outputs[0])
        tx, ty = self.t(x), self.t(y)
        pads = self.t(op.inputs[1])
        if pads.data is None:
            raise unsupported(op, "the paddings must be constant")
        pads = np.asarray(pads.data).reshape(-1, 2)
        n = len(tx.shape)
        si, so = _row_major_strides(tx.shape), _row_major_strides(ty.shape)
        base = int(sum(int(pads[i][0]) * so[i] for i in range(n)))
        dims = [{"n": tx.shape[i], "si": si[i], "so": so[i]} for i in range(n - 1)]
        p = dict(dims=dims, run=tx.shape[-1], base=base, N=ty.elements, value=self.qp(ty)[1],
                 x={"tensor": x}, y={"tensor": y})
        self.step("pad", op, [x], [y], p, ty.elements)

    def op_concatenation(self, op):
        y = self.act(op, op.outputs[0])
        ty = self.t(y)
        axis = int(op.options.get("axis", 0)) % len(ty.shape)
        sy, zy = self.qp(ty)
        parts = []
        for k, idx in enumerate(op.inputs):
            t = self.t(idx)
            s, z = self.qp(t)
            if np.float32(s) != np.float32(sy) or z != zy:
                raise unsupported(op, "inputs quantized differently from the output (TFLM refuses this too)")
            src = self.operand(op, idx, f"op{op.index}_in{k}")
            parts.append({"src": src, "inner": int(np.prod(t.shape[axis:]))})
        outer = int(np.prod(ty.shape[:axis])) if axis else 1
        if op.options.get("fusedActivationFunction", "NONE") != "NONE":
            raise unsupported(op, "a fused activation on CONCATENATION")
        p = dict(parts=parts, outer=outer, y={"tensor": y})
        ins = [q["src"]["tensor"] for q in parts if "tensor" in q["src"]]
        self.step("concatenation", op, ins, [y], p, ty.elements)


def lower(model: TfliteModel, use_sparse: bool = True, min_sparsity: float = sparse.MIN_SPARSITY) -> Lowered:
    return _Lowerer(model, use_sparse, min_sparsity).lower()


def resolve(value, offsets: dict):
    """Replace {"tensor": i} operand references by {"off": offset} for the templates."""
    if isinstance(value, dict):
        if "tensor" in value and len(value) == 1:
            return {"off": offsets[value["tensor"]]}
        return {k: resolve(v, offsets) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, offsets) for v in value]
    return value
