"""The Keras half of the pipeline as one call: load -> (optimize) -> convert -> evaluate,
writing OUT/ (optimized.keras, model_int8.tflite, report.json, report.md). Used by the
`optimize` and `convert` commands and by `build`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinyopt import evaluate, keras_io
from tinyopt.convert import ConvertOptions, QuantizedModel, convert_model
from tinyopt.errors import TinyoptError
from tinyopt.optimize import OptimizeOptions, optimize_model
from tinyopt.report import new_report, timed, write_json, write_markdown


@dataclass(frozen=True)
class KerasStageResult:
    quantized: QuantizedModel
    report: dict


def resolve_inputs(model_arg: str | None, data_arg: str | None, progress=None):
    """The model and data to use: the bundled demo (with its data) when no model is given."""
    if model_arg is None:
        model_path = keras_io.demo_model_path(progress)
        data_path = Path(data_arg) if data_arg else keras_io.demo_data_path()
    else:
        model_path, data_path = Path(model_arg), (Path(data_arg) if data_arg else None)
    model = keras_io.load_model(model_path)
    data = keras_io.load_dataset(data_path, model) if data_path else None
    return model_path, model, data


def run(command: str, model_arg: str | None, data_arg: str | None, out_dir: Path,
        optimize_options: OptimizeOptions | None, convert_options: ConvertOptions,
        progress=None) -> KerasStageResult:
    """OUT_DIR must be a fresh (staged) directory; the caller renames it into place."""
    report = new_report(command)
    if optimize_options is not None:
        optimize_options.validate()  # before any slow work
    with timed(report, "load"):
        model_path, model, data = resolve_inputs(model_arg, data_arg, progress)
    report["model"] = {"path": str(model_path), "params": int(model.count_params()),
                       "demo": model_arg is None}
    report["data"] = {"path": data.source if data else None,
                      "train": int(len(data.x_train)) if data else 0,
                      "val": int(len(data.x_val)) if data else 0,
                      "labels": bool(data and data.labelled)}
    float_out = None
    if data is not None:
        with timed(report, "evaluate_float"):
            x_val = data.x_val[: convert_options.eval_samples]
            float_out = evaluate.keras_outputs(model, x_val)
            report["float"] = evaluate.score(float_out, data, None)
    to_convert = model
    if optimize_options is not None and optimize_options.any:
        if data is None:
            raise TinyoptError("optimizing needs training data for fine-tuning",
                               "pass --data DATA.npz (labels optional: without them tinyopt distils)")
        with timed(report, "optimize"):
            optimized = optimize_model(model, data, optimize_options, progress)
        to_convert = optimized.model
        report["optimize"] = optimized.summary()
        report["notes"] = list(optimized.notes)
        with timed(report, "evaluate_optimized"):
            report["optimized"] = evaluate.score(
                evaluate.keras_outputs(to_convert, data.x_val[: convert_options.eval_samples]), data, float_out)
        keras_io.save_model(to_convert, out_dir / "optimized.keras")
    with timed(report, "convert"):
        quantized = convert_model(to_convert, data, convert_options, out_dir, float_out, progress)
    report["int8"] = {"tflite": quantized.tflite_path.name, **quantized.report}
    _sparsity_over_prunable(report)
    report.setdefault("notes", [])
    if data is None:
        report["notes"].append("calibrated on random inputs: int8 accuracy is unknown")
    _check_structure(report, optimize_options)
    write_json(report, out_dir)
    write_markdown(report, out_dir)
    return KerasStageResult(quantized, report)


def _sparsity_over_prunable(report: dict) -> None:
    """int8.sparsity counts the weights pruning could touch; all weights are reported too."""
    from tinyopt.weight_structure import overall_sparsity
    int8 = report["int8"]
    int8["sparsity_all_weights"] = int8["sparsity"]
    pruned = set(report.get("optimize", {}).get("pruned_layers", []))
    if pruned:
        int8["sparsity"] = overall_sparsity([r for r in int8["layers"] if r["layer"] in pruned])


def _check_structure(report: dict, options: OptimizeOptions | None) -> None:
    """Say so when sparsity or clusters did not survive int8 conversion."""
    if options is None:
        return
    layers = report["int8"]["layers"]
    if options.prune is not None and report["int8"]["sparsity"] < options.prune - 0.02:
        report["notes"].append(f"int8 sparsity {report['int8']['sparsity']:.3f} is below the requested "
                               f"{options.prune}: the structure did not fully survive conversion")
    if options.cluster:
        clustered = set(report.get("optimize", {}).get("clustered_layers", []))
        over = [r["layer"] for r in layers if r["layer"] in clustered
                and r["max_unique_per_channel"] > options.cluster]
        if over:
            report["notes"].append(f"clusters did not survive in {', '.join(over)} "
                                   f"(more than {options.cluster} values per channel)")
