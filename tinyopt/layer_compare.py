"""Per-layer figures of this build side by side with an earlier build's (`build --compare
OUT`): typically the other backend on the same model and board, so that each layer's cycles
under aot and tflm sit in one row. Rows are joined on the operator index of the .tflite;
a step one backend does not run (aot aliases RESHAPE, for instance) shows as missing."""
from __future__ import annotations

import json
from pathlib import Path

from tinyopt.errors import TinyoptError


def load_reference(folder) -> dict:
    """The earlier build's report, checked to hold a per-layer profile (before any work)."""
    folder = Path(folder)
    path = folder / "report.json" if folder.is_dir() else folder
    hint = "pass the output folder of an earlier `tinyopt build --layers N` (e.g. the other --backend)"
    if not path.is_file():
        raise TinyoptError(f"--compare {folder}: no report.json there", hint)
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise TinyoptError(f"--compare {folder}: report.json is not readable JSON ({err})", hint) from None
    layers = (report.get("measure") or {}).get("layers") if isinstance(report, dict) else None
    if not layers:
        raise TinyoptError(f"--compare {folder}: that build has no per-layer profile", hint)
    return report


def _model_key(report: dict) -> tuple:
    totals = (report.get("analysis") or {}).get("totals") or {}
    return totals.get("model_bytes"), totals.get("macs")


def check_same_model(report: dict, reference: dict, where) -> None:
    """Refuse a reference that profiled another model (once this build's analysis is known)."""
    mine, theirs = _model_key(report), _model_key(reference)
    if mine != theirs:
        raise TinyoptError(f"--compare {where}: that build profiled another model ({theirs[0]} bytes, "
                           f"{theirs[1]} MACs; this one {mine[0]} bytes, {mine[1]} MACs)",
                           "compare builds of the same .tflite (the same MODEL and optimization options)")


def side_by_side(report: dict, reference: dict, where) -> dict:
    """Join this build's measure.layers with REFERENCE's on the operator index."""
    check_same_model(report, reference, where)
    ours = {r["index"]: r for r in report["measure"]["layers"]}
    theirs = {r["index"]: r for r in reference["measure"]["layers"]}
    rows = []
    for index in sorted(set(ours) | set(theirs)):
        a, b = ours.get(index), theirs.get(index)
        base = a or b
        rows.append({"index": index, "op": base["op"], "layer": base.get("layer"), "macs": base.get("macs", 0),
                     "cycles": a["cycles"] if a else None, "reference_cycles": b["cycles"] if b else None,
                     "ratio": a["cycles"] / b["cycles"] if a and b and b["cycles"] else None})
    total = sum(r["cycles"] or 0 for r in rows)
    ref_total = sum(r["reference_cycles"] or 0 for r in rows)
    return {"reference": str(where), "backend": report.get("backend"),
            "reference_backend": reference.get("backend"),
            "reference_board": (reference.get("board") or {}).get("name"),
            "rows": rows, "cycles": total, "reference_cycles": ref_total,
            "ratio": total / ref_total if ref_total else None}


def table(compared: dict) -> tuple[list[str], list[list[str]]]:
    """Column names and formatted cells (the rows, then the total), for the terminal and
    report.md alike."""
    mine = compared.get("backend") or "this build"
    ref = compared.get("reference_backend") or "reference"
    headers = ["#", "op", "layer", "MACs", f"{mine} cycles", f"{ref} cycles", "ratio"]
    cells = [[str(r["index"]), r["op"], r["layer"] or "", f"{r['macs']:,}", _cyc(r["cycles"]),
              _cyc(r["reference_cycles"]), _ratio(r["ratio"])] for r in compared["rows"]]
    cells.append(["", "total", "", "", _cyc(compared["cycles"]), _cyc(compared["reference_cycles"]),
                  _ratio(compared["ratio"])])
    return headers, cells


def title(compared: dict) -> str:
    return f"side by side with {compared['reference']} ({compared.get('reference_backend') or 'reference'})"


def markdown_lines(compared: dict) -> list[str]:
    headers, cells = table(compared)
    lines = ["", f"## Per layer, {title(compared)}", "", "| " + " | ".join(headers) + " |",
             "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(row) + " |" for row in cells]


def _cyc(v) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _ratio(v) -> str:
    return "–" if v is None else f"{v:.2f}x"
