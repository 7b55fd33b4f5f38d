"""Human summary of the Keras stages (optimize / convert), printed with rich."""
from rich.table import Table

from tinyopt.commands.common import console
from tinyopt.report import accuracy_rows


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
