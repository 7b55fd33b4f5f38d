"""Channel pruning on the MLPerf Tiny models, measured: dense int8 vs --channels RATIO.

For each model (ResNet-8, DS-CNN by default) this converts the dense model and a channel-
pruned one (fine-tuned by distillation from the original on synthetic inputs: the reference
data sets are not shipped), then builds, runs and measures both on an emulated board with
the aot backend and, where TINYOPT_TFLM_DIR is set, the tflm backend. It prints MACs,
parameters, flash/RAM and emulated cycles before/after, and the on-device output check
(aot and tflm against the TFLM Python runtime, byte for byte).

    .venv/bin/python scripts/channels_mlperf.py [--board qemu-m4] [--ratio 0.5] [-o out/channels]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinyopt  # noqa: E402,F401
from tinyopt.paths import PROJECT_ROOT  # noqa: E402

MLPERF = Path(os.environ.get("TINYOPT_MLPERF_DIR", PROJECT_ROOT.parent / "shared" / "models" / "mlperf_tiny"))
MODELS = {"resnet8": "pretrainedResnet.h5", "dscnn": "kws_ref_model", "ad01": "ad01.h5"}


def synthetic_data(model, n_train: int, n_val: int, seed: int = 0) -> dict:
    """Unlabelled inputs for distillation: uniform in [0, 1] (images) or N(0, 1) (features)."""
    from tinyopt.keras_io import input_shape
    rng = np.random.default_rng(seed)
    shape = input_shape(model)
    draw = (lambda n: rng.random((n,) + shape, dtype=np.float32)) if len(shape) == 3 and shape[-1] == 3 \
        else (lambda n: rng.standard_normal((n,) + shape).astype(np.float32))
    return {"x_train": draw(n_train), "x_val": draw(n_val)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="qemu-m4")
    ap.add_argument("--ratio", default="0.5")
    ap.add_argument("--models", default="resnet8,dscnn")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("-o", "--out", default="out/channels")
    args = ap.parse_args(argv)
    from tinyopt import keras_io
    from tinyopt.analysis import analyze
    from tinyopt.convert import ConvertOptions
    from tinyopt.keras_stages import run as keras_run
    from tinyopt.optimize import OptimizeOptions
    from tinyopt.pipeline import BuildOptions
    from tinyopt.pipeline import run as build_run
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    backends = ["aot"] + (["tflm"] if os.environ.get("TINYOPT_TFLM_DIR") else [])
    rows = []
    for key in args.models.split(","):
        src = MLPERF / MODELS[key]
        model = keras_io.load_model(src)
        data_path = out / f"{key}_synthetic.npz"
        np.savez(data_path, **synthetic_data(model, 512, 128))
        for variant, opts in (("dense", None),
                              (f"channels {args.ratio}", OptimizeOptions(channels=args.ratio, epochs=args.epochs))):
            folder = out / key / ("dense" if opts is None else "channels")
            folder.mkdir(parents=True, exist_ok=True)
            res = keras_run("convert" if opts is None else "optimize", str(src), str(data_path), folder, opts,
                            ConvertOptions(eval_samples=128))
            tfl = res.quantized.tflite_path
            a = analyze(tfl, args.board)
            row = {"model": key, "variant": variant, "params": a.totals.params, "macs": a.totals.macs,
                   "tflite_bytes": a.totals.model_bytes,
                   "agreement_vs_float_original": res.report["int8"].get("agreement"),
                   "channels": (res.report.get("optimize") or {}).get("channels")}
            for backend in backends:
                b = build_run(BuildOptions(board=args.board, backend=backend, model=str(tfl), data=str(data_path),
                                           windows=2, runs=2, count=10, force=True),
                              folder / f"build-{backend}").report
                m = b["measure"]
                row[backend] = {"cycles": m["cycles"]["median"] if m.get("cycles") else None,
                                "flash_bytes": b["build"].get("flash_bytes"), "ram_bytes": b["build"].get("ram_bytes"),
                                "exact_match_rate": m["outputs"]["exact_match_rate"],
                                "max_abs_diff": m["outputs"]["max_abs_diff"]}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "channels"}), flush=True)
    (out / "channels_mlperf.json").write_text(json.dumps(rows, indent=2) + "\n")
    cols = " | ".join(f"{b} cycles | {b} flash | {b} exact" for b in backends)
    print(f"\n| model | variant | MACs | params | {cols} |")
    print("|---" * (4 + 3 * len(backends)) + "|")
    for r in rows:
        cells = [r["model"], r["variant"], f"{r['macs']:,}", f"{r['params']:,}"]
        for b in backends:
            cells += [f"{r[b]['cycles']:,.0f}", f"{r[b]['flash_bytes']:,}", f"{r[b]['exact_match_rate']:.0%}"]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
