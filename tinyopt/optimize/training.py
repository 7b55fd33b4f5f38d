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
