"""Small models the firmware tests convert themselves (tf_keras -> .tflite), built once
per test session: an int8 CNN with the usual MCU operators, and its float twin."""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

import tinyopt  # noqa: F401  (TF_USE_LEGACY_KERAS=1 before TensorFlow)


def _keras_cnn():
    import tf_keras as keras
    keras.utils.set_random_seed(7)
    inp = keras.Input((12, 12, 2), batch_size=1)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="valid", activation="relu6")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(8, 1, activation="relu")(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(5)(x)
    out = keras.layers.Softmax()(x)
    return keras.Model(inp, out)


def _convert(int8: bool, hybrid: bool = False) -> bytes:
    import tensorflow as tf
    model = _keras_cnn()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if hybrid:   # dynamic-range: int8 weights, float activations
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif int8:
        rng = np.random.default_rng(3)

        def representative():
            for _ in range(32):
                yield [rng.uniform(-1, 1, (1, 12, 12, 2)).astype(np.float32)]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return bytes(converter.convert())


@functools.lru_cache(maxsize=None)
def tiny_cnn(int8: bool = True, hybrid: bool = False) -> Path:
    """Path of the converted tiny CNN (int8, float or hybrid), written once per session."""
    folder = Path(tempfile.mkdtemp(prefix="tinyopt-tiny-cnn-"))
    kind = "hybrid" if hybrid else ("int8" if int8 else "float")
    path = folder / f"tiny_cnn_{kind}.tflite"
    path.write_bytes(_convert(int8, hybrid))
    return path
