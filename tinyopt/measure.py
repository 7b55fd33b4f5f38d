"""The measure stage: latency and on-device outputs over serial (MLPerf Tiny protocol).

Latency: `infer N W%` over K windows; per window the device's own timer gives µs per
inference (T1-T0)/N and, where the firmware has a counter, cycles per inference; the
summary is median / min / max / p90 over the windows. On the emulated board the cycles are
emulated instruction counts (QEMU -icount), not silicon cycles: the report says so.

Outputs: inputs go to the device with `db load`, one inference, `results%` (raw int8 as
the extension m-results-int8), compared with the TFLM Python runtime on the same model
(THE int8 reference): exact-match rate, max abs difference in int8 steps, top-1 agreement."""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyopt.boards import Board, load_board
from tinyopt.errors import TinyoptError
from tinyopt.serial_link import DeviceLink, LinkError, find_port

DEFAULT_WINDOW_S = 0.25     # device time per window when --runs is not given
MAX_RUNS = 5000


@dataclass(frozen=True)
class Measurement:
    board: str
    port: str
    timer: str
    device: dict
    runs: int
    warmup: int
    windows: int
    latency_us: dict | None          # median, min, max, p90, per_window
    cycles: dict | None              # same keys, per inference; None without a counter
    outputs: dict | None             # inputs, exact_matches, exact_match_rate, max_abs_diff, top1_agreement
    complete: bool = True
    error: str | None = None
    emulated: bool = False
    layers: list | None = None       # per-layer profile (tinyopt.layer_profile.layer_table)
    layer_overhead: dict | None = None
    layer_agreement: dict | None = None

    def to_json(self) -> dict:
        out = {"board": self.board, "port": self.port, "timer": self.timer, "device": self.device,
               "runs": self.runs, "warmup": self.warmup, "windows": self.windows,
               "latency_us": self.latency_us, "cycles": self.cycles, "outputs": self.outputs,
               "complete": self.complete, "error": self.error}
        if self.layers is not None:
            out["layers"] = self.layers
            out["layer_overhead"] = self.layer_overhead
            out["layer_agreement"] = self.layer_agreement
        if self.emulated:
            out["note"] = ("emulated board: cycles are QEMU -icount instruction counts and "
                           "latency is QEMU virtual time, not Cortex-M4 silicon figures")
        return out


class MeasureError(LinkError):
    """A measurement that stopped early; .partial is the Measurement gathered so far."""

    def __init__(self, message, hint, partial: Measurement):
        super().__init__(message, hint)
        self.partial = partial


def summarize(values: list[float]) -> dict | None:
    if not values:
        return None
    arr = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(arr)), "min": float(arr.min()), "max": float(arr.max()),
            "p90": float(np.percentile(arr, 90)), "per_window": [float(v) for v in arr]}


def compare_outputs(device: list[np.ndarray], reference: list[np.ndarray]) -> dict:
    n = len(device)
    if n == 0:
        return {"inputs": 0, "exact_matches": 0, "exact_match_rate": None, "max_abs_diff": None,
                "top1_agreement": None}
    exact = sum(bool(np.array_equal(d, r)) for d, r in zip(device, reference))
    diff = max(int(np.max(np.abs(d.astype(np.int32) - r.astype(np.int32)))) if d.size == r.size else 255
               for d, r in zip(device, reference))
    top1 = sum(int(np.argmax(d)) == int(np.argmax(r)) for d, r in zip(device, reference))
    return {"inputs": n, "exact_matches": exact, "exact_match_rate": exact / n,
            "max_abs_diff": diff, "top1_agreement": top1 / n}


def _inputs(meta_in: dict, inputs, count: int, seed: int) -> np.ndarray:
    """COUNT int8 input vectors: from INPUTS (.npz path or array; floats are quantized with the
    model's input scale) or seeded random int8."""
    nbytes = int(meta_in["bytes"])
    if inputs is None:
        rng = np.random.default_rng(seed)
        return rng.integers(-128, 128, size=(count, nbytes), dtype=np.int8)
    if isinstance(inputs, (str, Path)):
        path = Path(inputs)
        if not path.is_file():
            raise TinyoptError(f"inputs file {path} does not exist", "pass an .npz with x_val (or x)")
        with np.load(path, allow_pickle=False) as npz:
            key = next((k for k in ("x_val", "x_test", "x", "x_train") if k in npz.files), None)
            if key is None:
                raise TinyoptError(f"{path} has no x_val / x array (has {', '.join(npz.files)})",
                                   "save the inputs as x_val")
            x = npz[key]
    else:
        x = np.asarray(inputs)
    x = x[:count]
    if x.dtype != np.int8:
        from tinyopt.tflm_runtime import quantize
        x = quantize(x.astype(np.float32), float(meta_in["scale"]), int(meta_in["zero_point"]))
    x = x.reshape(len(x), -1)
    if x.shape[1] != nbytes:
        raise TinyoptError(f"inputs have {x.shape[1]} values per sample, the model takes {nbytes}",
                           "give inputs in the model's input shape")
    return x.astype(np.int8)


def _model_bytes(meta, model_path) -> bytes | None:
    path = Path(model_path) if model_path else Path(meta.model["source"])
    if not path.is_file():
        return None
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != meta.model["sha256"]:
        raise TinyoptError(f"{path} is not the model the project was generated from (sha256 differs)",
                           "pass the right .tflite with --model, or regenerate the project")
    return raw


def resolve_port(project: Path | None, board: Board, port: str | None) -> str:
    if port:
        return port
    if board.emulated:
        from tinyopt.flash import emulator_state
        state = emulator_state(project) if project else {}
        if not state:
            raise TinyoptError(f"the emulated board {board.name} is not running for "
                               f"{project or 'this project'}",
                               "start it with `tinyopt flash PROJECT --board qemu-m4 --keep-running`, "
                               "or pass --port")
        return state["port"]
    return find_port(board.usb_ids, board.name)


def measure(project=None, board=None, port: str | None = None, runs: int | None = None,
            warmup: int = 1, windows: int = 5, inputs=None, count: int = 20, seed: int = 0,
            model_path=None, check_outputs: bool = True, window_s: float = DEFAULT_WINDOW_S,
            timeout: float = 10.0, on_progress=None, on_line=None, layers: int = 0) -> Measurement:
    """Measure the firmware of PROJECT (or whatever runs on PORT) on BOARD. LAYERS > 0 also
    profiles each layer over that many inferences (`layers N%`)."""
    meta = None
    if project is not None:
        from tinyopt.codegen.generate import load_project
        project = Path(project).resolve()
        meta = load_project(project)
    if board is None:
        if meta is None:
            raise TinyoptError("no board given", "pass --board NAME (or a generated PROJECT)")
        board = meta.board
    board = board if isinstance(board, Board) else load_board(str(board))
    port = resolve_port(project, board, port)
    if windows < 1 or warmup < 0 or (runs is not None and runs < 1):
        raise TinyoptError("runs and windows must be >= 1 and warmup >= 0", "e.g. --runs 20 --windows 5")
    progress = on_progress or (lambda what, done, total: None)

    state = {"device": {}, "runs": runs or 0, "lat": [], "cyc": [], "outputs": None, "layers": None}

    def snapshot(complete: bool, error: str | None) -> Measurement:
        lay = state["layers"] or {}
        return Measurement(board.name, port, str(state["device"].get("timer", board.timer)),
                           dict(state["device"]), int(state["runs"]), warmup, windows,
                           summarize(state["lat"]), summarize(state["cyc"]), state["outputs"],
                           complete, error, board.emulated, lay.get("table"), lay.get("overhead"),
                           lay.get("agreement"))

    link = DeviceLink(port, board.baud, timeout=timeout, dtr=board.upload.get("dtr"),
                      rts=board.upload.get("rts"), on_line=on_line)
    try:
        with link:
            info = link.handshake()
            state["device"] = {"name": info.name, "model": info.model, **info.extra}
            if meta and info.extra.get("model-sha") and not meta.model["sha256"].startswith(
                    str(info.extra["model-sha"])):
                raise TinyoptError(f"the device runs model {info.extra['model-sha']}, not this project's",
                                   "flash the project first (tinyopt flash PROJECT)")
            # Calibrate: one inference, device time and wall time, to size windows and timeouts.
            t = time.monotonic()
            first = link.infer(1, 0, timeout=max(60.0, timeout))
            wall_per = max(time.monotonic() - t, 1e-3)
            if runs is None:
                per_s = max(first.us_per_inference, 1.0) / 1e6
                runs = int(min(MAX_RUNS, max(3, math.ceil(window_s / per_s))))
            state["runs"] = runs
            infer_timeout = timeout + 4.0 * wall_per * (runs + warmup)
            for k in range(windows):
                res = link.infer(runs, warmup if k == 0 else 0, infer_timeout)
                state["lat"].append(res.us_per_inference)
                if res.cycles_per_inference is not None:
                    state["cyc"].append(res.cycles_per_inference)
                progress("latency", k + 1, windows)
            # read (and checked against the project's sha256) once, for both uses below
            model = _model_bytes(meta, model_path) if meta is not None and (layers or check_outputs) else None
            if layers:
                state["layers"] = _profile_layers(link, model, layers, state,
                                                  timeout + 4.0 * wall_per * (layers + 1))
                progress("layers", 1, 1)
            if check_outputs and meta is not None:
                if model is None:
                    state["outputs"] = {"skipped": f"model file {meta.model['source']} not found"}
                else:
                    state["outputs"] = _check_outputs(link, model, meta, inputs, count, seed,
                                                      infer_timeout, progress)
    except LinkError as err:
        partial = snapshot(False, err.message)
        done = f"{len(state['lat'])} of {windows} windows"
        if state["lat"]:
            done += f", median so far {np.median(state['lat']):.1f} µs"
        raise MeasureError(f"{err.message} (figures so far: {done})", err.hint, partial) from None
    return snapshot(True, None)


def _profile_layers(link: DeviceLink, model: bytes | None, runs: int, state: dict, timeout: float) -> dict:
    """MODEL (when known) gives each step its MACs and Keras layer."""
    from tinyopt import layer_profile
    rows = ()
    if model is not None:
        from tinyopt.analysis.ops import op_rows
        from tinyopt.analysis.reader import read_tflite
        rows = op_rows(read_tflite(model))
    timing = link.layers(runs, timeout)
    table = layer_profile.layer_table(timing, rows)
    whole_c = float(np.median(state["cyc"])) if state["cyc"] else None
    whole_us = float(np.median(state["lat"])) if state["lat"] else None
    return {"table": table, "overhead": layer_profile.overhead(timing),
            "agreement": layer_profile.agreement(table, whole_c, whole_us)}


def _check_outputs(link: DeviceLink, model: bytes, meta, inputs, count: int, seed: int,
                   timeout: float, progress) -> dict:
    from tinyopt.tflm_runtime import Runner
    xs = _inputs(meta.input, inputs, count, seed)
    runner = Runner(model)
    device, reference = [], []
    for i, x in enumerate(xs):
        link.load_input(x.tobytes())
        link.infer(1, 0, timeout)
        _, ints = link.results()
        if ints is None:
            raise TinyoptError("the firmware does not report raw int8 results (m-results-int8)",
                               "regenerate the project with this tinyopt version")
        device.append(np.asarray(ints, dtype=np.int8))
        reference.append(np.asarray(runner.run(x.reshape(runner.input_shape)), dtype=np.int8).reshape(-1))
        progress("outputs", i + 1, len(xs))
    out = compare_outputs(device, reference)
    out["source"] = str(inputs) if isinstance(inputs, (str, Path)) else ("random int8 (seed %d)" % seed
                                                                          if inputs is None else "array")
    return out
