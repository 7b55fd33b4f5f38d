"""Human-readable rendering of an Analysis with rich: per-operator table, totals, arena,
audit findings and the board verdict."""
from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tinyopt.units import bytes_kb

_SHORT_TYPES = {"INT8": "i8", "INT16": "i16", "INT32": "i32", "INT64": "i64", "UINT8": "u8",
                "FLOAT32": "f32", "FLOAT16": "f16", "BOOL": "bool"}
_SHORT_QUANT = {"per-channel": "per-ch", "per-tensor": "per-t"}


def _shape(refs) -> str:
    acts = [r for r in refs if not r.constant]
    return " ".join("x".join(map(str, r.shape)) + " " + _SHORT_TYPES.get(r.dtype, r.dtype.lower())
                    for r in acts) or "-"


def _quant(op) -> str:
    kinds = {_SHORT_QUANT[r.quant] for r in op.inputs if r.constant and r.quant in _SHORT_QUANT}
    return "/".join(sorted(kinds)) or "-"


def _n(v: int) -> str:
    return f"{v:,}" if v else "-"


def ops_table(analysis) -> Table:
    table = Table(title=f"{analysis.source}: {len(analysis.ops)} operators", title_justify="left")
    for col, just in (("#", "right"), ("operator", "left"), ("layer", "left"),
                      ("input", "left"), ("output", "left"), ("MACs", "right"),
                      ("other ops", "right"), ("params", "right"), ("weight B", "right"),
                      ("output B", "right"), ("w. quant", "left")):
        table.add_column(col, justify=just, overflow="fold", no_wrap=col in ("#", "operator"))
    for op in analysis.ops:
        table.add_row(str(op.index), op.name, op.layer or "", _shape(op.inputs), _shape(op.outputs),
                      _n(op.macs), _n(op.other_ops), _n(op.params), _n(op.weight_bytes),
                      _n(op.output_bytes), _quant(op))
    t = analysis.totals
    table.add_section()
    table.add_row("", "total", "", "", "", _n(t.macs), _n(t.other_ops), _n(t.params),
                  _n(t.weight_bytes), "", "")
    return table


def summary(analysis) -> Group:
    t, a = analysis.totals, analysis.arena
    lines = [
        Text(f"model {bytes_kb(t.model_bytes)}, weights {bytes_kb(t.weight_bytes)}, "
             f"{t.params:,} parameters, {t.macs:,} MACs, {t.other_ops:,} other ops"),
        Text(f"arena (TFLM runtime, 64-bit host): {bytes_kb(a.tflm_bytes)} = head {bytes_kb(a.head_bytes)} "
             f"+ tail {bytes_kb(a.tail_bytes)}"),
        Text(f"firmware arena: {bytes_kb(a.firmware_bytes)} (margin {bytes_kb(a.margin_bytes)} for "
             f"{a.margin_kernels} kernels); "
             f"activation peak from lifetimes: {bytes_kb(a.peak_activation_bytes)}"),
        Text(f"  {a.note}; on the device arena_used_bytes must stay <= the firmware arena",
             style="dim"),
    ]
    for f in analysis.audit.errors:
        lines.append(Text(f"error: {f.message}\n  fix: {f.hint}", style="red"))
    for f in analysis.audit.warnings:
        lines.append(Text(f"warning: {f.message}\n  fix: {f.hint}", style="yellow"))
    for backend, findings in analysis.audit.backend_errors.items():
        where = []
        for f in findings:
            if f.op_index is None:
                where.append(f.code)
                continue
            op = analysis.ops[f.op_index]
            where.append(f"{op.name} (#{op.index}" + (f" {op.layer})" if op.layer else ")"))
        lines.append(Text(f"backend {backend} cannot run: {', '.join(where)}; "
                          f"fix: {findings[0].hint}", style="yellow"))
    if analysis.audit.ok:
        lines.append(Text("audit: TFLM can run this model", style="green"))
    if analysis.fit is not None:
        fit = analysis.fit
        lines.append(Text(fit.verdict, style="green" if fit.fits else "bold red"))
        fp, rp = fit.flash_parts, fit.ram_parts
        lines.append(Text(f"  flash = model {fp['model']:,} B + runtime {fp['runtime']:,} B "
                          f"({fp['runtime_source']}); RAM = arena {rp['arena']:,} B "
                          f"({rp['arena_source']}) + runtime {rp['runtime']:,} B "
                          f"({rp['runtime_source']})", style="dim"))
        for s in fit.suggestions:
            lines.append(Text(f"  try: {s}"))
    return Group(*lines)


def print_analysis(analysis, console: Console) -> None:
    if not console.is_terminal:
        # A pipe or a log file: no width limit to respect, so keep each row on one line.
        console = Console(file=console.file, width=max(console.width, 170), highlight=False,
                          no_color=True)
    console.print(ops_table(analysis))
    console.print(summary(analysis))
