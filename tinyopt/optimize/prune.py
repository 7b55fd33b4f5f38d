"""Magnitude pruning with tfmot: a PolynomialDecay schedule to the target sparsity, or a
structured M:N pattern (e.g. 2:4), on every layer tfmot can wrap."""
from __future__ import annotations

from tinyopt.errors import TinyoptError
from tinyopt.keras_io import keras


def parse_pattern(pattern: str | None) -> tuple[int, int] | None:
    if not pattern:
        return None
    try:
        m, n = (int(v) for v in pattern.split(":"))
    except ValueError:
        raise TinyoptError(f"--prune-pattern {pattern!r} is not of the form M:N",
                           "use e.g. --prune-pattern 2:4 (two of every four weights are zero)") from None
    if not 0 < m < n:
        raise TinyoptError(f"--prune-pattern {pattern}: need 0 < M < N", "use e.g. 2:4")
    return m, n


def wrap_for_pruning(model, sparsity: float | None, pattern: tuple[int, int] | None, end_step: int):
    """Return (wrapped model, names of pruned layers, names of weighted layers left dense)."""
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry
    sk = tfmot.sparsity.keras
    if pattern is not None:
        # M:N sparsity is structural; tfmot applies it from begin_step with a constant rate.
        schedule = sk.ConstantSparsity(1 - pattern[0] / pattern[1], begin_step=0, frequency=1)
        kwargs = {"pruning_schedule": schedule, "sparsity_m_by_n": (pattern[1] - pattern[0], pattern[1])}
    else:
        schedule = sk.PolynomialDecay(initial_sparsity=0.0, final_sparsity=float(sparsity),
                                      begin_step=0, end_step=max(1, end_step), frequency=max(1, end_step // 20))
        kwargs = {"pruning_schedule": schedule}
    pruned, dense = [], []

    def clone(layer):
        if layer.weights and PruneRegistry.supports(layer) and _pattern_ok(layer, pattern):
            wrapper = sk.prune_low_magnitude(layer, **kwargs)
            # tfmot "supports" some layers (DepthwiseConv2D) without pruning any of their weights.
            if wrapper.layer.get_prunable_weights():
                pruned.append(layer.name)
                return wrapper
        if layer.weights:
            dense.append(layer.name)
        return layer  # reused as is, trained weights included

    # The wrappers hold the original (trained) layer objects, so no weights need copying.
    wrapped = keras().models.clone_model(model, clone_function=clone)
    return wrapped, pruned, dense


def _pattern_ok(layer, pattern) -> bool:
    # tfmot implements M:N sparsity for Conv2D and Dense kernels only.
    if pattern is None:
        return True
    return isinstance(layer, (keras().layers.Conv2D, keras().layers.Dense)) and \
        not isinstance(layer, keras().layers.DepthwiseConv2D)


def callbacks():
    import tensorflow_model_optimization as tfmot
    return [tfmot.sparsity.keras.UpdatePruningStep()]


def strip(model):
    import tensorflow_model_optimization as tfmot
    return tfmot.sparsity.keras.strip_pruning(model)
