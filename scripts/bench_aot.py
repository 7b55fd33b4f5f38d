#!/usr/bin/env python3
"""Benchmark the aot backend against TFLM, model by model (not a test).

For each model prints, side by side:
  - activation buffer bytes (aot static buffer) vs the TFLM arena (RecordingMicroAllocator
    total, and its head = the activation plan);
  - flash bytes: text+data of the aot library compiled for Cortex-M4 with arm-none-eabi-gcc -O2 (the firmware's flags)
    (weights + code), the weight bytes alone (as stored, and dense), vs the .tflite size;
  - the generated qemu-m4 firmware (PlatformIO + QEMU, when installed): RAM and flash of the
    whole firmware, instructions per inference (-icount); with --tflm-m4 and TINYOPT_TFLM_DIR
    the same for the tflm backend (reference kernels);
  - instructions per inference on the host (valgrind --tool=callgrind, counting only inside
    tinyopt_model_invoke) for the aot code and, when TINYOPT_TFLM_DIR points at a TFLM tree,
    for TFLM's reference kernels behind the same tinyopt_model.h interface and the same inputs
    (their outputs are also compared byte for byte).

Usage: scripts/bench_aot.py [MODEL.tflite ...] [--cores m4,m7,m33,m55] [--no-tflm] [--keep DIR] [--json OUT]
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
import threading
from pathlib import Path

import numpy as np

import tinyopt  # noqa: F401  (TF_USE_LEGACY_KERAS)
from tinyopt.analysis.reader import read_tflite
from tinyopt.codegen.aot import model_library
from tinyopt.errors import TinyoptError
from tinyopt.nice import nice
from tinyopt.paths import PROJECT_ROOT, cache_dir
from tinyopt.tflm_runtime import Runner

# The host builds of the firmware sources are test helpers (tests/aot_host.py, host_build.py).
sys.path.insert(0, str(PROJECT_ROOT / "tests"))
import aot_host as host  # noqa: E402

M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2", "-std=c99",
            "-Wall", "-Wextra", "-Werror",
            "-ffunction-sections", "-fdata-sections", "-DNDEBUG"]
CMSIS_NN_ARENA_ROOM = 16384   # bytes added to the tflm firmware's arena when CMSIS-NN replaces its kernels
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
    # the folder name carries the builder's version: a model cached by an older builder is not reused
    out.append(("mobilenet025_96", mobilenet_model(base / "mobilenet025_96-v2")))
    return out


def mobilenet_model(folder: Path) -> Path:
    """A MobileNet-class model made here: Keras MobileNetV1 alpha=0.25 at 96x96x3 (depthwise-separable
    blocks, stride-2 stages; Keras' own top, whose TFLite form the TFLM runtime aborts on, replaced by
    a 3x3 average pooling and a 2-class dense layer), random weights (seed 0), converted by tinyopt with
    --calibrate-random. The dense layer's bias starts at 0.01, not 0: the converter drops an all-zero
    bias, and the tflite-micro runtime aborts (SIGABRT) on this model's bias-less FULLY_CONNECTED.
    Cached under tinyopt's cache."""
    path = folder / "model_int8.tflite"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    print("making mobilenet025_96 (Keras MobileNetV1 alpha=0.25, 96x96, random weights) ...", file=sys.stderr)
    code = ("import tinyopt, tf_keras as k, tensorflow as tf; tf.random.set_seed(0); "
            "b = k.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.25, weights=None, include_top=False); "
            "m = k.Sequential([b, k.layers.AveragePooling2D(3), k.layers.Flatten(), "
            "k.layers.Dense(2, activation='softmax', bias_initializer=k.initializers.Constant(0.01))]); "
            f"m.save({str(folder / 'mobilenet.h5')!r})")
    subprocess.run(nice([sys.executable, "-c", code]), check=True, capture_output=True)
    subprocess.run(nice([sys.executable, "-m", "tinyopt", "convert", str(folder / "mobilenet.h5"),
                         "--calibrate-random", "--calibration", "50", "-o", str(folder / "conv"), "--force"]),
                   check=True, capture_output=True)
    shutil.copy(folder / "conv" / "model_int8.tflite", path)
    return path


def m4_flash(folder: Path, work: Path) -> dict | None:
    """text/data/bss of the aot library object for Cortex-M4 (-O2), and its largest stack frame
    (gcc -fstack-usage): the kernels' scratch (extended patches, padded rows) is planned in the
    activation buffer, so this is what the kernels still keep on the stack."""
    if not shutil.which("arm-none-eabi-gcc"):
        return None
    obj = work / "model_m4.o"
    subprocess.run(nice(["arm-none-eabi-gcc", *M4_FLAGS, "-fstack-usage", f"-I{folder}", "-c",
                         str(folder / "tinyopt_model_aot.c"), "-o", str(obj)]), check=True)
    out = subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    frames = [int(line.split("\t")[1]) for line in obj.with_suffix(".su").read_text().splitlines() if "\t" in line]
    return {"text": text, "data": data, "bss": bss, "flash": text + data, "max_frame": max(frames, default=0)}


def callgrind_ir(binary: Path, inputs: np.ndarray, out_bytes: int, work: Path) -> tuple[float, np.ndarray]:
    """Instructions per inference inside tinyopt_model_invoke, and the outputs."""
    cg = work / f"{binary.name}.callgrind"
    prefix = nice(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}",
                   "--toggle-collect=tinyopt_model_invoke"])
    outputs = host.run(binary, inputs, out_bytes, work, prefix=prefix)
    text = cg.read_text(errors="replace")
    m = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
    return int(m.group(1)) / len(inputs), outputs


def qemu_firmware(path: Path, work: Path, board: str = "qemu-m4", backend: str = "aot",
                  kernels: str = "reference", runs: int = 3, timeout_s: float = 600.0) -> dict | None:
    """The generated firmware for BOARD (an emulated qemu-* board) and BACKEND (tflm with
    KERNELS reference or cmsis-nn): RAM and flash as PlatformIO reports them for the whole
    firmware (harness included), and instructions per inference in QEMU (-icount shift=0: the
    harness's cycle counter then counts guest instructions). The project folder is kept per
    board/backend/kernels and only its sources are replaced, so TFLM is compiled once per core.
    None without PlatformIO / qemu-system-arm."""
    from tinyopt.boards import load_board
    pio = shutil.which("pio") or str(Path(sys.executable).with_name("pio"))
    if not (shutil.which("qemu-system-arm") and Path(pio).exists()):
        return None
    emu = load_board(board).emulator
    proj = work.parent / "_firmware" / f"{board}_{backend}_{kernels}"
    gen = work / f"gen_{board}_{backend}_{kernels}"
    subprocess.run([sys.executable, "-m", "tinyopt", "generate", str(path), "--board", board, "--backend", backend,
                    "-o", str(gen), "--force"], check=True, capture_output=True)
    if proj.is_dir():
        for child in proj.iterdir():
            if child.name != ".pio":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copytree(gen, proj, dirs_exist_ok=True)
    if backend == "tflm" and kernels != "reference":
        with open(proj / "platformio.ini", "a") as f:
            f.write(f"custom_tflm_kernels = {kernels}\ncustom_cmsis_nn_dir = ${{sysenv.TINYOPT_CMSIS_NN_DIR}}\n")
        # The arena was sized for the board's reference kernels; CMSIS-NN's Helium (M55) paths
        # request more scratch (four im2col columns, 124-channel depthwise blocks, per-row sums
        # for fully connected layers). Speed does not depend on the arena's size, and the
        # table's arena column is the runtime's figure, so the bench simply gives it room.
        source = proj / "lib" / "tinyopt_model" / "tinyopt_model_tflm.cc"
        text = source.read_text()
        text = re.sub(r"#define TINYOPT_ARENA_BYTES (\d+)",
                      lambda m: f"#define TINYOPT_ARENA_BYTES {int(m.group(1)) + CMSIS_NN_ARENA_ROOM}", text)
        source.write_text(text)
    build = subprocess.run(nice([pio, "run", "-d", str(proj), "-j", "2"]), capture_output=True, text=True)
    if build.returncode != 0:
        # the compiler's and linker's complaints, not the list of files compiled before them
        log = (build.stdout + build.stderr).splitlines()
        errors = [line for line in log if "error" in line.lower() or "overflow" in line] or log[-20:]
        print(f"note: {board} {backend}/{kernels} build failed:\n" + "\n".join(errors[:12]), file=sys.stderr)
        return None
    out = {"instructions": None}
    for key in ("RAM", "Flash"):
        m = re.search(rf"{key}:.*used (\d+) bytes", build.stdout)
        out[key.lower()] = int(m.group(1)) if m else None
    elf = sorted((proj / ".pio/build").glob("*/*.elf"))[0]
    size = subprocess.run(["arm-none-eabi-size", "-A", "-d", str(elf)], capture_output=True, text=True).stdout
    out["text"] = sum(int(m.group(1)) for m in re.finditer(r"^\.text\s+(\d+)", size, re.M))
    out["rodata"] = sum(int(m.group(1)) for m in re.finditer(r"^\.rodata\s+(\d+)", size, re.M))
    proc = subprocess.Popen([emu.get("qemu", "qemu-system-arm"), "-M", emu["machine"], "-cpu", emu["cpu"],
                             "-nographic", "-monitor", "none", "-serial", "stdio",
                             "-icount", f"shift={emu.get('icount_shift', 0)}", "-kernel", str(elf)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    # a firmware that faults or hangs never prints its figures: the emulator is killed after the
    # timeout (which ends the read below), and the row says so
    watchdog = threading.Timer(timeout_s, proc.kill)
    watchdog.start()
    try:
        sent = False
        for raw in proc.stdout:
            line = raw.decode("ascii", "replace").strip()
            if line.startswith("m-golden-"):    # the boot check: the golden input's output vs the TFLM runtime
                out["golden"] = line == "m-golden-pass"
            if line.startswith("m-error"):    # e.g. the model did not fit its arena: no figures will come
                print(f"note: {board} {backend}/{kernels}: the firmware said {line}", file=sys.stderr)
                break
            if line == "m-ready" and not sent:
                proc.stdin.write(f"infer {runs} 1%".encode())
                proc.stdin.flush()
                sent = True
            m = re.match(r"m-infer-cycles-(\d+)", line)
            if m:
                out["instructions"] = int(m.group(1)) / runs
                break
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
    if out["instructions"] is None:
        print(f"note: {board} {backend}/{kernels}: no figures within {timeout_s:.0f} s (fault or hang)",
              file=sys.stderr)
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


def bench(label: str, path: Path, inferences: int, tree: Path | None, keep: Path, cores: list[str],
          tflm: bool, host_runs: bool) -> dict:
    raw = path.read_bytes()
    model = read_tflite(raw)
    work = keep / label
    work.mkdir(parents=True, exist_ok=True)
    lib = model_library(model, options={"model_name": label})
    folder = host.write_library(lib, work / "aot_lib")
    runner = Runner(raw)
    arena = runner.arena_usage()
    row = {"model": label, "tflite_bytes": len(raw), "aot_activation_bytes": lib.activation_bytes,
           "tflm_arena_total": arena.total, "tflm_arena_head": arena.head,
           "weight_bytes": lib.summary["weight_bytes"], "dense_weight_bytes": lib.summary["dense_weight_bytes"],
           "other_const_bytes": lib.summary["other_const_bytes"], "macs": lib.summary["macs"],
           "sparse_layers": len(lib.summary["sparse_layers"])}
    row["m4"] = m4_flash(folder, work)
    nn = os.environ.get("TINYOPT_CMSIS_NN_DIR")
    for core in cores:
        board = f"qemu-{core}"
        row[f"{core}_aot"] = qemu_firmware(path, work, board, "aot")
        if tflm and tree is not None:
            row[f"{core}_tflm_ref"] = qemu_firmware(path, work, board, "tflm", "reference")
            if nn and core != "m0":
                row[f"{core}_tflm_cmsis"] = qemu_firmware(path, work, board, "tflm", "cmsis-nn")
    if host_runs and shutil.which("valgrind"):
        binary = host.build(folder, work / "aot_model", opt="-O2")
        xs = np.random.default_rng(0).integers(-128, 128, (inferences,) + runner.input_shape, dtype=np.int8)
        ref = np.stack([runner.run(x).reshape(-1) for x in xs])
        ir, got = callgrind_ir(binary, xs, ref.shape[1], work)
        row["aot_ir_per_inference"] = ir
        row["aot_bit_exact"] = bool(np.array_equal(got, ref))
    return row


def kb(n):
    return "-" if n is None else f"{n / 1024:.1f}k"


def _instr(row: dict, key: str) -> float | None:
    v = row.get(key) or {}
    return v.get("instructions")


def _exact(row: dict, core: str) -> str:
    """host: 3 random inputs on the x86 build; dev: every firmware of the core passed its boot-time
    golden check (the golden input's output byte for byte against the TFLM runtime)."""
    host = "-" if "aot_bit_exact" not in row else ("yes" if row["aot_bit_exact"] else "NO")
    runs = [row.get(f"{core}_{k}") for k in ("aot", "tflm_ref", "tflm_cmsis")]
    golden = [r["golden"] for r in runs if r and "golden" in r]
    dev = "-" if not golden else ("yes" if all(golden) else "NO")
    return f"{host}/{dev}"


def table(rows: list[dict], cores: list[str]) -> str:
    head = ["model", "core", "MACs", "aot instr", "TFLM ref", "TFLM+CMSIS-NN", "aot/CMSIS", "aot instr/MAC",
            "CMSIS instr/MAC", "act aot", "arena TFLM", "act/arena", "aot frame", "aot code", "aot weights",
            "CMSIS fw text", "exact"]
    lines = []
    for r in rows:
        for core in cores:
            a, t, c = _instr(r, f"{core}_aot"), _instr(r, f"{core}_tflm_ref"), _instr(r, f"{core}_tflm_cmsis")
            if a is None and t is None and c is None:
                continue
            macs = r["macs"]
            m4 = r["m4"] or {}
            code = m4.get("flash", 0) - r["weight_bytes"] - r["other_const_bytes"] if m4 else None
            fw = (r.get(f"{core}_tflm_cmsis") or {}).get("text")
            lines.append([
                r["model"], core, f"{macs:,}", f"{a / 1e6:.3f}M" if a else "-", f"{t / 1e6:.3f}M" if t else "-",
                f"{c / 1e6:.3f}M" if c else "-", f"{a / c:.2f}x" if a and c else "-",
                f"{a / macs:.2f}" if a else "-", f"{c / macs:.2f}" if c else "-",
                str(r["aot_activation_bytes"]), str(r["tflm_arena_total"]),
                f"{r['aot_activation_bytes'] / r['tflm_arena_total']:.2f}x",
                str(m4["max_frame"]) if m4 else "-", str(code) if code is not None else "-",
                f"{r['weight_bytes']}/{r['dense_weight_bytes']}", str(fw) if fw else "-",
                _exact(r, core)])
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(head)] if lines else [len(h) for h in head]
    fmt = "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*l) for l in lines])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--inferences", type=int, default=3, help="inputs per model under callgrind (default 3)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    ap.add_argument("--cores", default="m4", help="emulated cores, comma-separated, of m0,m4,m7,m33,m55 (default m4)")
    ap.add_argument("--no-tflm", action="store_true",
                    help="skip the tflm backend's firmware (TFLM reference and, with TINYOPT_CMSIS_NN_DIR, "
                         "CMSIS-NN kernels; compiling TFLM takes minutes per core, once)")
    ap.add_argument("--no-host", action="store_true", help="skip the host callgrind run of the aot code")
    ap.add_argument("--keep", type=Path, help="keep build folders here (default: a temporary folder); "
                                              "a kept folder reuses its TFLM builds")
    args = ap.parse_args()
    cores = [c.strip() for c in args.cores.split(",") if c.strip()]
    models = [(p.stem, p) for p in args.models] or default_models()
    tree = Path(os.environ["TINYOPT_TFLM_DIR"]) if os.environ.get("TINYOPT_TFLM_DIR") else None
    if tree is None and not args.no_tflm:
        print("note: TINYOPT_TFLM_DIR not set: TFLM figures skipped", file=sys.stderr)
    if not os.environ.get("TINYOPT_CMSIS_NN_DIR") and not args.no_tflm:
        print("note: TINYOPT_CMSIS_NN_DIR not set: TFLM + CMSIS-NN figures skipped", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_aot_") as tmp:
        keep = args.keep or Path(tmp)
        for label, path in models:
            print(f"benchmarking {label} ...", file=sys.stderr)
            try:
                rows.append(bench(label, path, args.inferences, tree, keep, cores, not args.no_tflm,
                                  not args.no_host))
            except TinyoptError as err:   # one model the runtime cannot take must not cost the others
                print(f"  {label} skipped: {err.one_line()}", file=sys.stderr)
                continue
            if args.json:
                args.json.write_text(json.dumps(rows, indent=2))
    print(table(rows, cores))
    print("instr = instructions per inference of the generated firmware in QEMU -icount (same harness); "
          "TFLM ref / TFLM+CMSIS-NN = the tflm backend with reference / CMSIS-NN kernels (-O2 -DNDEBUG); "
          "act aot = aot static activation buffer (in-place layers and kernel scratch included), "
          "arena TFLM = TFLM arena total "
          "(tflite_micro runtime); aot frame = the aot library's largest stack frame (-O2; kernel scratch is "
          "in act aot); "
          "aot code = text+data of the aot library for Cortex-M4 (-O2, as the firmware builds it) minus weights "
          "and other constants; "
          "aot weights = as stored / dense; CMSIS fw text = .text of the whole TFLM+CMSIS-NN firmware; "
          "exact = host/device: aot on the host (x86-64 -O2) == tflite_micro runtime on random inputs / every "
          "firmware of the row passed its boot-time golden check (output byte for byte as the runtime's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
