"""The search space: channel pruning (one ratio, or one for the early and one for the late
stages), weight sparsity (none, unstructured magnitude, 2:4), clustering, QAT and backend.
A trial's parameters map to the optimize stage's OptimizeOptions, nothing more."""
from __future__ import annotations

CHANNELS = (0.0, 0.25, 0.375, 0.5, 0.625, 0.75)
SPARSITY = ("none", "unstructured", "2:4")
PRUNE = (0.5, 0.6, 0.7, 0.8, 0.9)
CLUSTERS = (0, 8, 16, 32)


def baseline_params(backend: str) -> dict:
    """The dense model, int8: every technique off. Trial 0 of every study (per backend)."""
    return {"backend": backend, "channels_mode": "global", "channels": 0.0, "sparsity": "none",
            "cluster": 0, "qat": False}


def starting_points(backends) -> list[dict]:
    """A few informed first trials (before the sampler has data): channel pruning is what
    buys latency on both backends, so the study starts with a spread of it."""
    b = backends[0]
    return [
        {"backend": b, "channels_mode": "global", "channels": 0.5, "sparsity": "none", "cluster": 0, "qat": False},
        {"backend": b, "channels_mode": "per_stage", "channels_early": 0.25, "channels_late": 0.625,
         "sparsity": "none", "cluster": 0, "qat": False},
        {"backend": b, "channels_mode": "global", "channels": 0.375, "sparsity": "2:4", "cluster": 0, "qat": False},
    ]


def suggest(trial, backends) -> dict:
    """Ask TRIAL for one point of the space (define-by-run: conditional parameters)."""
    p = {"backend": trial.suggest_categorical("backend", list(backends))}
    p["channels_mode"] = trial.suggest_categorical("channels_mode", ["global", "per_stage"])
    if p["channels_mode"] == "global":
        p["channels"] = trial.suggest_categorical("channels", list(CHANNELS))
    else:
        p["channels_early"] = trial.suggest_categorical("channels_early", list(CHANNELS))
        p["channels_late"] = trial.suggest_categorical("channels_late", list(CHANNELS))
    p["sparsity"] = trial.suggest_categorical("sparsity", list(SPARSITY))
    if p["sparsity"] == "unstructured":
        p["prune"] = trial.suggest_categorical("prune", list(PRUNE))
    p["cluster"] = trial.suggest_categorical("cluster", list(CLUSTERS))
    p["qat"] = trial.suggest_categorical("qat", [False, True])
    return p


def random_params(backends, seed: int) -> dict:
    """A point drawn uniformly from the space (for when the sampler only repeats itself)."""
    import random
    r = random.Random(seed)
    p = {"backend": r.choice(list(backends)), "channels_mode": r.choice(["global", "per_stage"])}
    if p["channels_mode"] == "global":
        p["channels"] = r.choice(CHANNELS)
    else:
        p["channels_early"], p["channels_late"] = r.choice(CHANNELS), r.choice(CHANNELS)
    p["sparsity"] = r.choice(SPARSITY)
    if p["sparsity"] == "unstructured":
        p["prune"] = r.choice(PRUNE)
    p["cluster"] = r.choice(CLUSTERS)
    p["qat"] = r.choice([False, True])
    return p


def channels_of(params: dict):
    if params.get("channels_mode") == "per_stage":
        return (float(params["channels_early"]), float(params["channels_late"]))
    return float(params.get("channels", 0.0))


def to_optimize_options(params: dict, *, epochs: int, seed: int, batch_size: int = 32,
                        learning_rate: float = 1e-3):
    """OptimizeOptions for PARAMS, or None for the dense model."""
    from tinyopt.optimize import OptimizeOptions
    opts = OptimizeOptions(
        channels=channels_of(params),
        prune=float(params["prune"]) if params.get("sparsity") == "unstructured" else None,
        prune_pattern="2:4" if params.get("sparsity") == "2:4" else None,
        cluster=int(params["cluster"]) or None,
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    if not opts.any:
        return None
    if params.get("qat"):
        from dataclasses import replace
        opts = replace(opts, qat=True)
    return opts


def describe(params: dict) -> str:
    """Short text for tables: e.g. 'ch 0.5 · 2:4 · k16 · QAT · aot'."""
    parts = []
    c = channels_of(params)
    if isinstance(c, tuple):
        if any(c):
            parts.append(f"ch {c[0]:g}/{c[1]:g}")
    elif c:
        parts.append(f"ch {c:g}")
    if params.get("sparsity") == "unstructured":
        parts.append(f"sparse {params['prune']:g}")
    elif params.get("sparsity") == "2:4":
        parts.append("2:4")
    if params.get("cluster"):
        parts.append(f"k{params['cluster']}")
    if params.get("qat") and (parts or params.get("cluster")):
        parts.append("QAT")
    parts.append(str(params.get("backend")))
    return " · ".join(parts) if len(parts) > 1 else f"dense · {params.get('backend')}"
