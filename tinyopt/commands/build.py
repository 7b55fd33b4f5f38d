import click

from tinyopt.backends import CHOICE_HELP
from tinyopt.backends import names as backend_names
from tinyopt.commands.common import console, emit_json, force_option, json_option, sparse_option
from tinyopt.commands.keras_options import (
    convert_options,
    data_option,
    make_convert_options,
    make_optimize_options,
    model_argument,
    optimize_options,
)


@click.command("build")
@model_argument
@click.option("--board", required=True, help="Board name (boards/NAME.toml); `tinyopt boards` lists them.")
@click.option("--backend", type=click.Choice(backend_names()), default=None, help=CHOICE_HELP)
@data_option
@optimize_options
@convert_options
@click.option("--port", default=None, help="Serial/upload port (default: found by the board's USB VID:PID).")
@click.option("--runs", type=click.IntRange(1, 100000), default=None,
              help="Inferences per measurement window (default: ~0.25 s of device time).")
@click.option("--warmup", type=click.IntRange(0, 10000), default=1, show_default=True)
@click.option("--windows", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--count", type=click.IntRange(0, 100000), default=20, show_default=True,
              help="Inputs whose on-device outputs are compared with the TFLM runtime.")
@click.option("--layers", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="Also time every layer on the device over this many inferences (try 5): a table, "
                   "report.json measure.layers and layers.png.")
@click.option("--compare", type=click.Path(), default=None,
              help="An earlier build's output folder (same model, e.g. the other --backend, built with "
                   "--layers): its per-layer cycles side by side with this build's.")
@click.option("--keep-running", is_flag=True, help="Emulated board: leave the emulator running at the end.")
@click.option("-o", "--out", "out", type=click.Path(), required=True, help="Output directory.")
@sparse_option
@force_option
@json_option
def command(model, board, backend, data, port, runs, warmup, windows, count, layers, compare, keep_running, out,
            sparse, force, as_json, **kw):
    """Run every stage: (optimize) -> convert -> analyze -> generate -> build -> flash -> measure.

    MODEL is a .keras, .h5 or SavedModel directory, or an int8 .tflite (default: the bundled
    demo CNN and its data). With --data and --prune/--cluster the model is optimized first.
    OUT gets model/, project/, report.json, report.md and latency.png.

    \b
    Examples:
      tinyopt build --board qemu-m4 -o out/                   # demo model, emulated board
      tinyopt build --board qemu-m4 --backend tflm -o out/    # needs TINYOPT_TFLM_DIR
      tinyopt build --board qemu-m4 --layers 5 -o out/        # plus a per-layer profile
      tinyopt build --board qemu-m4 --backend tflm --layers 3 -o out/tflm
      tinyopt build --board qemu-m4 --backend aot --layers 3 --compare out/tflm -o out/aot
      tinyopt build model.keras --data d.npz --prune 0.75 --board esp32 -o out/
    """
    from tinyopt.commands.measure import print_measurement, print_side_by_side
    from tinyopt.pipeline import BuildOptions, run
    from tinyopt.progress import make_progress
    opts = make_optimize_options(kw)
    options = BuildOptions(board=board, backend=backend, model=model, data=data,
                           optimize=opts if opts.any else None, convert=make_convert_options(kw),
                           port=port, runs=runs, warmup=warmup, windows=windows, count=count,
                           force=force, keep_running=keep_running, layers=layers, compare=compare, sparse=sparse)
    with make_progress() as progress:
        outcome = run(options, out, progress)
    report = outcome.report
    if as_json:
        emit_json(report)
    b = report.get("build", {})
    console.print(f"[bold]{outcome.out}[/]: {report['board']['name']} · {report['backend']} · {report['status']}")
    if b:
        console.print(f"  flash {b.get('flash_bytes')} of {b.get('flash_max')} bytes, "
                      f"RAM {b.get('ram_bytes')} of {b.get('ram_max')} bytes")
    if outcome.measurement is not None:
        print_measurement(outcome.measurement)
    compared = (report.get("measure") or {}).get("layers_compared")
    if compared:
        print_side_by_side(compared)
    console.print(f"  report: {outcome.out / 'report.md'}")
