import sys

import click

from tinyopt.commands.common import console, emit_json, json_option


@click.command("analyze")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--board", default=None, help="Check flash and RAM against boards/NAME.toml.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Draw per-layer MACs and memory bars into this .png file.")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False), default=None,
              help="Also write report.json, analysis.png and memory.png (the aot activation buffer "
                   "over the operators, TFLM's arena beside it) into this directory.")
@click.option("--force", is_flag=True, help="Replace the -o directory if it exists.")
@json_option
def command(model, board, plot_path, out, force, as_json):
    """Exact memory, MACs and TFLM compatibility of an int8 MODEL.tflite.

    Prints the per-operator table (shapes, types, MACs, weights, activations), the exact
    tensor arena from the TFLM runtime, and every problem that would stop the firmware
    (unsupported operators, float or hybrid tensors, dynamic shapes), each with its fix.

    Exit status: 0 when TFLM can run the model (and it fits --board), 1 when the audit
    finds an error or the model does not fit, 2 when the file cannot be read.

    \b
    Examples:
      tinyopt analyze model_int8.tflite
      tinyopt analyze model_int8.tflite --board esp32 --plot layers.png
      tinyopt analyze model_int8.tflite --json > analysis.json
    """
    import json

    from tinyopt.analysis import analyze
    from tinyopt.analysis.plot import plot_analysis
    from tinyopt.analysis.table import print_analysis
    from tinyopt.boards import load_board
    from tinyopt.output_dir import check_writable, staged_output

    chosen = load_board(board) if board else None
    if out:
        check_writable(out, force)
    analysis = analyze(model, chosen)
    if plot_path:
        plot_analysis(analysis, plot_path)
    if out:
        with staged_output(out, force) as stage:
            (stage / "report.json").write_text(json.dumps(analysis.to_json(), indent=2) + "\n")
            plot_analysis(analysis, stage / "analysis.png")
            if not analysis.audit.errors_for("aot"):
                # the aot activation plan over the operators, TFLM's arena beside it
                from tinyopt.codegen.aot import memory_plan
                from tinyopt.report_plots import plot_memory
                a = analysis.arena
                plot_memory(memory_plan(model), stage / "memory.png", "activation memory: aot plan vs TFLM arena",
                            a.tflm_bytes, a.head_bytes)
    if as_json:
        emit_json(analysis.to_json())
    else:
        print_analysis(analysis, console)
    if not analysis.audit_ok or (analysis.fit is not None and not analysis.fit.fits):
        # SystemExit, not ctx.exit: the CLI runs click with standalone_mode=False, where
        # click swallows its own Exit and the status would be lost.
        sys.exit(1)
