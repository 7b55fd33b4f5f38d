"""Unlabelled data: the original model is the teacher. Its outputs on x_train become the
targets, so fine-tuning keeps the optimized model close to the original."""
from __future__ import annotations

import numpy as np

from tinyopt.keras_io import as_model_input


def teacher_targets(teacher, x: np.ndarray) -> tuple[np.ndarray, str]:
    """Teacher outputs and the loss that fits them: KL divergence for probability vectors,
    mean squared error for anything else (regression, autoencoders)."""
    y = np.asarray(teacher.predict(as_model_input(x, teacher), batch_size=256, verbose=0), np.float32)
    flat = y.reshape(len(y), -1)
    probabilities = flat.shape[1] > 1 and np.all(flat >= 0) and np.allclose(flat.sum(axis=1), 1, atol=1e-3)
    return y, ("kl_divergence" if probabilities else "mse")
