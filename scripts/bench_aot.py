#!/usr/bin/env python3
"""Benchmark the aot backend against TFLM, model by model (not a test).

For each model prints, side by side:
  - activation buffer bytes (aot static buffer) vs the TFLM arena (RecordingMicroAllocator
    total, and its head = the activation plan);
  - flash bytes: text+data of the aot library compiled for Cortex-M4 with arm-none-eabi-gcc -Os
    (weights + code), the weight bytes alone (as stored, and dense), vs the .tflite size;
  - the generated qemu-m4 firmware (PlatformIO + QEMU, when installed): RAM and flash of the
    whole firmware, instructions per inference (-icount); with --tflm-m4 and TINYOPT_TFLM_DIR
    the same for the tflm backend (reference kernels);
  - instructions per inference on the host (valgrind --tool=callgrind, counting only inside
    tinyopt_model_invoke) for the aot code and, when TINYOPT_TFLM_DIR points at a TFLM tree,
    for TFLM's reference kernels behind the same tinyopt_model.h interface and the same inputs
    (their outputs are also compared byte for byte).

Usage: scripts/bench_aot.py [MODEL.tflite ...] [--inferences N] [--tflm-m4] [--json OUT]
Without models: the MLPerf Tiny int8 models from ../shared/models/mlperf_tiny, the demo
and the demo pruned to 75 % (both made with tinyopt and cached in tinyopt's cache)."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import tinyopt  # noqa: F401  (TF_USE_LEGACY_KERAS)
from tinyopt.analysis.reader import read_tflite
from tinyopt.codegen.aot import model_library
from tinyopt.nice import nice
from tinyopt.paths import PROJECT_ROOT, cache_dir
from tinyopt.tflm_runtime import Runner

# The host builds of the firmware sources are test helpers (tests/aot_host.py, host_build.py).
sys.path.insert(0, str(PROJECT_ROOT / "tests"))
import aot_host as host  # noqa: E402

M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os", "-std=c99",
            "-Wall", "-Wextra", "-Werror",
            "-ffunction-sections", "-fdata-sections", "-DNDEBUG"]
MLPERF = ["ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite"]


def default_models() -> list[tuple[str, Path]]:
    out = []
    shared = PROJECT_ROOT.parent / "shared/models/mlperf_tiny"
    for name in MLPERF:
        if (shared / name).is_file():
            out.append((name.replace(".tflite", ""), shared / name))
        else:
            print(f"note: {shared / name} not found, skipped", file=sys.stderr)
    base = cache_dir() / "bench_aot"
    for label, args in (("demo", ["convert"]), ("demo_pruned75", ["optimize", "--prune", "0.75", "--epochs", "2"])):
        path = base / label / "model_int8.tflite"
        if not path.is_file():
            print(f"making {label} with `tinyopt {' '.join(args)}` ...", file=sys.stderr)
            subprocess.run(nice([sys.executable, "-m", "tinyopt", *args, "-o", str(base / label), "--force"]),
                           check=True, capture_output=True)
        out.append((label, path))
    return out


def m4_flash(folder: Path, work: Path) -> dict | None:
    """text/data/bss of the aot library object for Cortex-M4 (-Os)."""
    if not shutil.which("arm-none-eabi-gcc"):
        return None
    obj = work / "model_m4.o"
    subprocess.run(nice(["arm-none-eabi-gcc", *M4_FLAGS, f"-I{folder}", "-c", str(folder / "tinyopt_model_aot.c"),
                         "-o", str(obj)]), check=True)
    out = subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss, "flash": text + data}


def callgrind_ir(binary: Path, inputs: np.ndarray, out_bytes: int, work: Path) -> tuple[float, np.ndarray]:
    """Instructions per inference inside tinyopt_model_invoke, and the outputs."""
    cg = work / f"{binary.name}.callgrind"
    prefix = nice(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}",
                   "--toggle-collect=tinyopt_model_invoke"])
    outputs = host.run(binary, inputs, out_bytes, work, prefix=prefix)
    text = cg.read_text(errors="replace")
    m = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
    return int(m.group(1)) / len(inputs), outputs


def qemu_m4_firmware(path: Path, work: Path, backend: str = "aot", runs: int = 3) -> dict | None:
    """The generated qemu-m4 firmware for BACKEND: RAM and flash as PlatformIO reports them
    for the whole firmware (harness included), and instructions per inference in QEMU
    (-icount shift=0: the harness's cycle counter then counts guest instructions).
    None without PlatformIO / qemu-system-arm."""
    pio = shutil.which("pio") or str(Path(sys.executable).with_name("pio"))
    if not (shutil.which("qemu-system-arm") and Path(pio).exists()):
        return None
    proj = work / f"fw_qemu_m4_{backend}"
    subprocess.run([sys.executable, "-m", "tinyopt", "generate", str(path), "--board", "qemu-m4", "--backend", backend,
                    "-o", str(proj), "--force"], check=True, capture_output=True)
    build = subprocess.run(nice([pio, "run", "-d", str(proj), "-j", "2"]), check=True, capture_output=True, text=True)
    out = {"instructions": None}
    for key in ("RAM", "Flash"):
        m = re.search(rf"{key}:.*used (\d+) bytes", build.stdout)
        out[key.lower()] = int(m.group(1)) if m else None
    elf = sorted((proj / ".pio/build").glob("*/*.elf"))[0]
    proc = subprocess.Popen(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial",
                             "stdio", "-icount", "shift=0", "-kernel", str(elf)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        sent = False
        for raw in proc.stdout:
            line = raw.decode("ascii", "replace").strip()
            if line == "m-ready" and not sent:
                proc.stdin.write(f"infer {runs} 1%".encode())
                proc.stdin.flush()
                sent = True
            m = re.match(r"m-infer-cycles-(\d+)", line)
            if m:
                out["instructions"] = int(m.group(1)) / runs
                break
    finally:
        proc.kill()
        proc.wait()
    return out


def build_tflm_host(model, tree: Path, work: Path) -> Path:
    """The TFLM backend's own library (tinyopt.codegen.tflm) + the same host driver, linked
    against TFLM's reference kernels compiled once into tinyopt's cache."""
    from host_build import TFLM_CXXFLAGS, tflm_include_dirs, tflm_library

    from tinyopt.analysis import analyze
    from tinyopt.boards import load_board
    from tinyopt.codegen import tflm
    board = load_board("host")
    lib = tflm.model_library(model, analyze(model, board), board, {"model_name": "bench"})
    folder = host.write_library(lib, work / "tflm_lib")
    libtflm = tflm_library(tree)
    incs = [f"-I{d}" for d in tflm_include_dirs(tree)] + [f"-I{folder}"]
    objs = []
    for src in sorted(folder.glob("*.c*")):
        obj = work / (src.name + ".o")
        if src.suffix == ".c":
            cmd = ["gcc", "-std=c99", "-O2", "-DNDEBUG", *incs, "-c", str(src), "-o", str(obj)]
        else:
            cmd = ["g++", *TFLM_CXXFLAGS, *incs, "-c", str(src), "-o", str(obj)]
        subprocess.run(nice(cmd), check=True)
        objs.append(str(obj))
    binary = work / "tflm_model"
    subprocess.run(nice(["g++", "-o", str(binary), *objs, str(libtflm), "-lm"]), check=True)
    return binary


def bench(label: str, path: Path, inferences: int, tree: Path | None, keep: Path, tflm_m4: bool) -> dict:
    raw = path.read_bytes()
    model = read_tflite(raw)
    work = keep / label
    work.mkdir(parents=True, exist_ok=True)
    lib = model_library(model, options={"model_name": label})
    folder = host.write_library(lib, work / "aot_lib")
    binary = host.build(folder, work / "aot_model", opt="-O2")
    runner = Runner(raw)
    arena = runner.arena_usage()
    xs = np.random.default_rng(0).integers(-128, 128, (inferences,) + runner.input_shape, dtype=np.int8)
    ref = np.stack([runner.run(x).reshape(-1) for x in xs])
    row = {"model": label, "tflite_bytes": len(raw), "aot_activation_bytes": lib.activation_bytes,
           "tflm_arena_total": arena.total, "tflm_arena_head": arena.head,
           "weight_bytes": lib.summary["weight_bytes"], "dense_weight_bytes": lib.summary["dense_weight_bytes"],
           "other_const_bytes": lib.summary["other_const_bytes"], "macs": lib.summary["macs"],
           "sparse_layers": len(lib.summary["sparse_layers"])}
    row["m4"] = m4_flash(folder, work)
    row["qemu_m4_aot"] = qemu_m4_firmware(path, work, "aot")
    if tflm_m4 and tree is not None:
        row["qemu_m4_tflm"] = qemu_m4_firmware(path, work, "tflm")
    if shutil.which("valgrind"):
        ir, got = callgrind_ir(binary, xs, ref.shape[1], work)
        row["aot_ir_per_inference"] = ir
        row["aot_bit_exact"] = bool(np.array_equal(got, ref))
        if tree is not None:
            tb = build_tflm_host(model, tree, work)
            tir, tgot = callgrind_ir(tb, xs, ref.shape[1], work)
            row["tflm_ir_per_inference"] = tir
            row["tflm_cpp_equals_aot"] = bool(np.array_equal(tgot, got))
    return row


def kb(n):
    return "-" if n is None else f"{n / 1024:.1f}k"


def _m4(row: dict, key: str, fmt) -> str:
    a, t = row.get("qemu_m4_aot") or {}, row.get("qemu_m4_tflm") or {}
    text = fmt(a[key]) if a.get(key) else "-"
    return text + (f" ({fmt(t[key])})" if t.get(key) else "")


def table(rows: list[dict]) -> str:
    head = ["model", "act aot", "arena TFLM (head)", "flash aot M4", "weights aot/dense", ".tflite",
            "Ir/inf aot", "Ir/inf TFLM", "TFLM/aot", "M4 instr/inf aot (TFLM)", "M4 fw RAM aot (TFLM)",
            "M4 fw flash aot (TFLM)", "exact"]
    lines = []
    for r in rows:
        ir_a, ir_t = r.get("aot_ir_per_inference"), r.get("tflm_ir_per_inference")
        lines.append([
            r["model"], str(r["aot_activation_bytes"]), f"{r['tflm_arena_total']} ({r['tflm_arena_head']})",
            str(r["m4"]["flash"]) if r["m4"] else "-",
            f"{r['weight_bytes']}/{r['dense_weight_bytes']} "
            f"({r['weight_bytes'] / max(1, r['dense_weight_bytes']):.2f}x)",
            str(r["tflite_bytes"]), f"{ir_a / 1e6:.2f}M" if ir_a else "-", f"{ir_t / 1e6:.2f}M" if ir_t else "-",
            f"{ir_t / ir_a:.1f}x" if ir_a and ir_t else "-",
            _m4(r, "instructions", lambda v: f"{v / 1e6:.2f}M"), _m4(r, "ram", str), _m4(r, "flash", str),
            ("yes" if r.get("aot_bit_exact") else "NO") + ("" if "tflm_cpp_equals_aot" not in r else
                                                            ("/yes" if r["tflm_cpp_equals_aot"] else "/NO"))])
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*l) for l in lines])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--inferences", type=int, default=3, help="inputs per model under callgrind (default 3)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    ap.add_argument("--tflm-m4", action="store_true",
                    help="also build and run the tflm backend's qemu-m4 firmware (needs TINYOPT_TFLM_DIR; "
                         "compiling TFLM for the M4 takes minutes per model)")
    ap.add_argument("--keep", type=Path, help="keep build folders here (default: a temporary folder)")
    args = ap.parse_args()
    models = [(p.stem, p) for p in args.models] or default_models()
    tree = Path(os.environ["TINYOPT_TFLM_DIR"]) if os.environ.get("TINYOPT_TFLM_DIR") else None
    if tree is None:
        print("note: TINYOPT_TFLM_DIR not set: TFLM instruction counts skipped", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_aot_") as tmp:
        keep = args.keep or Path(tmp)
        for label, path in models:
            print(f"benchmarking {label} ...", file=sys.stderr)
            rows.append(bench(label, path, args.inferences, tree, keep, args.tflm_m4))
    print(table(rows))
    print("act = activation bytes (aot static buffer vs TFLM arena total, head = activation plan); "
          "flash aot M4 = text+data of the aot library, arm-none-eabi-gcc -Os (weights + code, no TFLM runtime); "
          "weights = int8 weights as stored (sparse where smaller) / dense; Ir/inf = host instructions per "
          "inference inside tinyopt_model_invoke (callgrind, x86-64 gcc -O2); M4 = the generated qemu-m4 firmware "
          "(whole firmware, same harness): instructions per inference in QEMU -icount, RAM and flash from PlatformIO, "
          "TFLM = reference kernels (with --tflm-m4); exact = aot == TFLM runtime [/ TFLM C++ == aot]")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
