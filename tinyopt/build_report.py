"""The `tinyopt build` report in people's terms: report.md and latency.png next to report.json."""
from __future__ import annotations

from pathlib import Path

from tinyopt.report import finish_markdown
from tinyopt.units import percent


def _num(v, digits=1, unit=""):
    if v is None:
        return "–"
    if isinstance(v, float) and digits == 0:
        v = round(v)
    return (f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}") + (f" {unit}" if unit else "")


# Windows closer than this (relative spread) are the same figure up to the timer's resolution.
SAME_WINDOWS = 1e-3


def write_latency_plot(report: dict, folder: Path) -> Path | None:
    """Per-window latency (µs per inference) with its median; None when nothing was measured
    or every window measured the same figure (a plot of identical dots says nothing)."""
    lat = (report.get("measure") or {}).get("latency_us")
    if not lat or not lat.get("per_window"):
        return None
    spread = (max(lat["per_window"]) - min(lat["per_window"])) / max(lat["median"], 1e-9)
    if spread < SAME_WINDOWS:
        emulated = report.get("board", {}).get("emulated")
        why = " (the emulated board's -icount clock repeats to the timer tick)" if emulated else ""
        report.setdefault("notes", []).append(
            f"all {len(lat['per_window'])} windows measured {lat['median']:.1f} µs per inference within "
            f"{100 * spread:.3f} %{why}: no latency plot")
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    values = lat["per_window"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(range(1, len(values) + 1), values, "o-", label="window")
    ax.axhline(lat["median"], color="tab:red", linestyle="--", label=f"median {lat['median']:.1f} µs")
    ax.set_xlabel("window")
    ax.set_xticks(range(1, len(values) + 1))  # windows are counted, not measured
    ax.set_ylabel("µs per inference")
    board = report.get("board", {})
    title = f"{board.get('name', '')} · {report.get('backend', '')}"
    if board.get("emulated"):
        title += " (emulated: QEMU virtual time)"
    ax.set_title(title, fontsize=10)
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.5, hi * 0.01, 1e-3)
    ax.set_ylim(lo - pad, hi + pad)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(folder) / "latency.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_layer_plots(report: dict, folder: Path, memory_plan: dict | None = None) -> dict:
    """layers.png (time vs work per layer) when the layers were profiled, and memory.png (the
    aot activation buffer over the steps, TFLM's arena beside it) for aot builds."""
    from tinyopt.report_plots import plot_layers, plot_memory
    out = {}
    board = report.get("board", {})
    title = f"per layer on {board.get('name', '')} · {report.get('backend', '')}"
    layers = (report.get("measure") or {}).get("layers")
    if layers:
        out["layers_plot"] = plot_layers(layers, Path(folder) / "layers.png", title.strip(),
                                         bool(board.get("emulated"))).name
    if memory_plan is not None:
        arena = (report.get("analysis") or {}).get("arena") or {}
        out["memory_plot"] = plot_memory(memory_plan, Path(folder) / "memory.png",
                                         "activation memory: aot plan vs TFLM arena",
                                         arena.get("tflm_bytes"), arena.get("head_bytes")).name
    return out


def _layer_lines(report: dict) -> list[str]:
    m = report.get("measure") or {}
    layers = m.get("layers")
    if not layers:
        return []
    emulated = bool(report.get("board", {}).get("emulated"))
    unit = "emulated cycles" if emulated else "cycles"
    lines = ["", f"## Per layer ({unit} per inference, measured on the device)", "",
             "| # | op | layer | MACs | cycles | µs | cycles/MAC | share |", "|---|---|---|---|---|---|---|---|"]
    for r in layers:
        lines.append(f"| {r['index']} | {r['op']} | {r['layer'] or ''} | {r['macs']:,} | {r['cycles']:,.0f} | "
                     f"{r['us']:,.1f} | {r['cycles_per_mac'] or '–'} | {100 * r['share']:.1f} % |")
    a, o = m.get("layer_agreement") or {}, m.get("layer_overhead") or {}
    if a.get("ratio") is not None:
        lines += ["", f"The layers sum to {100 * a['ratio']:.2f} % of the whole inference measured by `infer` "
                      f"({a['unit']}); the timer's own cost, {o.get('cycles_per_event_pair', 0):.1f} cycles per "
                      "layer, measured on the device, is taken out of every layer."]
    if report.get("layers_plot"):
        lines += ["", f"![time and work per layer]({report['layers_plot']})"]
    if m.get("layers_compared"):
        from tinyopt.layer_compare import markdown_lines
        lines += markdown_lines(m["layers_compared"])
    return lines


def write_markdown(report: dict, folder: Path) -> Path:
    board = report.get("board", {})
    lines = [f"# tinyopt build: {board.get('name', '?')} · {report.get('backend', '?')}", "",
             f"Status: **{report.get('status', '?')}**", ""]
    model = report.get("model", {})
    int8 = model.get("int8", {})
    if model:
        lines.append(f"- model: {model.get('model', {}).get('path') or model.get('path', '?')}")
        if int8.get("accuracy") is not None:
            lines.append(f"- int8 accuracy (TFLM runtime, validation data): {percent(int8['accuracy'])}")
    analysis = report.get("analysis", {})
    if analysis:
        totals = analysis.get("totals", {})
        lines.append(f"- {_num(totals.get('macs'), 0)} MACs, model {_num(totals.get('model_bytes'), 0)} bytes, "
                     f"arena {_num(analysis.get('arena', {}).get('firmware_bytes'), 0)} bytes")
    build = report.get("build")
    if build:
        lines += ["", "| build (PlatformIO) | used | of |", "|---|---|---|",
                  f"| flash | {_num(build.get('flash_bytes'), 0)} B | {_num(build.get('flash_max'), 0)} B |",
                  f"| RAM (static) | {_num(build.get('ram_bytes'), 0)} B | {_num(build.get('ram_max'), 0)} B |"]
    m = report.get("measure")
    if m:
        lat, cyc, out = m.get("latency_us") or {}, m.get("cycles") or {}, m.get("outputs") or {}
        cyc_label = "emulated cycles (instructions)" if board.get("emulated") else "cycles"
        lines += ["", f"Measured over serial: {m.get('windows')} windows × {m.get('runs')} inferences "
                      f"(warm-up {m.get('warmup')}), timer `{m.get('timer')}`.", "",
                  "| per inference | median | min | p90 | max |", "|---|---|---|---|---|",
                  f"| latency (µs) | {_num(lat.get('median'))} | {_num(lat.get('min'))} | "
                  f"{_num(lat.get('p90'))} | {_num(lat.get('max'))} |"]
        if cyc:
            lines.append(f"| {cyc_label} | {_num(cyc.get('median'), 0)} | {_num(cyc.get('min'), 0)} | "
                         f"{_num(cyc.get('p90'), 0)} | {_num(cyc.get('max'), 0)} |")
        if out.get("inputs"):
            lines += ["", f"On-device outputs vs the TFLM Python runtime over {out['inputs']} inputs "
                          f"({out.get('source', '')}): {out['exact_matches']} byte-exact "
                          f"({percent(out['exact_match_rate'])}), max |diff| {out['max_abs_diff']} int8 steps, "
                          f"top-1 agreement {percent(out['top1_agreement'])}."]
        if m.get("note"):
            lines += ["", f"> {m['note']}"]
        if report.get("plot"):
            lines += ["", f"![latency per window]({report['plot']})"]
    lines += _layer_lines(report)
    if report.get("memory_plot"):
        lines += ["", "## Activation memory", "", f"![activation buffer over the operators]({report['memory_plot']})"]
    return finish_markdown(lines, report, folder)
