"""Pictures for the reports (matplotlib, PNG): where the time goes per layer, and the
activation memory over the operator sequence."""
from __future__ import annotations

from pathlib import Path

from tinyopt.errors import TinyoptError


def plt_module():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: Path) -> Path:
    """Write FIG as PNG and close it; an unwritable path is a one-line error."""
    path = Path(path)
    try:
        fig.savefig(path, dpi=110)
    except OSError as err:
        raise TinyoptError(f"cannot write {path}: {err.strerror}",
                           "check the directory exists and is writable") from None
    finally:
        plt_module().close(fig)
    return path


def _short(name: str | None, limit: int = 18) -> str:
    name = name or ""
    return name if len(name) <= limit else name[:limit - 1] + "…"


def plot_layers(layers: list[dict], path, title: str, emulated: bool) -> Path:
    """Cycles per layer next to MACs per layer, both as a share of their total: a layer whose
    time share is far above its work share is where the kernels are weakest."""
    plt = plt_module()
    labels = [f"#{r['index']} {r['op'].replace('_2D', '').replace('FULLY_CONNECTED', 'FC')}\n{_short(r['layer'])}"
              for r in layers]
    cycles = [r["cycles"] for r in layers]
    macs = [r["macs"] for r in layers]
    total_c, total_m = sum(cycles) or 1.0, sum(macs) or 1
    width = 0.4
    x = range(len(layers))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(layers) + 2), 4.2))
    unit = "emulated cycles" if emulated else "cycles"
    ax.bar([i - width / 2 for i in x], [100 * c / total_c for c in cycles], width, label=f"time ({unit})",
           color="tab:red")
    ax.bar([i + width / 2 for i in x], [100 * m / total_m for m in macs], width, label="work (MACs)",
           color="tab:blue")
    for i, r in enumerate(layers):
        if r.get("cycles_per_mac"):
            ax.annotate(f"{r['cycles_per_mac']:.1f}/MAC", (i - width / 2, 100 * cycles[i] / total_c),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=7, rotation=30, ha="right")
    ax.set_ylabel("share of the inference (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_memory(plan: dict, path, title: str, tflm_arena: int | None = None,
                tflm_head: int | None = None) -> Path:
    """The activation buffer over the operator sequence: each tensor a rectangle at its offset
    (height = bytes) over its live range (steps), with TFLM's arena drawn for comparison. A layer
    that writes over its input shows as two rectangles overlapping at its step."""
    plt = plt_module()
    from matplotlib.patches import Rectangle
    steps = plan["steps"]
    n = len(steps)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * n + 2), 4.5))
    cmap = plt.get_cmap("tab20")
    for k, t in enumerate(plan["tensors"]):
        first, last = max(t["first"], -0.5), min(t["last"], n - 0.5)
        ax.add_patch(Rectangle((first - 0.4, t["offset"]), last - first + 0.8, t["bytes"],
                               facecolor=cmap(k % 20), edgecolor="black", linewidth=0.5, alpha=0.85))
        if t["bytes"] >= 0.06 * max(plan["bytes"], 1):
            label = t.get("label", f"t{t['tensor']}")
            ax.text((first + last) / 2, t["offset"] + t["bytes"] / 2, f"{label} {t['bytes']:,} B",
                    ha="center", va="center", fontsize=6)
    top = max(plan["bytes"], tflm_arena or 0, 1)
    ax.axhline(plan["bytes"], color="black", linewidth=1, label=f"aot buffer {plan['bytes']:,} B")
    if tflm_head:
        ax.axhline(tflm_head, color="tab:orange", linestyle=":", label=f"TFLM arena head {tflm_head:,} B")
    if tflm_arena:
        ax.axhline(tflm_arena, color="tab:red", linestyle="--", label=f"TFLM arena total {tflm_arena:,} B")
    ax.set_xlim(-1, n)
    ax.set_ylim(0, top * 1.08)
    ax.set_xticks(range(n))
    ax.set_xticklabels([s.replace("_2D", "") for s in steps], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("offset in the activation buffer (bytes)")
    in_place = len(plan.get("in_place", []))
    note = {0: "", 1: " (1 layer writes over its input)"}.get(in_place, f" ({in_place} layers write over their input)")
    ax.set_title(title + note, fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return save_figure(fig, path)
