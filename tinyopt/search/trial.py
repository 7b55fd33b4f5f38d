"""One trial = the real pipeline (tinyopt.pipeline.run): optimize -> convert -> int8 quality in
the TFLM runtime -> analyze -> generate -> build -> flash -> measure. Its figures are read
back from the build report; nothing is estimated except where the text says so."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tinyopt.boards import Board
from tinyopt.errors import TinyoptError

# Emulated core per CPU class, for real boards that are not attached.
_EMULATED = (("m55", "qemu-m55"), ("m33", "qemu-m33"), ("m7", "qemu-m7"), ("m4", "qemu-m4"),
             ("m0", "qemu-m0"))


@dataclass(frozen=True)
class SearchConfig:
    model: str | None               # None: the demo
    data: str | None
    board: str                      # the target board
    measure_board: str              # where latency is measured (the board, or its emulated core)
    measured_on: str                # label for tables: "qemu-m4 (emulated, QEMU -icount)" ...
    port: str | None
    backends: tuple[str, ...]
    max_accuracy_drop: float
    max_latency_ms: float | None
    max_flash_kb: float | None
    max_ram_kb: float | None
    trials: int
    epochs: int = 8
    seed: int = 0
    eval_samples: int = 1000
    count: int = 10                 # inputs checked byte for byte on the device per trial
    windows: int = 2
    runs: int | None = None
    quality: str = "accuracy"       # accuracy | agreement | fidelity
    reference_rms: float | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    def identity(self) -> dict:
        """What workers must agree on to share a study."""
        return {k: getattr(self, k) for k in ("model", "data", "board", "measure_board", "backends",
                                             "epochs", "seed", "eval_samples", "quality")}


def measurement_board(board: Board, port: str | None) -> tuple[str, str, str | None]:
    """(board to measure on, label, port): the board itself when emulated or attached, else
    the emulated core of its CPU class."""
    if board.emulated:
        return board.name, f"{board.name} (emulated: cycles are QEMU -icount instruction counts)", None
    if port is None and board.usb_ids:
        from tinyopt.serial_link import LinkError, find_port
        try:
            port = find_port(board.usb_ids, board.name)
        except LinkError:
            port = None
    if port is not None:
        return board.name, f"{board.name} (measured on the attached board at {port})", port
    cpu = board.cpu.lower().replace("-", "").replace(" ", "")
    for key, name in _EMULATED:
        if re.search(rf"cortex{key}(?!\d)", cpu):
            return name, (f"{name} (emulated core of {board.name}'s {board.cpu}: no board attached; "
                          f"cycles are QEMU -icount instruction counts)"), None
    return "qemu-m4", (f"qemu-m4 (stand-in: no board attached and no emulator of {board.cpu}; "
                       f"cycles are Cortex-M4 QEMU -icount instruction counts)"), None


def quality_of(int8: dict, cfg: SearchConfig) -> float | None:
    """Points (0..100): accuracy with labels, top-1 agreement with the original without,
    and for non-classifiers 100 * (1 - RMSE / RMS of the original's outputs)."""
    if cfg.quality == "accuracy":
        v = int8.get("accuracy")
    elif cfg.quality == "agreement":
        v = int8.get("agreement")
    else:
        rmse = int8.get("rmse")
        v = None if rmse is None or not cfg.reference_rms else max(0.0, 1.0 - rmse / cfg.reference_rms)
    return None if v is None else 100.0 * float(v)


def run_trial(cfg: SearchConfig, params: dict, out: Path, progress=None) -> dict:
    """Run the pipeline for PARAMS into OUT (a fresh directory); return the trial's figures."""
    from tinyopt.convert import ConvertOptions
    from tinyopt.pipeline import BuildOptions, run
    from tinyopt.search.space import to_optimize_options
    opts = to_optimize_options(params, epochs=cfg.epochs, seed=cfg.seed)
    options = BuildOptions(board=cfg.measure_board, backend=params["backend"], model=cfg.model,
                           data=cfg.data, optimize=opts,
                           convert=ConvertOptions(seed=cfg.seed, eval_samples=cfg.eval_samples),
                           port=cfg.port, runs=cfg.runs, windows=cfg.windows, count=cfg.count, force=True)
    outcome = run(options, out, progress)
    report = outcome.report
    if report.get("status") != "measured":
        raise TinyoptError(f"trial stopped at: {report.get('status')}", "see the trial's report.md")
    return _figures(cfg, report, Path(outcome.out))


def _figures(cfg: SearchConfig, report: dict, out: Path) -> dict:
    int8 = report["model"].get("int8", {})
    m = report.get("measure") or {}
    cycles = (m.get("cycles") or {}).get("median")
    latency = (m.get("latency_us") or {}).get("median")
    outputs = m.get("outputs") or {}
    if cfg.measure_board == cfg.board:
        flash, ram = report["build"]["flash_bytes"], report["build"]["ram_bytes"]
        memory_source = f"firmware built for {cfg.board} (PlatformIO size)"
    else:
        from tinyopt.analysis import analyze
        fit = analyze(out / "model" / "model_int8.tflite", cfg.board).fit
        flash, ram = fit.flash_used, fit.ram_used
        memory_source = f"tinyopt analyze for {cfg.board} (model + arena + the board file's runtime)"
    return {"quality": quality_of(int8, cfg), "accuracy": int8.get("accuracy"),
            "agreement": int8.get("agreement"), "rmse": int8.get("rmse"),
            "cycles": float(cycles) if cycles is not None else None,
            "latency_ms": float(latency) / 1000.0 if latency is not None else None,
            "flash_bytes": int(flash), "ram_bytes": int(ram), "memory_source": memory_source,
            "macs": int(report["analysis"]["totals"]["macs"]),
            "tflite_bytes": int(report["analysis"]["totals"]["model_bytes"]),
            "params_count": int(report["analysis"]["totals"]["params"]),
            "device_exact_match_rate": outputs.get("exact_match_rate"),
            "measured_on": cfg.measured_on}
