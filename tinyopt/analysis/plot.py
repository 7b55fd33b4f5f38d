"""Per-layer bar charts: MACs (and other ops) on top, memory below (weight bytes and the
output activation bytes), so the heavy layer stands out at a glance."""
from __future__ import annotations

from pathlib import Path

from tinyopt.errors import TinyoptError


def _label(op) -> str:
    return f"#{op.index} {op.name}" + (f"\n{op.layer}" if op.layer else "")


def _si(value, _pos=None) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:g}{unit}"
    return f"{value:g}"


def plot_analysis(analysis, path: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")      # no display on CI or over ssh
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FuncFormatter

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise TinyoptError(f"cannot write a plot to {path.name}", "use a .png, .svg or .pdf file name")
    ops = analysis.ops
    x = np.arange(len(ops))
    width = max(6.0, 0.45 * len(ops) + 2)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(width, 7.5), sharex=True)
    ax1.bar(x - 0.2, [op.macs for op in ops], 0.4, label="MACs", color="#3b6ea5")
    ax1.bar(x + 0.2, [op.other_ops for op in ops], 0.4, label="other ops (elements)", color="#a0b8d6")
    ax1.set_ylabel("operations")
    ax1.yaxis.set_major_formatter(FuncFormatter(_si))
    ax1.set_title(f"{Path(analysis.source).name}: {analysis.totals.macs:,} MACs in total")
    ax1.set_ylim(0, 1.25 * max(ax1.get_ylim()[1], 1))
    ax1.legend(loc="upper right", fontsize=8, ncol=2)
    ax1.grid(axis="y", alpha=0.3)
    kib = 1024.0
    ax2.bar(x - 0.2, [op.weight_bytes / kib for op in ops], 0.4, label="weights (flash)", color="#c0504d")
    ax2.bar(x + 0.2, [op.output_bytes / kib for op in ops], 0.4, label="output activation (RAM)",
            color="#f2a65a")
    ax2.step(x, [op.live_bytes / kib for op in ops], where="mid", color="#6a6a6a", linewidth=1.2,
             label="live activations while the op runs (RAM)")
    arena = analysis.arena
    ref = arena.head_bytes if arena.head_bytes is not None else arena.peak_activation_bytes
    ax2.axhline(ref / kib, color="#555555", linestyle="--", linewidth=1,
                label=f"arena head {ref / kib:.1f} kB" if arena.head_bytes is not None
                else f"activation peak {ref / kib:.1f} kB")
    ax2.set_ylabel("kB")
    # Head-room above the tallest bar so the legend never hides a bar or the lines.
    ax2.set_ylim(0, 1.45 * max(ax2.get_ylim()[1], 1e-3))
    ax2.legend(loc="upper right", fontsize=8, ncol=2)
    ax2.grid(axis="y", alpha=0.3)
    ax2.set_xticks(x)
    ax2.set_xticklabels([_label(op) for op in ops], rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    from tinyopt.report_plots import save_figure
    save_figure(fig, path)
    return path
