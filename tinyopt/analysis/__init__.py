"""Reading and analysing int8 .tflite models: `analyze(model, board) -> Analysis`.

One module per job: reader (flatbuffer -> values), ops/macs (per-operator table),
lifetimes (activation peak), audit (TFLM compatibility), arena (exact arena from the
TFLM runtime), fit (board budgets), plot and table (presentation)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from tinyopt.analysis.arena import Arena, measure_arena, unmeasured_arena
from tinyopt.analysis.audit import Audit, Finding, audit
from tinyopt.analysis.fit import Fit, check_fit
from tinyopt.analysis.lifetimes import live_bytes_per_op, peak_activation_bytes
from tinyopt.analysis.ops import OpRow, op_rows
from tinyopt.analysis.reader import TfliteModel, read_tflite
from tinyopt.errors import TinyoptError
from tinyopt.tflm_probe import NativeLoadError

__all__ = ["Analysis", "Totals", "analyze", "raise_for_audit", "read_tflite", "TfliteModel"]


@dataclass(frozen=True)
class Totals:
    macs: int
    other_ops: int
    params: int
    weight_bytes: int     # parameters (weights, biases), each tensor counted once
    model_bytes: int      # the .tflite file: what goes to flash

    def to_json(self) -> dict:
        return {"macs": self.macs, "other_ops": self.other_ops, "params": self.params,
                "weight_bytes": self.weight_bytes, "model_bytes": self.model_bytes}


@dataclass(frozen=True)
class Analysis:
    source: str
    ops: tuple[OpRow, ...]
    totals: Totals
    arena: Arena
    audit: Audit
    fit: Fit | None
    inputs: tuple[dict, ...]
    outputs: tuple[dict, ...]

    @property
    def audit_ok(self) -> bool:
        return self.audit.ok

    def to_json(self) -> dict:
        data = {"model": self.source, "inputs": list(self.inputs), "outputs": list(self.outputs),
                "ops": [op.to_json() for op in self.ops], "totals": self.totals.to_json(),
                "arena": self.arena.to_json(), "audit": self.audit.to_json()}
        if self.fit is not None:
            data["fit"] = self.fit.to_json()
        return data


def _io(model: TfliteModel, indices) -> tuple[dict, ...]:
    out = []
    for i in indices:
        t = model.tensors[i]
        out.append({"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                    "scale": float(t.scales[0]) if t.scales.size else None,
                    "zero_point": int(t.zero_points[0]) if t.zero_points.size else None})
    return tuple(out)


def _totals(model: TfliteModel, ops: tuple[OpRow, ...]) -> Totals:
    params = {i for op in ops for i in op.param_tensors}   # shared weights count once
    return Totals(macs=sum(op.macs for op in ops), other_ops=sum(op.other_ops for op in ops),
                  params=sum(model.tensors[i].elements for i in params),
                  weight_bytes=sum(model.tensors[i].nbytes for i in params),
                  model_bytes=model.size_bytes)


def analyze(model, board=None, *, other_boards=None) -> Analysis:
    """Analyse a .tflite (path, bytes or an already read TfliteModel); `board` is a Board
    or a board name from boards/.

    The TFLM runtime is only started when the audit finds no error, so a float or hybrid
    model gives its audit error instead of a runtime failure. `other_boards` (default:
    every board in boards/) feeds the "boards it fits" suggestion."""
    if isinstance(board, str):
        from tinyopt.boards import load_board
        board = load_board(board)
    if isinstance(model, TfliteModel):
        tfl, source = model, "model data"
    else:
        tfl = read_tflite(model)
        source = "model data" if isinstance(model, (bytes, bytearray)) else str(Path(model))
    live = live_bytes_per_op(tfl)
    ops = tuple(replace(row, live_bytes=n) for row, n in zip(op_rows(tfl), live))
    totals = _totals(tfl, ops)
    findings = audit(tfl)
    peak = peak_activation_bytes(tfl)
    kernels = board.tflm.get("kernels") if board is not None else None
    if findings.ok:
        try:
            arena = measure_arena(tfl, peak, kernels)
        except NativeLoadError:
            raise   # a damaged file (exit 2), not an audit finding
        except TinyoptError as err:   # the runtime refused a model the audit let through
            findings = Audit(findings.errors + (Finding("tflm-runtime", err.message,
                             "check the operator types; report the model if the audit should "
                             "have caught this"),), findings.warnings, findings.backend_errors)
            arena = unmeasured_arena(peak, "not measured: the TFLM runtime refused the model",
                                     kernels)
    else:
        arena = unmeasured_arena(peak, "not measured: fix the audit errors first", kernels)
    fit = None
    if board is not None:
        if other_boards is None:
            other_boards = _known_boards()
        heavy = max(ops, key=lambda op: op.output_bytes, default=None)
        fit = check_fit(board, model_bytes=totals.model_bytes, weight_bytes=totals.weight_bytes,
                        arena_bytes=arena.firmware_bytes if arena.measured else peak,
                        arena_measured=arena.measured,
                        heaviest_activation=(f"operator #{heavy.index} {heavy.layer or heavy.name}",
                                             heavy.output_bytes) if heavy else None,
                        other_boards=other_boards)
    return Analysis(source, ops, totals, arena, findings, fit, _io(tfl, tfl.inputs),
                    _io(tfl, tfl.outputs))


def _known_boards():
    from tinyopt.boards import all_boards
    try:
        return all_boards()
    except TinyoptError:      # a broken board file must not break the analysis
        return []


def raise_for_audit(analysis: Analysis, backend: str | None = None) -> None:
    """Stop a stage (generate, build) early with the first audit error for this backend."""
    errors = analysis.audit.errors_for(backend)
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s); run `tinyopt analyze`)" if len(errors) > 1 else ""
        raise TinyoptError(first.message + more, first.hint)
