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
        if layer.weights and ClusteringRegistry.supports(layer):
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


def strip(model):
    import tensorflow_model_optimization as tfmot
    return tfmot.clustering.keras.strip_clustering(model)
