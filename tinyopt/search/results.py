"""What a study found: every trial, the Pareto front (quality vs cycles vs flash vs RAM), the
best trial within the budget, written as OUT/report.json, OUT/report.md and OUT/pareto.png,
and the chosen model exported to OUT/chosen/ (Keras model, .tflite, PlatformIO project)."""
from __future__ import annotations

import shutil
from pathlib import Path

from tinyopt.errors import TinyoptError
from tinyopt.report import new_report, write_json
from tinyopt.search import space
from tinyopt.search.study import constraints_of, counted
from tinyopt.search.trial import SearchConfig

PREFER = {"latency": ("cycles", "flash_bytes", "ram_bytes"),
          "flash": ("flash_bytes", "cycles", "ram_bytes"),
          "ram": ("ram_bytes", "cycles", "flash_bytes")}


def _figures_row(fig: dict) -> dict:
    return {"accuracy": fig.get("quality"), "cycles": fig.get("cycles"), "flash_bytes": fig.get("flash_bytes"),
            "ram_bytes": fig.get("ram_bytes"), "latency_ms": fig.get("latency_ms"), "macs": fig.get("macs"),
            "tflite_bytes": fig.get("tflite_bytes")}


def pareto_front(rows: list[dict]) -> list[int]:
    """Numbers of the non-dominated rows (accuracy up; cycles, flash, RAM down)."""
    def key(r):
        return (-r["accuracy"], r["cycles"], r["flash_bytes"], r["ram_bytes"])
    front = []
    for r in rows:
        kr = key(r)
        dominated = False
        for o in rows:
            ko = key(o)
            if o is not r and all(a <= b for a, b in zip(ko, kr)) and any(a < b for a, b in zip(ko, kr)):
                dominated = True
                break
        if not dominated:
            front.append(r["number"])
    return sorted(front)


def build_report(study, cfg: SearchConfig, prefer: str = "latency") -> dict:
    from optuna.trial import TrialState

    from tinyopt.boards import load_board
    report = new_report("search")
    report["board"] = cfg.board
    report["measured_on"] = cfg.measured_on
    report["measure_board"] = cfg.measure_board
    report["measured_emulated"] = load_board(cfg.measure_board).emulated
    report["quality_metric"] = {"accuracy": "int8 accuracy on the validation labels (TFLM runtime), %",
                                "agreement": "int8 top-1 agreement with the original model (TFLM runtime), %",
                                "fidelity": "100 x (1 - int8 RMSE / RMS of the original's outputs)"}[cfg.quality]
    report["budget"] = {"max_accuracy_drop": cfg.max_accuracy_drop, "max_latency_ms": cfg.max_latency_ms,
                        "max_flash_kb": cfg.max_flash_kb, "max_ram_kb": cfg.max_ram_kb}
    report["config"] = cfg.to_json()
    trials = sorted(counted(study), key=lambda t: t.number)
    base = [t for t in trials if t.user_attrs.get("role") == "baseline" and t.state == TrialState.COMPLETE]
    baselines = {t.params["backend"]: t.user_attrs["figures"] for t in base}
    first = baselines.get(cfg.backends[0]) or (next(iter(baselines.values())) if baselines else None)
    report["baseline"] = ({**_figures_row(first), "backend": cfg.backends[0] if cfg.backends[0] in baselines
                           else next(iter(baselines)), "trial": next(t.number for t in base)} if first else None)
    report["baselines"] = {b: _figures_row(f) for b, f in baselines.items()}
    rows = []
    for t in trials:
        row = {"number": t.number, "params": dict(t.params), "describe": space.describe(dict(t.params)),
               "role": t.user_attrs.get("role", "sampled"), "state": t.state.name,
               "worker": t.user_attrs.get("worker")}
        fig = t.user_attrs.get("figures")
        if t.state == TrialState.COMPLETE and fig:
            row.update(_figures_row(fig))
            row["device_exact_match_rate"] = fig.get("device_exact_match_rate")
            if first:
                cons = constraints_of(fig, cfg, first["quality"])
                row["accuracy_drop"] = first["quality"] - fig["quality"]
                row["feasible"] = all(c <= 0 for c in cons)
                row["violation"] = _violation(cons, cfg)
            own = baselines.get(t.params["backend"])
            if own and fig.get("cycles") and own.get("cycles"):
                row["cycle_ratio"] = fig["cycles"] / own["cycles"]
            row["path"] = t.user_attrs.get("path")
        else:
            row.update({"accuracy": None, "cycles": None, "flash_bytes": None, "ram_bytes": None,
                        "feasible": False, "error": t.user_attrs.get("error")})
        rows.append(row)
    report["trials"] = rows
    measured = [r for r in rows if r["state"] == "COMPLETE" and r.get("accuracy") is not None
                and r.get("cycles") is not None]
    report["pareto"] = pareto_front(measured)
    report["interrupted"] = sorted(t.number for t in study.get_trials(deepcopy=False)
                                   if t.user_attrs.get("interrupted"))
    feasible = [r for r in measured if r.get("feasible")]
    order = PREFER[prefer]
    report["prefer"] = prefer
    if feasible:
        best = min(feasible, key=lambda r: tuple(r[k] for k in order) + (-r["accuracy"], r["number"]))
        report["chosen"] = {k: best.get(k) for k in ("number", "params", "describe", "accuracy", "accuracy_drop",
                                                    "cycles", "cycle_ratio", "flash_bytes", "ram_bytes",
                                                    "latency_ms", "macs", "tflite_bytes")}
    else:
        report["chosen"] = None
        report["closest"] = [r["number"] for r in sorted(measured, key=lambda r: r.get("violation", 1e9))[:3]]
    return report


def _violation(cons: list[float], cfg: SearchConfig) -> float:
    """How far outside the budget, each constraint scaled by its own limit."""
    limits = (cfg.max_latency_ms, cfg.max_flash_kb, cfg.max_ram_kb)
    scales = [max(1.0, cfg.max_accuracy_drop)] + [max(1e-9, v) for v in limits if v is not None]
    return float(sum(max(0.0, c) / s for c, s in zip(cons, scales)))


def export_chosen(report: dict, cfg: SearchConfig, out: Path, rerun=None) -> Path | None:
    """OUT/chosen/: the chosen trial's Keras model (optimized.keras), model_int8.tflite, its
    trial report, and a PlatformIO project for the target board, ready for `tinyopt flash`.
    RERUN(number, params, folder) reproduces a trial whose files are on another machine."""
    from tinyopt.codegen.generate import generate
    chosen = report.get("chosen")
    if not chosen:
        return None
    row = next(r for r in report["trials"] if r["number"] == chosen["number"])
    trial_dir = Path(row["path"]) if row.get("path") else None
    if trial_dir is None or not (trial_dir / "model" / "model_int8.tflite").is_file():
        if rerun is None:
            raise TinyoptError(f"the chosen trial {chosen['number']} ran on another machine",
                               "rerun this command where its files are")
        trial_dir = out / "reproduced" / f"{chosen['number']:04d}"
        rerun(chosen["number"], chosen["params"], trial_dir)
        report.setdefault("notes", []).append(f"trial {chosen['number']} ran elsewhere: reproduced here "
                                              f"(same parameters and seed) for the export")
    dest = out / "chosen"
    tmp = out / ".chosen.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp).mkdir(parents=True)
    shutil.copyfile(trial_dir / "model" / "model_int8.tflite", tmp / "model_int8.tflite")
    keras_file = trial_dir / "model" / "optimized.keras"
    if keras_file.is_file():
        shutil.copyfile(keras_file, tmp / "model.keras")
    elif cfg.model:
        src = Path(cfg.model)
        if src.is_dir():
            shutil.copytree(src, tmp / "model")
        else:
            shutil.copyfile(src, tmp / ("model" + src.suffix))
    for name in ("report.json", "report.md"):
        if (trial_dir / name).is_file():
            shutil.copyfile(trial_dir / name, tmp / f"trial_{name}")
    model_name = (Path(str(cfg.model).rstrip("/")).stem if cfg.model else "demo")
    generate(tmp / "model_int8.tflite", cfg.board, backend=chosen["params"]["backend"], out=tmp / "project",
             options={"model_name": model_name})
    _repoint(tmp / "project", dest / "model_int8.tflite")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    chosen["path"] = str(dest.resolve())
    return dest


def _repoint(project: Path, tflite: Path) -> None:
    """The project records its model's path (measure reads it): make it the exported one."""
    from tinyopt.codegen.manifest import ProjectManifest
    ProjectManifest.load(project).with_model_source(tflite.resolve()).save(project)


# ---------------------------------------------------------------- presentation

def _fmt(v, kind):
    if v is None:
        return "–"
    if kind == "pct":
        return f"{v:.2f}"
    if kind == "int":
        return f"{int(round(v)):,}"
    if kind == "ratio":
        return f"{v:.2f}x"
    if kind == "pts":
        return f"{v:+.2f}"
    return str(v)


COLUMNS = (("trial", "number", "str"), ("configuration", "describe", "str"), ("accuracy %", "accuracy", "pct"),
           ("drop pts", "accuracy_drop", "pts"), ("cycles", "cycles", "int"), ("vs dense", "cycle_ratio", "ratio"),
           ("flash B", "flash_bytes", "int"), ("RAM B", "ram_bytes", "int"), ("in budget", "feasible", "str"))


def table_rows(report: dict, numbers) -> list[list[str]]:
    by = {r["number"]: r for r in report["trials"]}
    out = []
    for n in numbers:
        r = by[n]
        cells = []
        for _, key, kind in COLUMNS:
            v = r.get(key)
            if key == "feasible":
                v = "yes" if v else "no"
            cells.append(_fmt(v, kind) if kind != "str" else str(v))
        out.append(cells)
    return out


def markdown(report: dict) -> str:
    lines = [f"# tinyopt search — {report['board']}", "",
             f"Cycles measured on: **{report['measured_on']}**.", f"Quality: {report['quality_metric']}.", ""]
    b = report.get("baseline")
    if b:
        lines += [f"Dense int8 baseline (trial {b['trial']}, {b['backend']}): accuracy {b['accuracy']:.2f} %, "
                  f"{b['cycles']:,.0f} cycles, flash {b['flash_bytes']:,} B, RAM {b['ram_bytes']:,} B.", ""]
    budget = report["budget"]
    lines += ["Budget: " + ", ".join(f"{k} {v}" for k, v in budget.items() if v is not None) + ".", ""]
    c = report.get("chosen")
    if c:
        lines += [f"**Chosen: trial {c['number']}** ({c['describe']}): accuracy {c['accuracy']:.2f} % "
                  f"(drop {c['accuracy_drop']:.2f} pts vs dense), {c['cycles']:,.0f} cycles "
                  f"({c['cycle_ratio']:.2f}x dense), flash {c['flash_bytes']:,} B, RAM {c['ram_bytes']:,} B — "
                  f"exported to `chosen/`.", ""]
    else:
        closest = ", ".join(f"trial {n}" for n in report.get("closest", []))
        lines += [f"**No trial meets the budget.** Closest: {closest}", ""]
    header = "| " + " | ".join(c[0] for c in COLUMNS) + " |"
    sep = "|" + "---|" * len(COLUMNS)
    lines += [f"## Pareto front ({len(report['pareto'])} trials; cycles on {report['measured_on']})", "", header, sep]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(report, report["pareto"])]
    lines += ["", "![Pareto front](pareto.png)", "", "## All trials", "", header, sep]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(report, [t["number"] for t in report["trials"]])]
    errors = [t for t in report["trials"] if t.get("error")]
    if errors:
        lines += ["", "Failed trials:"] + [f"- trial {t['number']}: {t['error']}" for t in errors]
    return "\n".join(lines) + "\n"


def _staircase(rows: list[dict], key: str) -> list[dict]:
    """The trials no other beats on both accuracy and KEY (this panel's own 2-D front), by KEY."""
    best, front = float("-inf"), []
    for r in sorted(rows, key=lambda r: (r[key], -r["accuracy"])):
        if r["accuracy"] > best:
            front.append(r)
            best = r["accuracy"]
    return front


def write_plot(report: dict, out: Path) -> Path | None:
    """accuracy against cycles, flash and RAM, one panel each: every trial (green within the
    budget), the 4-objective Pareto front outlined, each panel's own accuracy-vs-cost front as a
    staircase, the dense baseline as a square and the chosen trial as a star."""
    rows = [r for r in report["trials"] if r.get("cycles") is not None and r.get("accuracy") is not None]
    if not rows:
        return None
    from tinyopt.report_plots import plt_module, save_figure
    plt = plt_module()
    front = set(report["pareto"])
    chosen = (report.get("chosen") or {}).get("number")
    base = (report.get("baseline") or {}).get("trial")
    where, emulated = report["measure_board"], report["measured_emulated"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, key, label in zip(axes, ("cycles", "flash_bytes", "ram_bytes"),
                              ("cycles per inference", "flash (bytes)", "RAM (bytes)")):
        for r in rows:
            color = "tab:green" if r.get("feasible") else "tab:gray"
            ax.scatter(r[key], r["accuracy"], c=color, s=60 if r["number"] in front else 25,
                       marker="s" if r["number"] == base else "o",
                       edgecolors="black" if r["number"] in front else "none", zorder=3)
            ax.annotate(str(r["number"]), (r[key], r["accuracy"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        stairs = _staircase(rows, key)
        ax.step([r[key] for r in stairs], [r["accuracy"] for r in stairs], where="post", color="black", lw=0.8,
                alpha=0.6, label="best accuracy for the cost")
        if chosen is not None:
            c = next(r for r in rows if r["number"] == chosen)
            ax.scatter(c[key], c["accuracy"], marker="*", s=250, c="tab:red", zorder=4, label="chosen")
        b = report.get("baseline")
        if b:
            ax.axhline(b["accuracy"] - report["budget"]["max_accuracy_drop"], color="tab:red", lw=0.8, ls=":",
                       label="accuracy budget")
        ax.legend(loc="lower right", fontsize=7)
        ax.set_xlabel(label + (f"\n[{where}{', emulated' if emulated else ''}]" if key == "cycles" else ""))
        ax.set_ylabel("accuracy %")
        ax.grid(alpha=0.3)
    fig.suptitle(f"tinyopt search on {report['board']} ({len(rows)} trials): green = within budget, outlined = "
                 f"Pareto front of accuracy, cycles, flash and RAM, square = dense int8; cycles measured on "
                 f"{where}{' (emulated)' if emulated else ''}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out / "pareto.png")


def write(report: dict, out: Path) -> None:
    plot = write_plot(report, out)
    if plot:
        report["plot"] = plot.name
    write_json(report, out)
    (out / "report.md").write_text(markdown(report))
