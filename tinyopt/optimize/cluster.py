"""Weight clustering with tfmot: each weighted layer shares K centroids (k-means++ init),
keeping zeros at zero when the model was pruned first."""
from __future__ import annotations

from tinyopt.keras_io import keras


def wrap_for_clustering(model, clusters: int, preserve_sparsity: bool):
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry
    ck = tfmot.clustering.keras
    clustered, dense = [], []

    def clone(layer):
        if (layer.weights and ClusteringRegistry.supports(layer)
                and _values_to_cluster(layer, preserve_sparsity) > clusters):
            clustered.append(layer.name)
            return ck.cluster_weights(layer, number_of_clusters=clusters,
                                      cluster_centroids_init=ck.CentroidInitialization.KMEANS_PLUS_PLUS,
                                      preserve_sparsity=preserve_sparsity)
        if layer.weights:
            dense.append(layer.name)
        return layer  # reused as is, trained weights included

    # The wrappers hold the original (trained) layer objects, so no weights need copying.
    wrapped = keras().models.clone_model(model, clone_function=clone)
    return wrapped, clustered, dense


def _values_to_cluster(layer, preserve_sparsity: bool) -> int:
    """Distinct values among the kernel weights k-means would start from (the nonzero ones
    when sparsity is kept). A kernel with no more of them than K centroids is already
    clustered, and tfmot's k-means++ initialisation fails on it (fewer points than K)."""
    import numpy as np
    fewest = None
    for w in layer.weights:
        if "kernel" not in w.name:
            continue
        v = np.asarray(w.numpy()).ravel()
        if preserve_sparsity:
            v = v[v != 0]
        n = np.unique(v).size
        fewest = n if fewest is None else min(fewest, n)
    return fewest if fewest is not None else 0


def strip(model):
    import tensorflow_model_optimization as tfmot
    return tfmot.clustering.keras.strip_clustering(model)
