"""Per-layer figures from the device's `layers N%` answer, joined with the analysis.

The device gives, per step, the cycles and µs between the timer events around it, summed over
N runs, and the cost of an empty event pair. Here: per-run means with that cost taken out,
the operator's MACs and Keras layer from the analysis, cycles per MAC and each step's share.
The per-layer sum is checked against the whole-inference figure `infer` measured on the same
firmware (which never runs the profiling code)."""
from __future__ import annotations

from tinyopt.analysis.ops import OpRow
from tinyopt.serial_link import LayerTiming

# On the emulated boards (-icount) the per-layer sum matches the whole inference within the
# timer resolution per event; the interpreter's own work between operators (TFLM) is the rest.
EMULATED_TOLERANCE = 0.02


def layer_table(timing: LayerTiming, rows: tuple[OpRow, ...] | list[OpRow]) -> list[dict]:
    by_index = {r.index: r for r in rows}
    pairs = max(timing.overhead_pairs, 1)
    over_c = timing.overhead_cycles / pairs
    over_us = timing.overhead_us / pairs
    out = []
    for step, op_index, opcode, cycles, us in timing.steps:
        c = max(cycles / timing.runs - over_c, 0.0)
        t = max(us / timing.runs - over_us, 0.0)
        row = by_index.get(op_index)
        macs = row.macs if row is not None else 0
        out.append({"index": op_index, "step": step, "op": opcode, "layer": row.layer if row else None,
                    "macs": macs, "cycles": round(c, 1), "us": round(t, 3),
                    "cycles_per_mac": round(c / macs, 3) if macs else None})
    key = "cycles" if any(r["cycles"] for r in out) else "us"
    total = sum(r[key] for r in out) or 1.0
    for r in out:
        r["share"] = round(r[key] / total, 4)
    return out


def overhead(timing: LayerTiming) -> dict:
    pairs = max(timing.overhead_pairs, 1)
    return {"pairs": timing.overhead_pairs, "cycles_per_event_pair": timing.overhead_cycles / pairs,
            "us_per_event_pair": timing.overhead_us / pairs}


def agreement(layers: list[dict], whole_cycles: float | None, whole_us: float | None) -> dict:
    """The per-layer sum against the whole inference (cycles where the board counts them)."""
    if whole_cycles and any(r["cycles"] for r in layers):
        total, whole, unit = sum(r["cycles"] for r in layers), whole_cycles, "cycles"
    else:
        total, whole, unit = sum(r["us"] for r in layers), whole_us, "us"
    ratio = total / whole if whole else None
    return {"unit": unit, "layers_sum": round(total, 1), "whole_inference": whole,
            "ratio": round(ratio, 5) if ratio is not None else None}


def side_by_side(a: list[dict], b: list[dict]) -> list[dict]:
    """Two backends' profiles of one model, joined on the operator index (aot has no step for
    RESHAPE; TFLM runs every operator)."""
    bi = {r["index"]: r for r in b}
    rows = []
    for r in a:
        other = bi.get(r["index"])
        rows.append({"index": r["index"], "op": r["op"], "layer": r["layer"], "macs": r["macs"],
                     "cycles_a": r["cycles"], "cycles_b": other["cycles"] if other else None,
                     "ratio": round(r["cycles"] / other["cycles"], 3) if other and other["cycles"] else None})
    seen = {r["index"] for r in a}
    rows += [{"index": r["index"], "op": r["op"], "layer": r["layer"], "macs": r["macs"], "cycles_a": None,
              "cycles_b": r["cycles"], "ratio": None} for r in b if r["index"] not in seen]
    return sorted(rows, key=lambda r: r["index"])
