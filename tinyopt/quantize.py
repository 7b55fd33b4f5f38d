"""Full-integer post-training conversion with the TFLiteConverter."""
from __future__ import annotations

import numpy as np

from tinyopt.errors import TinyoptError
from tinyopt.keras_io import input_shape
from tinyopt.quiet import captured_stderr, import_tensorflow


def _batch1_function(model):
    """A concrete function with batch size 1, so the .tflite has static shapes everywhere
    (a dynamic batch makes Flatten emit SHAPE/STRIDED_SLICE chains that MCUs do not want)."""
    tf = import_tensorflow()
    spec = tf.TensorSpec((1,) + input_shape(model), tf.float32, name="input")

    @tf.function(input_signature=[spec])
    def serve(x):
        return model(x, training=False)
    return serve.get_concrete_function()


def representative_samples(x: np.ndarray | None, model, count: int, allow_random: bool, seed: int):
    """The calibration inputs: COUNT samples of x, or random inputs when explicitly allowed."""
    shape = input_shape(model)
    if x is not None:
        rng = np.random.default_rng(seed)
        take = rng.permutation(len(x))[:count] if len(x) > count else np.arange(len(x))
        return np.asarray(x[take], np.float32).reshape((-1,) + shape)
    if not allow_random:
        raise TinyoptError("int8 conversion needs calibration data to choose activation ranges",
                           "pass --data DATA.npz, or --calibrate-random to calibrate on random inputs "
                           "(accuracy unknown)")
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, size=(count,) + shape).astype(np.float32)


def check_convertible(model) -> None:
    """Refuse what the converter cannot make full-integer, before it crashes on it: a
    recurrent layer that is not unrolled becomes a WHILE loop (and segfaults TF 2.21's
    int8 quantizer)."""
    from tinyopt.keras_io import keras
    rnn = keras().layers.RNN
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # Bidirectional / wrappers
        if isinstance(inner, rnn) and not getattr(inner, "unroll", False):
            raise TinyoptError(f"layer {layer.name!r} ({type(inner).__name__}) is a recurrent layer that is not "
                               "unrolled; it would become a WHILE loop that int8 TFLM cannot run",
                               f"rebuild it with {type(inner).__name__}(..., unroll=True) and a fixed sequence length")


def to_int8_tflite(model, samples: np.ndarray, int16x8: bool = False) -> bytes:
    """Convert a tf_keras model to a full-integer .tflite with int8 (or int16) input/output."""
    tf = import_tensorflow()
    check_convertible(model)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([_batch1_function(model)], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative():
        for s in samples:
            yield [s[None, ...]]
    converter.representative_dataset = representative
    if int16x8:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_input_type = tf.int16
        converter.inference_output_type = tf.int16
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        with captured_stderr():  # the MLIR converter logs to fd 2
            return bytes(converter.convert())
    except Exception as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise TinyoptError(f"the TFLiteConverter could not make a full-integer model: {first}",
                           "a layer has no int8 kernel; replace it (e.g. with a builtin activation) "
                           "or try --int16x8") from None
