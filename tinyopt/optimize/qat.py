"""Quantization-aware training that preserves what pruning and clustering made:
PQAT (sparsity), CQAT (clusters) and PCQAT (both), from tfmot.experimental.combine."""
from __future__ import annotations

import logging


def scheme_name(pruned: bool, clustered: bool) -> str:
    if clustered:
        return "PCQAT" if pruned else "CQAT"
    return "PQAT" if pruned else "QAT"


def wrap_for_qat(model, pruned: bool, clustered: bool):
    import tensorflow_model_optimization as tfmot
    combine = tfmot.experimental.combine
    qk = tfmot.quantization.keras
    annotated = qk.quantize_annotate_model(model)
    if clustered:
        scheme = combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=pruned)
    elif pruned:
        scheme = combine.Default8BitPrunePreserveQuantizeScheme()
    else:
        scheme = qk.default_8bit.Default8BitQuantizeScheme()
    # PCQAT logs "does not contain zero weights, so apply CQAT instead" on the root logger for
    # every layer without zeros: expected (clustering needs no sparsity), noise between our bars.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        return qk.quantize_apply(annotated, scheme)
    finally:
        root.setLevel(level)


def strip(model, clustered: bool):
    if clustered:
        import tensorflow_model_optimization as tfmot
        return tfmot.experimental.combine.strip_clustering_cqat(model)
    return model
