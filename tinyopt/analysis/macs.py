"""Compute per operator: multiply-accumulates (MACs) and, for the operators that are not
multiply-accumulate shaped, the number of element operations ("other ops").

MACs follow the usual definition:
  CONV_2D            out_h * out_w * out_c * k_h * k_w * in_c / groups   (times batch)
  DEPTHWISE_CONV_2D  out_h * out_w * out_c * k_h * k_w                   (times batch)
  FULLY_CONNECTED    rows * in * out
  TRANSPOSE_CONV     in_h * in_w * in_c * k_h * k_w * out_c
  BATCH_MATMUL       out elements * inner dimension
Other ops (a separate column, never added to MACs):
  pools              out elements * window size (elements read)
  reductions (MEAN…) input elements
  element-wise ops   output elements (ADD, MUL, SOFTMAX, LOGISTIC, QUANTIZE, …)
  pure data movement 0 (RESHAPE, PAD, CONCATENATION, …)
"""
from __future__ import annotations

from dataclasses import dataclass

from tinyopt.analysis.reader import Operator, Tensor, TfliteModel
from tinyopt.errors import TinyoptError

_POOLS = {"AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"}
_REDUCTIONS = {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ALL",
               "REDUCE_ANY", "ARG_MAX", "ARG_MIN"}
# Operators that only move, copy or describe data: no arithmetic per element.
_DATA_MOVEMENT = {
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SHAPE", "PAD", "PADV2", "MIRROR_PAD",
    "CONCATENATION", "TRANSPOSE", "SPLIT", "SPLIT_V", "SLICE", "STRIDED_SLICE", "GATHER",
    "GATHER_ND", "PACK", "UNPACK", "BROADCAST_TO", "BROADCAST_ARGS", "DEPTH_TO_SPACE",
    "SPACE_TO_DEPTH", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "FILL", "ZEROS_LIKE",
    "REVERSE_V2", "CAST", "WHILE", "IF", "CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE",
    "ASSIGN_VARIABLE",
}


@dataclass(frozen=True)
class OpCost:
    macs: int
    other_ops: int


def _operand(model: TfliteModel, op: Operator, k: int, rank: int | None = None,
             min_rank: int = 0) -> Tensor:
    """Input K of OP, present and of the rank its operator defines; a converter never writes
    anything else, so a mismatch is a damaged file."""
    t = model.tensor(op.inputs[k]) if k < len(op.inputs) else None
    if t is None:
        raise TinyoptError(f"operator {op.opcode} (#{op.index}) lacks its input {k}: the file is damaged",
                           "copy or convert the model again")
    if (rank is not None and len(t.shape) != rank) or len(t.shape) < min_rank:
        want = rank if rank is not None else f">= {min_rank}"
        raise TinyoptError(f"operator {op.opcode} (#{op.index}) input {k} has shape {list(t.shape)}, "
                           f"rank {want} expected: the file is damaged", "copy or convert the model again")
    return t


def op_cost(model: TfliteModel, op: Operator) -> OpCost:
    out = model.tensor(op.outputs[0]) if op.outputs else None
    out_elems = out.elements if out is not None else 0
    code = op.opcode
    if code == "CONV_2D":
        filt = _operand(model, op, 1, rank=4)   # [out_c, k_h, k_w, in_c / groups]
        _, kh, kw, cin_per_group = filt.shape
        return OpCost(out_elems * kh * kw * cin_per_group, 0)
    if code == "DEPTHWISE_CONV_2D":
        filt = _operand(model, op, 1, rank=4)   # [1, k_h, k_w, out_c]
        return OpCost(out_elems * filt.shape[1] * filt.shape[2], 0)
    if code == "FULLY_CONNECTED":
        weights = _operand(model, op, 1, min_rank=1)   # [out, in]
        n_out, n_in = weights.shape[0], weights.shape[-1]
        rows = _operand(model, op, 0).elements // max(n_in, 1)
        return OpCost(rows * n_in * n_out, 0)
    if code == "TRANSPOSE_CONV":
        filt, x = _operand(model, op, 1, rank=4), _operand(model, op, 2)   # filter [out_c, k_h, k_w, in_c]
        return OpCost(x.elements * filt.shape[0] * filt.shape[1] * filt.shape[2], 0)
    if code == "BATCH_MATMUL":
        a = _operand(model, op, 0, min_rank=2)
        adj_x = bool(op.options.get("adjX", False))
        inner = a.shape[-2] if adj_x else a.shape[-1]
        return OpCost(out_elems * inner, 0)
    if code in _POOLS:
        window = int(op.options.get("filterHeight", 1)) * int(op.options.get("filterWidth", 1))
        return OpCost(0, out_elems * window)
    if code in _REDUCTIONS:
        return OpCost(0, _operand(model, op, 0).elements)
    if code in _DATA_MOVEMENT or code == "CUSTOM":
        return OpCost(0, 0)
    return OpCost(0, out_elems)
