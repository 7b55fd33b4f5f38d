"""Accuracy of float, optimized and int8 models on the validation data. The int8 figures
come from the tflite_micro runtime, the same kernels the device runs."""
from __future__ import annotations

import numpy as np

from tinyopt.keras_io import Dataset, as_model_input
from tinyopt.tflm_runtime import Runner, dequantize, input_quantization, output_quantization, quantize


def keras_outputs(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(as_model_input(x, model), batch_size=256, verbose=0), np.float32)


def int8_outputs(tflite: bytes, x: np.ndarray) -> np.ndarray:
    """Dequantized outputs of the int8 model for float inputs x."""
    runner = Runner(tflite)
    in_scale, in_zp = input_quantization(runner)
    out_scale, out_zp = output_quantization(runner)
    outs = []
    for sample in np.asarray(x, np.float32):
        q = quantize(sample, in_scale, in_zp, runner.input_dtype)
        outs.append(dequantize(runner.run(q), out_scale, out_zp).reshape(-1))
    return np.stack(outs)


def _is_classifier(outputs: np.ndarray) -> bool:
    return outputs.ndim == 2 and outputs.shape[1] > 1


def _labels(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    return y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1).astype(np.int64)


def score(outputs: np.ndarray, data: Dataset, reference: np.ndarray | None) -> dict:
    """Accuracy against labels when there are labels (classifiers), plus agreement and RMSE
    against a reference model's outputs (the float model)."""
    outputs = outputs.reshape(len(outputs), -1)
    result: dict = {"samples": int(len(outputs))}
    if data.y_val is not None and _is_classifier(outputs):
        result["accuracy"] = float(np.mean(outputs.argmax(axis=1) == _labels(data.y_val)[: len(outputs)]))
    if reference is not None:
        reference = reference.reshape(len(reference), -1)
        if _is_classifier(outputs):
            result["agreement"] = float(np.mean(outputs.argmax(1) == reference.argmax(1)))
        result["rmse"] = float(np.sqrt(np.mean((outputs - reference) ** 2)))
    return result
