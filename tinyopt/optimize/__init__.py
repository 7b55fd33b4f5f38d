"""The optimize stage: remove whole channels (channels.py), prune and/or cluster a Keras model
with tfmot, optionally with structure-preserving QAT, fine-tuning on labels or by distillation
from the original."""
from __future__ import annotations

from dataclasses import dataclass, field

from tinyopt.errors import TinyoptError
from tinyopt.keras_io import Dataset, fresh_copy
from tinyopt.optimize import channels as channel_pruning
from tinyopt.optimize import cluster, distill, prune, qat, training


@dataclass(frozen=True)
class OptimizeOptions:
    prune: float | None = None          # target sparsity, 0 < s < 1
    prune_pattern: str | None = None    # "M:N" structured sparsity, e.g. "2:4"
    cluster: int | None = None          # number of clusters per layer
    qat: bool = False                   # structure-preserving quantization-aware training
    channels: float | tuple | None = None  # fraction of channels to remove (or one per stage)
    channels_norm: str = "l1"           # channel ranking: l1 or l2 norm of each filter
    epochs: int = 8
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0

    def validate(self) -> None:
        if self.prune is not None and not 0.0 < self.prune < 1.0:
            raise TinyoptError(f"--prune {self.prune} is outside (0, 1)",
                               "give the target fraction of zero weights, e.g. --prune 0.75")
        prune.parse_pattern(self.prune_pattern)
        if self.prune is not None and self.prune_pattern:
            raise TinyoptError("--prune and --prune-pattern both given", "choose one of them")
        if self.cluster is not None and not 2 <= self.cluster <= 256:
            raise TinyoptError(f"--cluster {self.cluster} is outside 2..256",
                               "int8 weights have at most 256 values; try --cluster 16")
        if self.epochs < 1:
            raise TinyoptError(f"--epochs {self.epochs} must be at least 1", "try --epochs 8")
        channel_pruning.parse_channels(self.channels)
        if self.channels_norm not in ("l1", "l2"):
            raise TinyoptError(f"--channels-norm {self.channels_norm!r} is not l1 or l2", "use l1 or l2")
        if self.qat and not (self.wants_pruning or self.cluster or self.wants_channels):
            raise TinyoptError("--qat preserves pruning or clustering, and neither was asked for",
                               "add --prune S or --cluster K, or drop --qat")

    @property
    def wants_pruning(self) -> bool:
        return self.prune is not None or bool(self.prune_pattern)

    @property
    def wants_channels(self) -> bool:
        c = channel_pruning.parse_channels(self.channels)
        return c is not None and (c > 0 if isinstance(c, float) else any(v > 0 for v in c))

    @property
    def any(self) -> bool:
        return self.wants_pruning or self.cluster is not None or self.wants_channels


@dataclass(frozen=True)
class OptimizedModel:
    model: object                       # the stripped tf_keras model, ready to convert
    pruned_layers: tuple[str, ...] = ()
    clustered_layers: tuple[str, ...] = ()
    left_dense: tuple[str, ...] = ()    # weighted layers tfmot could not wrap
    qat_scheme: str | None = None
    distilled: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    channels: dict | None = None        # channel pruning: groups, widths before/after

    def summary(self) -> dict:
        return {"pruned_layers": list(self.pruned_layers), "clustered_layers": list(self.clustered_layers),
                "left_dense": list(self.left_dense), "qat_scheme": self.qat_scheme,
                "distilled_from_original": self.distilled, "notes": list(self.notes),
                "channels": self.channels}


def optimize_model(original, data: Dataset, options: OptimizeOptions, progress=None) -> OptimizedModel:
    """Prune, then cluster, then QAT, each followed by fine-tuning; ORIGINAL is left untouched."""
    from tinyopt.keras_io import keras
    from tinyopt.progress import keras_progress_callback
    options.validate()
    keras().utils.set_random_seed(options.seed)
    targets, loss, distilled = None, None, False
    if not data.labelled:
        targets, loss = distill.teacher_targets(original, data.x_train)
        distilled = True
    steps = training.steps_per_epoch(len(data.x_train), options.batch_size)

    def tune(model, what, extra_callbacks=(), lr_scale=1.0):
        bar = [keras_progress_callback(progress, what, options.epochs, steps)] if progress else []
        training.fine_tune(model, data, targets, epochs=options.epochs, batch_size=options.batch_size,
                           learning_rate=options.learning_rate * lr_scale,
                           callbacks=list(extra_callbacks) + bar, loss=loss)

    def settle(model):
        """The plain model after a tuning step: BatchNorm statistics re-estimated."""
        training.recalibrate_batch_norm(model, data.x_train)
        return model

    model = fresh_copy(original)
    pruned, clustered, dense, notes = [], [], set(), []
    channel_summary = None
    if options.wants_channels:
        model, channel_summary = channel_pruning.prune_iteratively(
            model, channel_pruning.parse_channels(options.channels), criterion=options.channels_norm,
            steps=channel_pruning.default_steps(options.channels),
            fine_tune=lambda m, what: (tune(m, what), settle(m)))
    if options.wants_pruning:
        pattern = prune.parse_pattern(options.prune_pattern)
        # Reach the target one epoch before the end, so the last epoch trains at full sparsity.
        end_step = steps * max(1, options.epochs - 1)
        model, pruned, left = prune.wrap_for_pruning(model, options.prune, pattern, end_step)
        dense.update(left)
        if not pruned:
            raise TinyoptError("no layer of this model can be pruned by tfmot",
                               "pruning applies to Conv2D, DepthwiseConv2D and Dense layers")
        tune(model, f"pruning to {options.prune_pattern or options.prune}", prune.callbacks())
        model = settle(prune.strip(model))
    if options.cluster:
        model, clustered, left = cluster.wrap_for_clustering(model, options.cluster, bool(pruned))
        dense.update(left)
        tune(model, f"clustering to {options.cluster} centroids", lr_scale=0.5)
        model = settle(cluster.strip(model))
    scheme = None
    if options.qat:
        scheme = qat.scheme_name(bool(pruned), bool(clustered))
        model = qat.wrap_for_qat(model, bool(pruned), bool(clustered))
        tune(model, f"quantization-aware training ({scheme})", lr_scale=0.3)
        model = qat.strip(model, bool(clustered))
    if dense:
        notes.append(f"left dense (tfmot cannot wrap them): {', '.join(sorted(dense))}")
    return OptimizedModel(model, tuple(pruned), tuple(clustered), tuple(sorted(dense)), scheme, distilled,
                          tuple(notes), channel_summary)
