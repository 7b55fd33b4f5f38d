"""`tinyopt search`: the user states the budget, tinyopt finds the model."""
from __future__ import annotations

import shutil
import signal
import sys
import threading
from pathlib import Path

import click

from tinyopt.commands.common import console, emit_json, json_option
from tinyopt.errors import Interrupted, TinyoptError


@click.command("search")
@click.argument("model", required=False, type=click.Path())
@click.option("--data", type=click.Path(), default=None,
              help=".npz with x_train, x_val (labels y_train, y_val optional: without them quality is "
                   "top-1 agreement with the original). Default with no MODEL: the demo's digits.")
@click.option("--board", required=True, help="Target board (`tinyopt boards`). Latency is measured on it "
              "when attached, else on the emulated core of its CPU class.")
@click.option("--max-accuracy-drop", type=click.FloatRange(0, 100), default=1.0, show_default=True,
              help="Points of accuracy (or agreement) the dense int8 model may lose.")
@click.option("--max-latency-ms", type=click.FloatRange(0, min_open=True), default=None,
              help="Latency budget per inference (on the board that measures).")
@click.option("--max-flash-kb", type=click.FloatRange(0, min_open=True), default=None, help="Flash budget.")
@click.option("--max-ram-kb", type=click.FloatRange(0, min_open=True), default=None, help="RAM budget.")
@click.option("--backend", type=click.Choice(["aot", "tflm", "both"]), default="aot", show_default=True)
@click.option("--trials", type=click.IntRange(1, 10000), default=16, show_default=True,
              help="Trials in the study (all workers together), the dense baseline included.")
@click.option("--epochs", type=click.IntRange(1, 1000), default=8, show_default=True,
              help="Fine-tuning epochs per optimization step.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--eval-samples", type=click.IntRange(1, 1000000), default=1000, show_default=True,
              help="Validation samples scored in the TFLM runtime per trial.")
@click.option("--prefer", type=click.Choice(["latency", "flash", "ram"]), default="latency", show_default=True,
              help="Which figure the chosen trial minimises among those within budget.")
@click.option("--port", default=None, help="Serial port of an attached board.")
@click.option("-o", "--out", "out", type=click.Path(), required=True,
              help="Output directory: the study journal, trials/, report.json, report.md, pareto.png, chosen/.")
@click.option("--resume", is_flag=True, help="Continue the study in OUT (or --storage): finished trials are kept.")
@click.option("--force", is_flag=True, help="Start over: delete the study in OUT.")
@click.option("--storage", default=None,
              help="Study storage: an RDB URL (postgresql://user:pw@host/db) shared by workers, or a "
                   "journal file path. Default: OUT/study.journal.")
@click.option("--study-name", default="tinyopt", show_default=True)
@click.option("--worker", is_flag=True,
              help="Join the study in --storage and run trials only (the main process writes the report).")
@json_option
def command(model, data, board, max_accuracy_drop, max_latency_ms, max_flash_kb, max_ram_kb, backend,
            trials, epochs, seed, eval_samples, prefer, port, out, resume, force, storage, study_name,
            worker, as_json):
    """Search structured pruning, sparsity, clustering, QAT and backends for the fastest model
    within the budget; every trial runs the real pipeline and is measured.

    \b
    Examples:
      tinyopt search --board qemu-m4 --max-accuracy-drop 1.0 --trials 16 -o out/search
      tinyopt search model.h5 --data d.npz --board nano33ble --max-ram-kb 128 -o out/s
      tinyopt search --board qemu-m4 -o out/search --resume          # after Ctrl-C / a crash
      tinyopt search --board qemu-m4 -o out/w2 --worker --storage postgresql://u:p@db/tinyopt
    """
    from tinyopt.progress import make_progress
    from tinyopt.search import results
    from tinyopt.search.storage import JOURNAL, is_url
    from tinyopt.search.study import run_search
    out = Path(out)
    _check_out(out, storage, resume, force, worker)
    cfg = make_config(model, data, board, backend, max_accuracy_drop, max_latency_ms, max_flash_kb,
                      max_ram_kb, trials, epochs, seed, eval_samples, port)
    if not worker and is_url(storage) and not resume and not force:
        _refuse_existing_rdb(storage, study_name)
    stop = threading.Event()

    def on_ctrl_c(signum, frame):
        stop.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        with make_progress() as progress:
            study, ran = run_search(cfg, out, storage=storage, study_name=study_name, worker=worker,
                                    progress=progress, stop=stop)
    except KeyboardInterrupt:
        where = "the study's storage" if is_url(storage) else str(Path(storage) if storage else out / JOURNAL)
        again = " ".join(a for a in sys.argv[1:] if a not in ("--resume", "--force"))
        raise Interrupted(f"search interrupted: every finished trial is kept in {where}; the trial that "
                          "was running will run again", f"continue with: tinyopt {again} --resume") from None
    finally:
        signal.signal(signal.SIGINT, previous)
    if worker:
        console.print(f"worker done: ran trials {', '.join(map(str, ran)) or 'none'}; "
                      f"the study holds its {cfg.trials} trials")
        return
    report = results.build_report(study, cfg, prefer)
    report["storage"] = storage if storage and not is_url(storage) else (
        "rdb" if storage else str(out / JOURNAL))
    report["ran_here"] = ran

    def rerun(number, params, folder):
        from tinyopt.search.trial import run_trial
        if folder.exists():
            shutil.rmtree(folder)
        run_trial(cfg, params, folder)

    results.export_chosen(report, cfg, out, rerun)
    results.write(report, out)
    if as_json:
        emit_json(report)
    if report["chosen"] is not None:
        print_summary(report, out)
        return
    if report["chosen"] is None:
        base_error = next((r.get("error") for r in report["trials"] if r.get("role") == "baseline"
                           and r.get("error")), None)
        if report.get("baseline") is None and base_error:
            raise TinyoptError(f"the dense model itself did not get through the pipeline: {base_error}",
                               "run `tinyopt build` with the same MODEL and board to see why")
        closest = [r for r in report["trials"] if r["number"] in report.get("closest", [])]
        text = "; ".join(f"trial {r['number']} ({r['describe']}): drop {r.get('accuracy_drop', 0):+.2f} pts, "
                         f"{r['cycles']:,.0f} cycles, flash {r['flash_bytes']:,} B, RAM {r['ram_bytes']:,} B"
                         for r in closest)
        raise TinyoptError(f"no trial of {len(report['trials'])} meets the budget; closest: {text or 'none measured'}",
                           "relax a budget (--max-accuracy-drop, --max-latency-ms, --max-flash-kb, --max-ram-kb) "
                           "or run more trials with --resume --trials N")


def make_config(model, data, board_name, backend, max_accuracy_drop, max_latency_ms, max_flash_kb, max_ram_kb,
                trials, epochs, seed, eval_samples, port):
    import os

    import numpy as np

    from tinyopt import evaluate, keras_io
    from tinyopt.boards import load_board
    from tinyopt.keras_stages import resolve_inputs
    from tinyopt.search.trial import SearchConfig, measurement_board
    board = load_board(board_name)
    from tinyopt.backends import require
    if backend != "both":
        require(board, backend)
    backends = tuple(b for b in ("aot", "tflm") if b in board.backends) if backend == "both" else (backend,)
    if model is not None and str(model).endswith(".tflite"):
        raise TinyoptError("search needs the Keras model, not a .tflite", "pass the .keras/.h5/SavedModel")
    if model is not None and data is None:
        raise TinyoptError("search needs --data for fine-tuning and validation",
                           "pass --data D.npz with x_train, x_val (labels optional)")
    measure_on, label, port = measurement_board(board, port)
    if max_latency_ms is not None and measure_on != board.name:
        # a budget in ms of the target board cannot be checked against another core's emulated time
        raise TinyoptError(f"--max-latency-ms needs the latency of {board.name} itself, and no {board.name} is "
                           f"attached (cycles would come from {measure_on}, emulated)",
                           "attach the board (or pass --port), or drop --max-latency-ms: the search still "
                           "minimises cycles on the emulated core")
    if "tflm" in backends and load_board(measure_on).emulated and not os.environ.get("TINYOPT_TFLM_DIR"):
        raise TinyoptError("the tflm backend on an emulated core needs a TFLM source tree",
                           "set TINYOPT_TFLM_DIR (e.g. a checkout of esp-tflite-micro) or use --backend aot")
    _, original, dataset = resolve_inputs(model, data)
    data_path = str(data) if data else str(keras_io.demo_data_path())
    x_val = dataset.x_val[:eval_samples]
    ref = evaluate.keras_outputs(original, x_val).reshape(len(x_val), -1)
    classifier = ref.shape[1] > 1 and np.allclose(ref.sum(axis=1), 1, atol=1e-3) and np.all(ref >= 0)
    quality = "accuracy" if (dataset.labelled and classifier) else ("agreement" if classifier else "fidelity")
    return SearchConfig(model=str(Path(model).resolve()) if model else None,
                        data=str(Path(data_path).resolve()), board=board.name, measure_board=measure_on,
                        measured_on=label, port=port, backends=backends, max_accuracy_drop=max_accuracy_drop,
                        max_latency_ms=max_latency_ms, max_flash_kb=max_flash_kb, max_ram_kb=max_ram_kb,
                        trials=trials, epochs=epochs, seed=seed, eval_samples=eval_samples, quality=quality,
                        reference_rms=float(np.sqrt(np.mean(ref ** 2))) if quality == "fidelity" else None)


def _check_out(out: Path, storage, resume: bool, force: bool, worker: bool) -> None:
    from tinyopt.search.storage import JOURNAL, is_url
    if out.exists() and not out.is_dir():
        raise TinyoptError(f"output path {out} exists and is not a directory", "choose another -o path")
    if worker or resume:
        if resume and not is_url(storage) and not (Path(storage) if storage else out / JOURNAL).is_file():
            raise TinyoptError(f"there is no study to resume in {Path(storage) if storage else out / JOURNAL}",
                               "start it without --resume")
        return
    if out.exists() and any(out.iterdir()):
        ours = (out / JOURNAL).exists() or (out / "trials").is_dir() or (out / "report.json").exists()
        if not force:
            raise TinyoptError(f"output path {out} already exists" + (" and holds a study" if ours else ""),
                               "pass --resume to continue the study, --force to start over, or another -o")
        if not ours:
            raise TinyoptError(f"{out} is not a tinyopt search directory; --force will not delete it",
                               "choose another -o path")
        shutil.rmtree(out)
    if storage and not is_url(storage) and Path(storage).exists() and force:
        Path(storage).unlink()


def _refuse_existing_rdb(storage: str, study_name: str) -> None:
    from tinyopt.search.storage import open_storage, optuna
    try:
        names = [s.study_name for s in optuna().get_all_study_summaries(open_storage(storage, Path(".")))]
    except TinyoptError:
        raise
    if study_name in names:
        raise TinyoptError(f"the storage already holds a study named {study_name!r}",
                           "pass --resume to continue it, or --study-name NEW")


def print_summary(report: dict, out: Path) -> None:
    from rich.table import Table

    from tinyopt.search.results import COLUMNS, table_rows
    b = report.get("baseline")
    console.print(f"[bold]tinyopt search[/] on {report['board']} — cycles measured on {report['measured_on']}")
    if b:
        console.print(f"dense int8 baseline: accuracy {b['accuracy']:.2f} %, {b['cycles']:,.0f} cycles, "
                      f"flash {b['flash_bytes']:,} B, RAM {b['ram_bytes']:,} B")
    kind = "emulated" if report["measured_emulated"] else "measured"
    table = Table(title=f"Pareto front (cycles on {report['measure_board']}, {kind})", title_justify="left")
    for name, _, kind in COLUMNS:
        table.add_column(name, justify="left" if kind == "str" else "right")
    for row in table_rows(report, report["pareto"]):
        table.add_row(*row)
    console.print(table)
    c = report.get("chosen")
    if c:
        console.print(f"[bold green]chosen: trial {c['number']}[/] ({c['describe']}): accuracy {c['accuracy']:.2f} % "
                      f"(drop {c['accuracy_drop']:.2f} pts), {c['cycle_ratio']:.2f}x the dense cycles, flash "
                      f"{c['flash_bytes']:,} B, RAM {c['ram_bytes']:,} B -> {out / 'chosen'}/ "
                      f"(tinyopt flash {out / 'chosen' / 'project'} --board {report['board']})")
    console.print(f"report: {out / 'report.md'}, {out / 'report.json'}, {out / 'pareto.png'}")
