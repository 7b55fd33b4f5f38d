"""The convert stage: a Keras model to a full-integer int8 .tflite, evaluated against the
float model with the tflite_micro runtime, and checked for what survived (sparsity, clusters)."""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from tinyopt import evaluate, weight_structure
from tinyopt.analysis.reader import read_tflite
from tinyopt.keras_io import Dataset
from tinyopt.quantize import representative_samples, to_int8_tflite

TFLITE_NAME = "model_int8.tflite"


@dataclass(frozen=True)
class ConvertOptions:
    calibration: int = 500          # representative samples for activation ranges
    int16x8: bool = False
    calibrate_random: bool = False  # allowed only on explicit request: accuracy is then unknown
    seed: int = 0
    eval_samples: int = 1000        # validation samples scored in the TFLM runtime


@dataclass(frozen=True)
class QuantizedModel:
    tflite_path: Path
    report: dict                    # the "int8" section of report.json


def convert_model(model, data: Dataset | None, options: ConvertOptions, out_dir: Path,
                  float_outputs=None, progress=None) -> QuantizedModel:
    """Write OUT_DIR/model_int8.tflite and return it with its evaluation and weight check."""
    from tinyopt.progress import stage
    x_cal = data.x_train if data is not None else None
    samples = representative_samples(x_cal, model, options.calibration, options.calibrate_random, options.seed)
    with stage(progress, "int8 conversion"):
        blob = to_int8_tflite(model, samples, int16x8=options.int16x8)
    path = Path(out_dir) / TFLITE_NAME
    path.write_bytes(blob)
    section: dict = {"tflite_bytes": len(blob), "gzip_bytes": len(gzip.compress(blob, 9)),
                     "activations": "int16" if options.int16x8 else "int8",
                     "calibration_samples": int(len(samples)),
                     "calibration": "random inputs (accuracy unknown)" if x_cal is None else "data"}
    if data is not None:
        with stage(progress, "int8 evaluation (TFLM runtime)"):
            x_val = data.x_val[: options.eval_samples]
            section.update(evaluate.score(evaluate.int8_outputs(blob, x_val), data, float_outputs))
    keras_names = [layer.name.removeprefix("quant_") for layer in model.layers]
    layers = weight_structure.weight_layers(read_tflite(blob), keras_names)
    section["layers"] = layers
    section["sparsity"] = weight_structure.overall_sparsity(layers)
    return QuantizedModel(path, section)

