"""Lower a TfliteModel to a straight-line list of kernel steps with every constant
precomputed (multipliers, shifts, padding, activation ranges, broadcast strides). The
per-operator lowerings live in ops/, one module per operator family, found through the
registry; each step names a kernel macro in its family's template
(firmware_templates/aot/kernels/<family>.c.j2) and carries the values it is specialised
with; activation operands are tensor references that the planner turns into buffer
offsets. This module holds what every lowering shares."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyopt.analysis.reader import Operator, Tensor, TfliteModel
from tinyopt.errors import TinyoptError

from . import fusion, planner, quant, registry, sparse

TFLM_HINT = "use `--backend tflm`, which interprets every TFLM operator"


@dataclass
class Const:
    name: str
    ctype: str            # int8_t int32_t uint8_t uint32_t
    values: np.ndarray
    guard: str | None = None   # "dsp" / "portable": compiled only on cores with / without the DSP extension


@dataclass
class Step:
    kind: str             # kernel macro name
    template: str         # the family template that defines the macro
    fn: str               # generated C function name
    opcode: str
    op_index: int
    inputs: list          # activation tensors read
    outputs: list         # activation tensors written
    params: dict
    macs: int = 0
    overlap: dict = field(default_factory=dict)   # input tensor -> lag (streaming.py): output may overlap it
    scratch: int | None = None    # key of the step's scratch buffer in Lowered.scratch (planned like a tensor)
    fused_ops: tuple = ()         # operators folded into this step (fusion.py), by index
    exact_overlap: set = field(default_factory=set)   # inputs the output may also share exactly (planner.Overlap)


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
    scratch: dict = field(default_factory=dict)      # scratch key (negative) -> bytes, live during its step only


def row_major_strides(shape) -> list[int]:
    """Element strides of a dense row-major (C order) array of SHAPE."""
    st, acc = [0] * len(shape), 1
    for i in range(len(shape) - 1, -1, -1):
        st[i], acc = acc, acc * int(shape[i])
    return st


def unsupported(op: Operator, why: str) -> TinyoptError:
    return TinyoptError(f"operator {op.opcode} (#{op.index}) is not supported by the aot backend: {why}",
                        TFLM_HINT)


class Lowerer:
    """Shared state and helpers of one lowering; the per-operator functions are in ops/."""

    def __init__(self, model: TfliteModel, sparse_mode: str, dsp: bool = True):
        self.m = model
        self.sparse_mode = sparse_mode       # sparse.MODES
        self.dsp = dsp          # generate the DSP paths (and plan their scratch) next to the portable ones
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
            raise TinyoptError(f"tensor {t.name!r} {list(t.shape)} of {op.opcode} (#{op.index}) needs "
                               f"{t.nbytes} bytes, "
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

    def const(self, name: str, ctype: str, values, guard: str | None = None) -> str:
        self.out.consts.append(Const(name, ctype, np.asarray(values).reshape(-1), guard))
        return name

    def guard(self, name: str, guard: str) -> None:
        """Compile constant NAME only on cores with ("dsp") or without ("portable") the DSP
        extension: its path's own layout of the same values exists for the others."""
        for c in self.out.consts:
            if c.name == name:
                c.guard = guard

    def range_(self, op: Operator, out: Tensor) -> tuple[int, int]:
        act = op.options.get("fusedActivationFunction", "NONE")
        try:
            return quant.activation_range(act, *self.qp(out))
        except ValueError:
            raise unsupported(op, f"fused activation {act}") from None

    def multipliers(self, prefix: str, pairs: list[tuple[int, int]], p: dict,
                    acc_bounds: np.ndarray | None = None, out_zp: int | None = None) -> None:
        """Per-channel multipliers, or one constant when all channels agree; p["rq"] names the
        requantization the kernels use (common.c.j2's out8), each giving TFLM's result:
        "bias": every multiplier strictly between 2^30 and 2^31, every shift <= -2, and
        acc_bounds (the largest |accumulator| per channel) small enough that to_rqb's high
        word cannot wrap: one rounding step with the zero point folded in, a table of
        (multiplier, start of the high word, shift) per channel; "rs": the same multipliers
        and shifts without a bound: to_mbqm_rs, then + zero point; "two_step": to_mbqm."""
        fast = all((1 << 30) < m < (1 << 31) and s <= -2 for m, s in pairs)
        if fast and acc_bounds is not None and out_zp is not None:
            starts = [(1 << (-s - 2)) * (1 + 2 * int(out_zp)) for _, s in pairs]
            bounds = np.broadcast_to(np.asarray(acc_bounds, np.float64), (len(pairs),))
            if all(float(bd) * m / 2.0 ** 32 + abs(b) + 2 < 2.0 ** 31 for bd, (m, _), b in zip(bounds, pairs, starts)):
                triples = [(m, b, -s - 1) for (m, s), b in zip(pairs, starts)]
                p["rq"] = "bias"
                if len(set(triples)) == 1:
                    p["mult"], p["rq_b"], p["shift"] = triples[0]
                    p["per_channel"] = False
                else:
                    p["rq_table"] = self.const(prefix + "_rq", "int32_t", [v for t in triples for v in t])
                    p["per_channel"] = True
                    self.out.other_const_bytes += 12 * len(pairs)
                return
        p["rq"] = "rs" if fast else "two_step"
        if fast:
            pairs = [(m, -s - 2) for m, s in pairs]
        if len(set(pairs)) == 1:
            p["mult"], p["shift"] = pairs[0]
            p["per_channel"] = False
        else:
            p["mult"] = self.const(prefix + "_mult", "int32_t", [m for m, _ in pairs])
            p["shift"] = self.const(prefix + ("_rs" if fast else "_shift"), "int32_t", [s for _, s in pairs])
            p["per_channel"] = True
            self.out.other_const_bytes += 8 * len(pairs)

    @staticmethod
    def acc_bounds(bias: np.ndarray | None, w2: np.ndarray, in_off: int) -> np.ndarray:
        """The largest |accumulator| per output channel (rows of w2) on every kernel path: the
        bias plus the input offset times the weights (folded or not) plus int8 inputs."""
        b = np.abs(bias.astype(np.int64)) if bias is not None else 0
        return b + (128 + abs(int(in_off))) * np.abs(w2.astype(np.int64)).sum(axis=1)

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
            kind = w.dtype if w.data is not None else f"{w.dtype} and not constant"
            raise unsupported(op, f"weights {w.name!r} are {kind}")
        if w.zero_points.size and np.any(w.zero_points != 0):
            raise unsupported(op, "weights with a non-zero zero point")
        return w

    def store_weights(self, prefix: str, w3: np.ndarray, need_starts: bool, p: dict, layer: str,
                      kernel: str, listed: bool = False) -> None:
        """Dense, bitmap (p["sparse"]) or, where the kernel takes one (listed: a convolution with
        the folded bias), non-zero list (p["nzlist"]) storage, by sparse.thresholds for this core,
        mode and KERNEL ("conv", "fc"). w3: [channels, taps, inputs]."""
        bitmap_from, list_from = sparse.thresholds(self.sparse_mode, self.dsp, kernel)
        enc = sparse.choose(w3, need_starts, bitmap_from, list_from if listed else None,
                            smallest=self.sparse_mode == "size")
        self.out.dense_weight_bytes += w3.size
        p["sparse"] = p["nzlist"] = False
        if enc is None:
            p["w"] = self.const(prefix + "_w", "int8_t", w3)
            self.out.weight_bytes += w3.size
            return
        if isinstance(enc, sparse.NonzeroList):
            p["nzlist"] = True
            p["nz_counts"] = self.const(prefix + "_nzn", "uint16_t", enc.counts)
            p["nz_offs"] = self.const(prefix + "_nzo", "uint16_t", enc.offsets if enc.offsets.size else [0])
            p["nz_vals"] = self.const(prefix + "_nzv", "int8_t", enc.values if enc.values.size else [0])
            kind = "non-zero list"
        else:
            p["sparse"] = True
            p["bits"] = self.const(prefix + "_bits", "uint8_t", enc.bitmap)
            p["vals"] = self.const(prefix + "_vals", "int8_t", enc.values if enc.values.size else [0])
            p["tap_bytes"] = enc.tap_bytes
            if need_starts:
                p["starts"] = self.const(prefix + "_starts", "uint32_t", enc.starts)
            kind = "bitmap"
        self.out.weight_bytes += enc.nbytes
        self.out.sparse_layers.append({"layer": layer, "dense_bytes": int(w3.size), "sparse_bytes": int(enc.nbytes),
                                       "zeros": float(1.0 - enc.values.size / max(1, w3.size)), "encoding": kind})

    def lower(self) -> Lowered:
        m = self.m
        if m.subgraph_count != 1:
            raise TinyoptError(f"the model has {m.subgraph_count} subgraphs (control flow)",
                               TFLM_HINT)
        supported = registry.supported_ops()
        bad = [op.opcode for op in m.operators if op.opcode not in supported]
        if bad:
            names = ", ".join(dict.fromkeys(bad))
            raise TinyoptError(f"operator {names} is not supported by the aot backend "
                               f"(it compiles {', '.join(sorted(supported))})", TFLM_HINT)
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
                registry.LOWERINGS[op.opcode].fn(self, op)
            except (ValueError, IndexError, KeyError, TypeError, ZeroDivisionError, OverflowError) as err:
                # The lowering trusts shapes the TFLM runtime accepted; a damaged file can still
                # carry operands no valid converter output has (a shape of the wrong rank...).
                raise TinyoptError(
                    f"operator {op.opcode} (#{op.index}) has operands the aot backend cannot lower "
                    f"({type(err).__name__}: {str(err)[:100]})",
                    "the file may be damaged: `tinyopt analyze` shows its shapes; or use `--backend tflm`") from None
        fusion.fuse_residual_adds(self.out, m.outputs)
        return self.out

    def _check_float(self, op: Operator) -> None:
        if op.opcode in ("QUANTIZE", "DEQUANTIZE"):
            return
        for idx in op.inputs + op.outputs:
            if idx >= 0 and self.t(idx).dtype.startswith("FLOAT"):
                raise TinyoptError(f"operator {op.opcode} (#{op.index}) computes in {self.t(idx).dtype}: this is "
                                   "a float model, the aot backend compiles int8 models only",
                                   "convert it to int8 with `tinyopt convert`, or use `--backend tflm`")

    def step(self, kind: str, op: Operator, inputs: list, outputs: list, params: dict, macs: int = 0,
             overlap: dict | None = None, scratch: int = 0) -> None:
        """overlap: input tensor -> lag for kernels that may write their output over that input
        (see streaming.py); the planner decides whether to. scratch: bytes the kernel needs while
        it runs (extended patches, padded rows); they are planned in the activation buffer like a
        tensor that lives for this step only, and the kernel finds them at params["scratch"]."""
        fn = f"op{op.index}_{op.opcode.lower()}"
        template = registry.LOWERINGS[op.opcode].template
        key = None
        if scratch > 0:
            key = -1 - len(self.out.steps)        # negative: never a model tensor's index
            self.out.scratch[key] = int(scratch)
            params["scratch"] = {"tensor": key}
        self.out.steps.append(Step(kind, template, fn, op.opcode, op.index, inputs, outputs, params, macs,
                                   dict(overlap or {}), key))

    @staticmethod
    def padding(stride: int, dilation: int, in_size: int, filt: int, out_size: int) -> int:
        eff = (filt - 1) * dilation + 1
        return max(0, ((out_size - 1) * stride + eff - in_size) // 2)

def lower(model: TfliteModel, sparse_mode: str = "auto", dsp: bool = True) -> Lowered:
    """sparse_mode: sparse.MODES; dsp: the target core may have Arm's DSP extension (False:
    portable kernels only)."""
    return Lowerer(model, sparse_mode, dsp).lower()


def resolve(value, offsets: dict):
    """Replace {"tensor": i} operand references by {"off": offset} for the templates."""
    if isinstance(value, dict):
        if "tensor" in value and len(value) == 1:
            return {"off": offsets[value["tensor"]]}
        return {k: resolve(v, offsets) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, offsets) for v in value]
    return value
