"""Structured (channel) pruning by Keras surgery: whole filters / units are removed, ranked by
the L1 or L2 norm of their weights, and the model is rebuilt smaller and dense.

Channels are coupled: a Conv2D's filters are the channels of the BatchNorm after it, of a
DepthwiseConv2D that follows, and the input channels of the next Conv2D/Dense; a residual
Add ties the channel spaces of all its inputs together (they are pruned jointly); a
Concatenate lays its inputs' spaces side by side; a Flatten repeats the channel space once
per spatial position (the Dense after it loses one row per position and channel).

`plan(model)` finds the coupled groups (union-find over the layer graph); `prune(model,
ratio)` ranks and removes; `prune_iteratively` alternates prune steps with fine-tuning.
Groups that reach the model's inputs or outputs, or a layer this module does not know,
are left whole (`Plan.fixed` says why)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from tinyopt.errors import TinyoptError
from tinyopt.keras_io import keras

# Layers that act on each channel separately and carry no weights: channel space in = out.
_PASS = {
    "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU_shared", "ThresholdedReLU", "Dropout",
    "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "GlobalMaxPooling3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D",
    "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D", "Identity",
}
_MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
_CONV = {"Conv1D", "Conv2D", "Conv3D"}
_NORM = {"BatchNormalization", "LayerNormalization"}


@dataclass
class Group:
    """A set of channels that must be pruned together: the union of producers' outputs."""
    gid: int
    size: int
    producers: list[str] = field(default_factory=list)
    fixed: str | None = None          # why it cannot be pruned, or None


@dataclass(frozen=True)
class Desc:
    """The channel layout of a tensor's last axis: segments (group id, width) side by side,
    repeated `spatial` times (after a Flatten: position-major, channel-minor)."""
    segments: tuple[tuple[int, int], ...]
    spatial: int = 1

    @property
    def width(self) -> int:
        return sum(n for _, n in self.segments)


@dataclass
class Plan:
    config: dict                      # the functional config the model is rebuilt from
    groups: dict[int, Group]          # root id -> group
    inputs: dict[str, Desc]           # layer -> its (single) input's layout
    outputs: dict[str, Desc]          # layer -> its output's layout
    classes: dict[str, str]           # layer -> class name
    parent: dict[int, int]

    def root(self, gid: int) -> int:
        while self.parent[gid] != gid:
            self.parent[gid] = self.parent[self.parent[gid]]
            gid = self.parent[gid]
        return gid

    def prunable(self) -> list[Group]:
        """Prunable groups in the order their first producer appears in the model."""
        order = {name: i for i, name in enumerate(self.classes)}
        groups = [g for g in self.groups.values() if g.fixed is None and g.producers and g.size > 1]
        return sorted(groups, key=lambda g: min(order[p] for p in g.producers))

    @property
    def fixed(self) -> dict[str, str]:
        return {"+".join(g.producers): g.fixed for g in self.groups.values() if g.fixed and g.producers}


def _functional(model):
    k = keras()
    if isinstance(model, k.Sequential):
        model = k.Model(model.inputs, model.outputs, name=model.name)
    return model


def plan(model) -> Plan:
    """The coupled channel groups of MODEL (Sequential or functional)."""
    model = _functional(model)
    config = copy.deepcopy(model.get_config())
    parent: dict[int, int] = {}
    groups: dict[int, Group] = {}
    outputs: dict[str, Desc] = {}
    inputs: dict[str, Desc] = {}
    classes: dict[str, str] = {}

    def new_group(size, producer=None, fixed=None) -> Desc:
        gid = len(parent)
        parent[gid] = gid
        groups[gid] = Group(gid, int(size), [producer] if producer else [], fixed)
        return Desc(((gid, int(size)),))

    def root(g):
        while parent[g] != g:
            g = parent[g]
        return g

    def fix(desc: Desc, why: str) -> None:
        for g, _ in desc.segments:
            grp = groups[root(g)]
            grp.fixed = grp.fixed or why

    def union(a: int, b: int) -> None:
        ra, rb = root(a), root(b)
        if ra == rb:
            return
        parent[rb] = ra
        ga, gb = groups.pop(ra), groups.pop(rb)
        groups[ra] = Group(ra, ga.size, ga.producers + gb.producers, ga.fixed or gb.fixed)

    for entry in config["layers"]:
        name, cls, cfg = entry["name"], entry["class_name"], entry["config"]
        classes[name] = cls
        layer = model.get_layer(name)
        nodes = entry.get("inbound_nodes") or []
        out_shape = layer.output_shape
        if isinstance(out_shape, list):
            out_shape = out_shape[0] if len(out_shape) == 1 else None
        if cls == "InputLayer":
            outputs[name] = new_group(out_shape[-1], fixed="model input")
            continue
        if len(nodes) != 1 or out_shape is None:
            # A shared layer (called twice) or several outputs: keep everything around it whole.
            for node in nodes:
                for src in node:
                    if src[0] in outputs:
                        fix(outputs[src[0]], f"{name} is shared or has several outputs")
            outputs[name] = new_group(out_shape[-1] if out_shape else 1,
                                      fixed=f"{name} is shared or has several outputs")
            continue
        srcs = [outputs[src[0]] for src in nodes[0]]
        rank = len(out_shape)
        if len(srcs) == 1:
            inputs[name] = srcs[0]
        src = srcs[0]
        if cls in _CONV and cfg.get("groups", 1) == 1 and src.spatial == 1:
            outputs[name] = new_group(cfg["filters"], producer=name)
        elif cls == "Dense":
            outputs[name] = new_group(cfg["units"], producer=name)
        elif cls == "SeparableConv2D" and cfg.get("depth_multiplier", 1) == 1 and src.spatial == 1:
            outputs[name] = new_group(cfg["filters"], producer=name)
        elif cls == "DepthwiseConv2D" and cfg.get("depth_multiplier", 1) == 1 and src.spatial == 1:
            outputs[name] = src
        elif cls in _NORM and _last_axis(cfg.get("axis", -1), rank) and src.spatial == 1:
            outputs[name] = src
        elif cls in _PASS and src.spatial == 1 and len(srcs) == 1 and not layer.weights:
            outputs[name] = src
        elif cls == "Flatten":
            in_shape = layer.input_shape
            positions = int(np.prod([int(d) for d in in_shape[1:-1]])) if len(in_shape) > 2 else 1
            outputs[name] = Desc(src.segments, src.spatial * positions)
        elif cls == "Reshape" and src.spatial == 1 and layer.input_shape[-1] == out_shape[-1]:
            outputs[name] = src                       # the last axis is untouched
        elif cls in _MERGE and len(srcs) > 1 and _same_layout(srcs):
            for other in srcs[1:]:
                for (ga, _), (gb, _) in zip(src.segments, other.segments):
                    union(ga, gb)
            outputs[name] = src
        elif cls == "Concatenate" and _last_axis(cfg.get("axis", -1), rank) and all(s.spatial == 1 for s in srcs):
            outputs[name] = Desc(tuple(seg for s in srcs for seg in s.segments))
        else:
            for s in srcs:
                fix(s, f"feeds {cls} {name}")
            outputs[name] = new_group(out_shape[-1], fixed=f"output of {cls} {name}")
    for out in config["output_layers"]:
        fix(outputs[out[0]], "model output")
    # Re-key groups by root after all unions (fixed reasons already merged).
    final = {}
    for gid in list(parent):
        r = root(gid)
        if r in groups:
            final[r] = groups[r]
    return Plan(config, final, inputs, outputs, classes, parent)


def _last_axis(axis, rank: int) -> bool:
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    return len(axes) == 1 and axes[0] in (-1, rank - 1)


def _same_layout(descs) -> bool:
    first = descs[0]
    return all(d.spatial == first.spatial and [n for _, n in d.segments] == [n for _, n in first.segments]
               for d in descs)


# ---------------------------------------------------------------- ranking

def channel_importance(model, group: Group, criterion: str = "l1") -> np.ndarray:
    """Per-channel score of a group: the norm of each producer's filter for that channel,
    each producer's scores divided by their mean so that all producers weigh alike."""
    total = np.zeros(group.size, np.float64)
    for name in group.producers:
        layer = model.get_layer(name)
        kernel = layer.get_weights()[1 if type(layer).__name__ == "SeparableConv2D" else 0]
        w = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
        score = np.abs(w).sum(axis=0) if criterion == "l1" else np.sqrt((w ** 2).sum(axis=0))
        mean = score.mean()
        total += score / mean if mean > 0 else score
    return total


def choose_keep(model, p: Plan, ratios: dict[int, float], criterion: str = "l1",
                targets: dict[int, int] | None = None, round_to: int = 1) -> dict[int, np.ndarray]:
    """Channel indices to keep per group root: the highest-scoring ones, in their order.
    RATIOS: root -> fraction to remove (of the current size), or TARGETS: root -> channels to keep."""
    keep = {}
    for g in p.prunable():
        if targets is not None and g.gid in targets:
            n = targets[g.gid]
        else:
            n = g.size * (1.0 - ratios.get(g.gid, 0.0))
        n = int(max(1, min(g.size, round(n / round_to) * round_to if round_to > 1 else round(n))))
        if n >= g.size:
            continue
        score = channel_importance(model, g, criterion)
        best = np.argsort(-score, kind="stable")[:n]
        keep[g.gid] = np.sort(best)
    return keep


# ---------------------------------------------------------------- surgery

def _kept(p: Plan, desc: Desc, keep: dict[int, np.ndarray]) -> np.ndarray:
    """Indices along the last axis that survive, for a tensor laid out as DESC."""
    per_position, offset = [], 0
    for g, n in desc.segments:
        r = p.root(g)
        idx = keep.get(r)
        per_position.append((np.arange(n) if idx is None else idx) + offset)
        offset += n
    one = np.concatenate(per_position) if per_position else np.zeros(0, np.int64)
    return np.concatenate([one + s * offset for s in range(desc.spatial)])


def apply(model, p: Plan, keep: dict[int, np.ndarray]):
    """A new, smaller model with the channels in KEEP (root -> indices) and weights sliced."""
    k = keras()
    source = _functional(model)
    config = copy.deepcopy(p.config)
    for entry in config["layers"]:
        name, cls, cfg = entry["name"], entry["class_name"], entry["config"]
        out = p.outputs.get(name)
        if cls in _CONV or cls in ("Dense", "SeparableConv2D"):
            r = p.root(out.segments[0][0])
            if r in keep:
                cfg["units" if cls == "Dense" else "filters"] = int(len(keep[r]))
        elif cls == "Reshape" and name in p.inputs:
            shape = list(cfg["target_shape"])
            shape[-1] = int(len(_kept(p, p.inputs[name], keep)))
            cfg["target_shape"] = shape
    try:
        new = k.Model.from_config(config)
    except Exception as err:
        raise TinyoptError(f"cannot rebuild the channel-pruned model ({type(err).__name__}: "
                           f"{str(err).splitlines()[0][:120] if str(err) else ''})",
                           "channel pruning needs a model built from standard Keras layers") from None
    for layer in source.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        name, cls = layer.name, p.classes[layer.name]
        in_idx = _kept(p, p.inputs[name], keep) if name in p.inputs else None
        out = p.outputs[name]
        out_idx = _kept(p, out, keep) if out.spatial == 1 else None
        if cls in _CONV or cls == "Dense":
            w = weights[0][..., in_idx, :][..., out_idx]
            sliced = [w] + [b[out_idx] for b in weights[1:]]
        elif cls == "SeparableConv2D":
            sliced = [weights[0][..., in_idx, :], weights[1][..., in_idx, :][..., out_idx]] + \
                     [b[out_idx] for b in weights[2:]]
        elif cls == "DepthwiseConv2D":
            sliced = [weights[0][..., in_idx, :]] + [b[in_idx] for b in weights[1:]]
        elif cls in _NORM:
            sliced = [w[in_idx] for w in weights]
        else:
            sliced = weights          # a layer whose channels are all fixed
        new.get_layer(name).set_weights(sliced)
    return new


def stage_ratios(p: Plan, channels) -> dict[int, float]:
    """Fraction to remove per group: one ratio for all, or one per stage (the prunable
    groups split in order into len(channels) consecutive stages)."""
    groups = p.prunable()
    if isinstance(channels, (int, float)):
        return {g.gid: float(channels) for g in groups}
    ratios = list(channels)
    out = {}
    for i, g in enumerate(groups):
        out[g.gid] = float(ratios[min(len(ratios) - 1, i * len(ratios) // max(1, len(groups)))])
    return out


def prune(model, channels, criterion: str = "l1", round_to: int = 1):
    """One-shot: remove CHANNELS (a fraction, or per-stage fractions) of every prunable group.
    Returns (new model, summary dict)."""
    p = plan(model)
    keep = choose_keep(model, p, stage_ratios(p, channels), criterion, round_to=round_to)
    return apply(model, p, keep), _summary(p, keep)


def _summary(p: Plan, keep) -> dict:
    return {"groups": [{"layers": g.producers, "channels": g.size,
                        "kept": int(len(keep[g.gid])) if g.gid in keep else g.size}
                       for g in p.prunable()],
            "left_whole": p.fixed}


def prune_iteratively(model, channels, *, steps: int, criterion: str = "l1", fine_tune=None,
                      round_to: int = 1):
    """STEPS rounds of prune-then-FINE_TUNE(model, description) reaching CHANNELS at the last
    step; each step's target is set against the original widths, so steps compound exactly."""
    p0 = plan(model)
    ratios0 = stage_ratios(p0, channels)
    if not ratios0:
        raise TinyoptError("no channel of this model can be pruned structurally",
                           "channel pruning needs Conv2D/Dense layers whose outputs do not "
                           "reach the model output directly")
    original = {tuple(sorted(g.producers)): (g.size, ratios0[g.gid]) for g in p0.prunable()}
    history = []
    for step in range(1, steps + 1):
        p = plan(model)
        targets = {}
        for g in p.prunable():
            size0, ratio = original.get(tuple(sorted(g.producers)), (g.size, 0.0))
            targets[g.gid] = size0 * (1.0 - ratio * step / steps)
        keep = choose_keep(model, p, {}, criterion, targets=targets, round_to=round_to)
        model = apply(model, p, keep)
        history.append(int(model.count_params()))
        if fine_tune is not None:
            fine_tune(model, f"channel pruning step {step}/{steps}")
    p = plan(model)
    summary = {"criterion": criterion, "steps": steps, "params_per_step": history,
               "groups": [{"layers": sorted(g.producers), "channels": original.get(tuple(sorted(g.producers)),
                                                                                   (g.size,))[0],
                           "kept": g.size} for g in p.prunable()],
               "left_whole": p0.fixed}
    return model, summary


def parse_channels(value) -> float | tuple[float, ...] | None:
    """--channels 0.5, or per stage 0.25,0.5 (each a fraction of channels to remove)."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        vals = (float(value),)
    elif isinstance(value, (tuple, list)):
        vals = tuple(float(v) for v in value)
    else:
        try:
            vals = tuple(float(v) for v in str(value).split(","))
        except ValueError:
            raise TinyoptError(f"--channels {value!r} is not a fraction or a comma-separated list",
                               "e.g. --channels 0.5, or per stage --channels 0.25,0.5") from None
    for v in vals:
        if not 0.0 <= v < 1.0:
            raise TinyoptError(f"--channels {v} is outside [0, 1)",
                               "give the fraction of channels to remove, e.g. --channels 0.5")
    return vals[0] if len(vals) == 1 else vals


def default_steps(channels) -> int:
    """Prune steps: one per quarter of the channels removed (0.5 -> 2 steps)."""
    c = parse_channels(channels)
    top = c if isinstance(c, float) else max(c)
    return max(1, int(np.ceil(top / 0.25 - 1e-9)))
