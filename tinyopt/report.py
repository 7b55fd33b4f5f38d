"""report.json (versioned) and a Markdown summary in every output directory."""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

from tinyopt.units import percent

SCHEMA = "tinyopt-report/1"


def new_report(command: str) -> dict:
    return {"schema": SCHEMA, "command": command,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "timings_s": {}}


@contextmanager
def timed(report: dict, stage: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        report["timings_s"][stage] = round(time.perf_counter() - start, 3)


def write_json(report: dict, out_dir: Path) -> Path:
    path = Path(out_dir) / "report.json"
    path.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def accuracy_rows(report: dict) -> list[tuple[str, str, str, str]]:
    """(model, accuracy, agreement with float, rmse vs float) for whichever models were scored."""
    rows = []
    for key in ("float", "optimized", "int8"):
        sec = report.get(key)
        if not sec:
            continue
        rows.append((key, percent(sec.get("accuracy"), 2), percent(sec.get("agreement"), 2),
                     f"{sec['rmse']:.4f}" if "rmse" in sec else "–"))
    return rows


def write_markdown(report: dict, out_dir: Path) -> Path:
    lines = [f"# tinyopt {report['command']} report", ""]
    acc = accuracy_rows(report)
    if acc:
        lines += ["| model | accuracy | top-1 agreement with float | RMSE vs float |", "|---|---|---|---|"]
        lines += [f"| {' | '.join(r)} |" for r in acc]
        lines.append("")
    int8 = report.get("int8", {})
    if int8:
        lines += [f"- int8 .tflite: {int8.get('tflite_bytes')} bytes ({int8.get('gzip_bytes')} gzipped)",
                  f"- int8 weight sparsity (prunable layers): {percent(int8.get('sparsity'), 2)}", ""]
        layers = int8.get("layers", [])
        if layers:
            lines += ["| layer | op | weights | sparsity | unique values | max unique / channel |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {r['layer']} | {r['op']} | {r['weights']} | {percent(r['sparsity'], 2)} | "
                      f"{r['unique_values']} | {r['max_unique_per_channel']} |" for r in layers]
            lines.append("")
    return finish_markdown(lines, report, out_dir)


def finish_markdown(lines: list[str], report: dict, out_dir: Path) -> Path:
    """End any report.md the same way: its notes, the stage-timing table, then the file."""
    lines = list(lines)
    for note in report.get("notes", []):
        _paragraph(lines, [f"> {note}"])   # one quote per note: adjacent "> " lines would merge
    if report.get("timings_s"):
        _paragraph(lines, ["| stage | seconds |", "|---|---|"]
                   + [f"| {k} | {v:.1f} |" for k, v in report["timings_s"].items()])
    path = Path(out_dir) / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _paragraph(lines: list[str], block: list[str]) -> None:
    if lines and lines[-1]:
        lines.append("")
    lines += block
