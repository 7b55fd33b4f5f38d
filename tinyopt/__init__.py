"""tinyopt: a trained Keras model to a measured microcontroller deployment."""
import os

# tfmot only works with Keras 2 (tf_keras). TensorFlow picks the Keras flavour when it is
# first imported, so this must be set before anything imports tensorflow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ log lines (start-up chatter, and ERROR-level notices such as tf.data's
# "NodeDef mentions attribute ..." while the demo trains) are noise for a command-line user;
# real failures reach us as Python exceptions.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
