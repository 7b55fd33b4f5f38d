"""`tinyopt build`: the stages composed, nothing more.

    (optimize) -> convert -> analyze -> generate -> build -> flash -> measure -> report

OUT/ receives model/ (the Keras stages' files and model_int8.tflite), project/ (the
PlatformIO project), report.json, report.md and latency.png. OUT is staged and renamed
into place at the end, except when a real board's project cannot be built on this machine:
then OUT is kept (the project is ready) and the error says how to build it elsewhere."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from tinyopt import backends
from tinyopt.boards import Board, load_board
from tinyopt.errors import NotBuildableHere, TinyoptError
from tinyopt.output_dir import check_writable, staged_output
from tinyopt.report import new_report, timed, write_json

STAGES = ("convert", "analyze", "generate", "build", "flash", "measure", "report")


@dataclass(frozen=True)
class BuildOptions:
    board: str
    backend: str | None = None          # None: the board's default (its first backend)
    model: str | None = None            # .keras/.h5/SavedModel, or an int8 .tflite; None: the demo
    data: str | None = None
    optimize: object | None = None      # tinyopt.optimize.OptimizeOptions, or None
    convert: object | None = None       # tinyopt.convert.ConvertOptions
    port: str | None = None
    runs: int | None = None
    warmup: int = 1
    windows: int = 5
    count: int = 20                     # inputs for the on-device output check
    force: bool = False
    keep_running: bool = False
    layers: int = 0                     # > 0: also profile every layer over that many inferences
    compare: str | None = None          # an earlier build's OUT: its per-layer profile side by side
    sparse: str = "auto"                # aot: storage of pruned layers (tinyopt.codegen.aot.sparse.MODES)


@dataclass(frozen=True)
class BuildOutcome:
    out: Path
    report: dict
    notes: tuple[str, ...] = field(default_factory=tuple)
    measurement: object | None = None   # tinyopt.measure.Measurement, when the board was measured


def run(options: BuildOptions, out, progress=None) -> BuildOutcome:
    """Run every stage for OPTIONS into OUT; PROGRESS is a tinyopt.progress display or None."""
    out = Path(out)
    board = load_board(options.board)
    if options.backend is None:
        options = replace(options, backend=backends.default_for(board))
    backends.require(board, options.backend)
    if options.optimize is not None:
        options.optimize.validate()
    reference = None
    if options.compare is not None:
        from tinyopt.layer_compare import load_reference
        if not options.layers:
            raise TinyoptError("--compare puts per-layer profiles side by side, and this build profiles none",
                               "add --layers N (e.g. --layers 3)")
        reference = load_reference(options.compare)   # refused now, not after the build
    check_writable(out, options.force)
    report = new_report("build")
    report["board"] = {"name": board.name, "description": board.description, "emulated": board.emulated}
    report["backend"] = options.backend
    steps = _Steps(progress)
    not_buildable = None
    measurement = None
    with staged_output(out, options.force) as stage:
        try:
            measurement = _stages(options, board, stage, out.resolve(), report, steps, reference)
        except NotBuildableHere as nb:
            not_buildable = nb
            report["status"] = "generated; not built on this machine"
            report.setdefault("notes", []).append(nb.message)
            _write_reports(report, stage)
    if not_buildable is not None:
        raise not_buildable
    return BuildOutcome(out.resolve(), report, tuple(report.get("notes", [])), measurement)


class _Steps:
    """One progress display across the stages: a bar that advances stage by stage."""

    def __init__(self, progress):
        self.progress = progress
        self.task = progress.add_task("build", total=len(STAGES), status="") if progress else None

    def start(self, name: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, status=name)

    def done(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.task)

    def status(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, status=text)


def _stages(options: BuildOptions, board: Board, stage: Path, final: Path, report: dict, steps: _Steps,
            reference: dict | None = None):
    """Every stage into STAGE; returns the Measurement. REFERENCE: an earlier build's report
    whose per-layer profile goes side by side with this one's."""
    from tinyopt import flash as flash_stage
    from tinyopt import measure as measure_stage
    from tinyopt import platformio
    from tinyopt.analysis import analyze
    from tinyopt.codegen.generate import generate

    # convert (and optimize): a .tflite given as MODEL skips both
    steps.start("convert")
    with timed(report, "convert"):
        tflite, model_report = _quantized_model(options, stage / "model", steps.progress)
    report["model"] = model_report
    steps.done()

    steps.start("analyze")
    with timed(report, "analyze"):
        analysis = analyze(tflite, board)
    report["analysis"] = {"totals": analysis.totals.to_json(), "arena": analysis.arena.to_json(),
                          "fit": analysis.fit.to_json() if analysis.fit else None,
                          "audit": analysis.audit.to_json()}
    if reference is not None:
        from tinyopt.layer_compare import check_same_model
        check_same_model(report, reference, options.compare)
    steps.done()

    steps.start("generate")
    project_dir = stage / "project"
    with timed(report, "generate"):
        name = Path(str(options.model).rstrip("/")).stem if options.model else "demo"
        project = generate(tflite, board, backend=options.backend, out=project_dir,
                           options={"model_name": name, "sparse": options.sparse}, analysis=analysis)
    _point_project_at_final_model(project_dir, tflite, stage, final)
    report["project"] = {"path": str(final / "project"), "files": len(project.files),
                         "library": project.manifest.library}
    steps.done()

    steps.start("build (PlatformIO)")
    try:
        with timed(report, "build"):
            built = platformio.build(project_dir, board, on_line=lambda ln: _pio_status(steps, ln))
    except NotBuildableHere as err:
        # name the project where it will be once OUT is in place, not the staging folder
        raise NotBuildableHere(err.message.replace(str(project_dir), str(final / "project")),
                               f"build and upload it where PlatformIO can reach its registry: "
                               f"pio run -t upload -d {final / 'project'}") from None
    report["build"] = {k: v for k, v in built.to_json().items() if k not in ("project", "elf")}
    steps.done()

    steps.start("flash")
    try:
        with timed(report, "flash"):
            flashed = flash_stage.flash(project_dir, board, options.port, keep_running=True, built=built)
        report["flash"] = {"port": flashed.port, "emulated": flashed.emulated,
                           "boot": list(flashed.banner)}
        steps.done()

        steps.start("measure")
        with timed(report, "measure"):
            m = measure_stage.measure(
                project_dir, board, options.port if not board.emulated else None, runs=options.runs,
                warmup=options.warmup, windows=options.windows, count=options.count,
                model_path=tflite, inputs=_validation_inputs(options), layers=options.layers,
                on_progress=lambda what, d, t: steps.status(f"measure: {what} {d}/{t}"))
        report["measure"] = m.to_json()
        if reference is not None and m.layers:
            from tinyopt.layer_compare import side_by_side
            report["measure"]["layers_compared"] = side_by_side(report, reference, options.compare)
        steps.done()
    finally:
        if board.emulated and not options.keep_running:
            flash_stage.stop(project_dir)

    steps.start("report")
    report["status"] = "measured"
    _write_reports(report, stage, project.memory_plan)
    steps.done()
    return m


def _point_project_at_final_model(project_dir: Path, tflite: Path, stage: Path, final: Path) -> None:
    """The project records its model's path (measure reads it for the output check): make it
    the path OUT will have once the staged directory is renamed into place."""
    from tinyopt.codegen.manifest import ProjectManifest
    manifest = ProjectManifest.load(project_dir)
    manifest.with_model_source(final / Path(tflite).relative_to(stage)).save(project_dir)


def _pio_status(steps: _Steps, line: str) -> None:
    if line.startswith(("Compiling ", "Linking ", "Archiving ")):
        steps.status("build: " + line.split()[0].lower() + " " + Path(line.split()[-1]).name[:40])


def _quantized_model(options: BuildOptions, folder: Path, progress) -> tuple[Path, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    if options.model and str(options.model).endswith(".tflite"):
        src = Path(options.model)
        if not src.is_file():
            raise TinyoptError(f"model file {src} does not exist", "check the path")
        if options.optimize is not None and options.optimize.any:
            raise TinyoptError("--prune/--cluster need a Keras model, not a .tflite",
                               "pass the .keras/.h5 model the .tflite came from")
        dest = folder / "model_int8.tflite"
        shutil.copyfile(src, dest)
        return dest, {"path": str(src), "tflite_bytes": dest.stat().st_size, "given_as": "tflite"}
    from tinyopt import keras_stages
    from tinyopt.convert import ConvertOptions
    opts = options.optimize if (options.optimize is not None and options.optimize.any) else None
    result = keras_stages.run("build", options.model, options.data, folder, opts,
                              options.convert or ConvertOptions(), progress)
    rep = result.report
    summary = {k: rep[k] for k in ("model", "data", "float", "optimized", "optimize", "notes")
               if k in rep}
    summary["int8"] = {k: v for k, v in rep.get("int8", {}).items() if k != "layers"}
    return result.quantized.tflite_path, summary


def _validation_inputs(options: BuildOptions):
    """The validation inputs of --data (or the demo's) for the output check, when known."""
    from tinyopt import keras_io
    if options.model and str(options.model).endswith(".tflite") and not options.data:
        return None
    try:
        path = options.data or (str(keras_io.demo_data_path()) if options.model is None else None)
    except Exception:
        return None
    return path


def _write_reports(report: dict, folder: Path, memory_plan: dict | None = None) -> None:
    from tinyopt.build_report import write_latency_plot, write_layer_plots, write_markdown
    plot = write_latency_plot(report, folder)
    if plot:
        report["plot"] = plot.name
    report.update(write_layer_plots(report, folder, memory_plan))
    write_json(report, folder)
    write_markdown(report, folder)
