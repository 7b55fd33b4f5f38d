"""Keras layer names recovered from TFLite tensor names.

The converter names tensors after the TensorFlow ops they came from, e.g.
"functional_1/conv2d/Conv2D" or, after fusing, "model/activation/Relu;model/conv2d/BiasAdd;...".
The part after the model scope is the Keras layer name; it is what a user can find in
their own code, so audit messages and tables use it."""
from __future__ import annotations

from tinyopt.analysis.reader import Operator, TfliteModel

# Name parts that are TensorFlow op names, not layers: skip them when they come first.
_NOT_LAYERS = {"StatefulPartitionedCall", "PartitionedCall", "serving_default"}


def layer_of_tensor_name(name: str) -> str | None:
    """Keras layer named by one tensor name, or None when the name carries none."""
    # In a fused name the last part is usually the op that the tensor's producer
    # started from (the conv in "relu;bn;...;conv2d/Conv2D").
    for part in reversed([p for p in name.split(";") if p]):
        pieces = [p for p in part.split("/") if p and p not in _NOT_LAYERS]
        if len(pieces) >= 3:
            return pieces[1]          # "<model>/<layer>/<tf op>"
        if len(pieces) == 2:
            return pieces[0]          # "<layer>/<tf op>"
    return None


def layer_of_op(model: TfliteModel, op: Operator) -> str | None:
    """Keras layer for an operator: from its weights' name first (those are never fused
    with other layers' names), then from its output."""
    candidates = []
    for idx in op.inputs[1:]:
        t = model.tensor(idx)
        if t is not None and t.is_constant and len(t.shape) >= 2:
            candidates.append(t.name)
    candidates += [model.tensors[i].name for i in op.outputs if i >= 0]
    for name in candidates:
        layer = layer_of_tensor_name(name)
        if layer:
            return layer
    return None
