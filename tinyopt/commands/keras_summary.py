"""What `optimize` and `convert` share once their options are parsed: run the Keras stage
into a staged OUT, then print its report (JSON and/or a human summary with rich)."""
from rich.table import Table

from tinyopt.commands.common import console, emit_json
from tinyopt.report import accuracy_rows


def run_stage(name: str, model, data, out, force: bool, as_json: bool, opts, convert_opts) -> None:
    """keras_stages.run(NAME, ...) writing OUT (refused if it exists, unless FORCE)."""
    from tinyopt import keras_stages
    from tinyopt.output_dir import check_writable, staged_output
    from tinyopt.progress import make_progress
    check_writable(out, force)
    with staged_output(out, force) as stage, make_progress() as progress:
        result = keras_stages.run(name, model, data, stage, opts, convert_opts, progress)
    if as_json:
        emit_json(result.report)
    print_summary(result.report, out)


def print_summary(report: dict, out_dir) -> None:
    acc = accuracy_rows(report)
    if acc:
        table = Table(title="Accuracy on the validation data", title_justify="left")
        for col in ("model", "accuracy", "top-1 agreement", "RMSE vs float"):
            table.add_column(col, justify="right" if col != "model" else "left")
        for row in acc:
            table.add_row(*row)
        console.print(table)
    int8 = report["int8"]
    console.print(f"int8 model: [bold]{int8['tflite_bytes']:,}[/] bytes ({int8['gzip_bytes']:,} gzipped), "
                  f"weight sparsity {100 * int8['sparsity']:.1f} %")
    for note in report.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"wrote {out_dir}/ (report.json, report.md, {int8['tflite']})")
