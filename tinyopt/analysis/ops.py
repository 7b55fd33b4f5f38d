"""The per-operator table: shapes, types, quantization kinds, parameters, MACs, bytes."""
from __future__ import annotations

from dataclasses import dataclass

from tinyopt.analysis.layers import layer_of_op
from tinyopt.analysis.macs import op_cost
from tinyopt.analysis.reader import Operator, Tensor, TfliteModel

# Operators whose int32 constant input at position 2 is a bias (a parameter); other int32
# constants (reshape targets, paddings, axes) describe shapes and are not parameters.
_BIASED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}
_INDEX_TYPES = {"INT32", "INT64"}


@dataclass(frozen=True)
class TensorRef:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: str          # "none", "per-tensor" or "per-channel"
    constant: bool

    def to_json(self) -> dict:
        return {"index": self.index, "name": self.name, "shape": list(self.shape),
                "dtype": self.dtype, "quant": self.quant, "constant": self.constant}


@dataclass(frozen=True)
class OpRow:
    index: int
    name: str                 # opcode, e.g. "CONV_2D" (custom ops: "CUSTOM:<code>")
    layer: str | None         # Keras layer recovered from tensor names
    inputs: tuple[TensorRef, ...]
    outputs: tuple[TensorRef, ...]
    options: dict
    macs: int
    other_ops: int
    params: int
    weight_bytes: int
    output_bytes: int
    param_tensors: tuple[int, ...]   # tensor indices counted as parameters (for totals)
    live_bytes: int = 0              # activation bytes alive while this operator runs

    def to_json(self) -> dict:
        return {"index": self.index, "name": self.name, "layer": self.layer,
                "inputs": [t.to_json() for t in self.inputs],
                "outputs": [t.to_json() for t in self.outputs],
                "options": _plain(self.options), "macs": self.macs, "other_ops": self.other_ops,
                "params": self.params, "weight_bytes": self.weight_bytes,
                "output_bytes": self.output_bytes, "live_activation_bytes": self.live_bytes}


def _plain(value):
    """Options may hold nested option objects (e.g. quantSpec); JSON wants plain values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _ref(t: Tensor) -> TensorRef:
    return TensorRef(t.index, t.name, tuple(t.shape), t.dtype, t.quant_kind, t.is_constant)


def is_parameter(op: Operator, position: int, t: Tensor) -> bool:
    if not t.is_constant:
        return False
    if t.dtype in _INDEX_TYPES:
        return op.opcode in _BIASED and position == 2
    return True


def op_row(model: TfliteModel, op: Operator) -> OpRow:
    ins = [model.tensor(i) for i in op.inputs]
    outs = [model.tensors[i] for i in op.outputs if i >= 0]
    params = [t for pos, t in enumerate(ins) if t is not None and is_parameter(op, pos, t)]
    cost = op_cost(model, op)
    name = op.opcode if op.custom_code is None else f"CUSTOM:{op.custom_code}"
    return OpRow(
        index=op.index, name=name, layer=layer_of_op(model, op),
        inputs=tuple(_ref(t) for t in ins if t is not None),
        outputs=tuple(_ref(t) for t in outs), options=_plain(op.options),
        macs=cost.macs, other_ops=cost.other_ops,
        params=sum(t.elements for t in params), weight_bytes=sum(t.nbytes for t in params),
        output_bytes=sum(t.nbytes for t in outs), param_tensors=tuple(t.index for t in params))


def op_rows(model: TfliteModel) -> tuple[OpRow, ...]:
    return tuple(op_row(model, op) for op in model.operators)
