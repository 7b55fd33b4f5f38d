"""What survived conversion: sparsity and unique values of each int8 weight tensor, read
from the .tflite itself (the converter may re-quantize or fold weights)."""
from __future__ import annotations

import numpy as np

from tinyopt.analysis.reader import TfliteModel

WEIGHT_OPS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1}


def layer_name(tensor_name: str, keras_names: list[str]) -> str:
    """The Keras layer a converter tensor name belongs to, when the name still carries it."""
    parts = tensor_name.replace(";", "/").split("/")
    for part in parts:
        # QAT wraps each layer as quant_<name>; report the user's layer name.
        name = part.removeprefix("quant_")
        if name in keras_names:
            return name
    return tensor_name


def weight_layers(model: TfliteModel, keras_names: list[str] | None = None) -> list[dict]:
    rows = []
    for op in model.operators:
        if op.opcode not in WEIGHT_OPS:
            continue
        w = model.tensor(op.inputs[WEIGHT_OPS[op.opcode]])
        if w is None or w.data is None:
            continue
        data = w.data
        # Per-channel quantization splits one cluster into one value per channel, so count
        # unique values per output channel as well as over the whole tensor.
        channel_axis = w.quantized_dimension if w.per_channel else 0
        per_channel = np.moveaxis(data, channel_axis, 0).reshape(data.shape[channel_axis], -1)
        out_name = model.tensors[op.outputs[0]].name
        rows.append({
            "op_index": op.index,
            "op": op.opcode,
            "layer": layer_name(out_name, keras_names or []) if keras_names else out_name,
            "tensor": w.name,
            "weights": int(data.size),
            "zeros": int(np.count_nonzero(data == 0)),
            "sparsity": float(np.mean(data == 0)),
            "unique_values": int(np.unique(data).size),
            "max_unique_per_channel": int(max(np.unique(row).size for row in per_channel)),
            "quantization": w.quant_kind,
        })
    return rows


def overall_sparsity(rows: list[dict]) -> float:
    total = sum(r["weights"] for r in rows)
    return float(sum(r["zeros"] for r in rows) / total) if total else 0.0
