"""Fine-tuning after wrapping a model for pruning / clustering / QAT: with labels when the
data has them, otherwise by distilling from the original model (see distill.py)."""
from __future__ import annotations

import math

import numpy as np

from tinyopt.keras_io import Dataset, as_model_input, keras


def _loss_for(y: np.ndarray, output_shape) -> str:
    """Pick a loss from the labels' form, since loaded models carry no training config."""
    out_units = int(np.prod([d for d in output_shape[1:] if d is not None]))
    y = np.asarray(y)
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
        if np.issubdtype(y.dtype, np.integer) and out_units > 1:
            return "sparse_categorical_crossentropy"
    if y.ndim == 2 and y.shape[1] == out_units and out_units > 1 and np.all((y == 0) | (y == 1)) \
            and np.allclose(y.sum(axis=1), 1):
        return "categorical_crossentropy"
    return "mse"


def fine_tune(model, data: Dataset, targets: np.ndarray | None, *, epochs: int, batch_size: int,
              learning_rate: float, callbacks: list, loss: str | None = None) -> None:
    """Train MODEL in place on x_train against TARGETS (labels or teacher outputs)."""
    k = keras()
    x = as_model_input(data.x_train, model)
    y = targets if targets is not None else data.y_train
    model.compile(optimizer=k.optimizers.Adam(learning_rate), loss=loss or _loss_for(y, model.output_shape))
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True, callbacks=callbacks)


def steps_per_epoch(samples: int, batch_size: int) -> int:
    return max(1, math.ceil(samples / batch_size))


RECALIBRATION_SAMPLES = 2048
RECALIBRATION_BATCH = 256


def recalibrate_batch_norm(model, x_train: np.ndarray) -> int:
    """Re-estimate every BatchNormalization layer's moving mean and variance on the training
    inputs; returns how many layers it touched. Fine-tuning moves the batch statistics (most of
    all when channels were removed upstream), but the moving averages follow with momentum 0.99,
    so after a few hundred steps the model in inference mode still normalises with the old
    network's statistics (ResNet-8 at 50 % channels: top-1 agreement with the teacher 77 % in
    training mode, 0 % in inference mode, 77 % after this). For a plain Keras model only (not
    wrapped by tfmot): forward passes in training mode, dropout off, momentum set so that the
    moving values become the mean over the batches."""
    layers = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    if not layers:
        return 0
    dropouts = [layer for layer in model.layers if isinstance(getattr(layer, "rate", None), float)]
    momenta, rates = [layer.momentum for layer in layers], [layer.rate for layer in dropouts]
    x = as_model_input(x_train[:RECALIBRATION_SAMPLES], model)
    try:
        for layer in dropouts:
            layer.rate = 0.0
        for k, start in enumerate(range(0, len(x), RECALIBRATION_BATCH)):
            for layer in layers:
                layer.momentum = k / (k + 1.0)       # k = 0: the first batch's statistics
            model(x[start:start + RECALIBRATION_BATCH], training=True)
    finally:
        for layer, m in zip(layers, momenta):
            layer.momentum = m
        for layer, r in zip(dropouts, rates):
            layer.rate = r
    return len(layers)
