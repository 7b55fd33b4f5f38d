"""TensorFlow and its converter write C++ log lines straight to file descriptor 2, past
Python's logging. Users should see tinyopt's output, so those lines are captured and
shown only when something fails."""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile


@contextlib.contextmanager
def captured_stderr():
    """Redirect fd 2 into a buffer; yields a list that holds the captured text afterwards."""
    sys.stderr.flush()
    saved = os.dup(2)
    box: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield box
        finally:
            try:
                ctypes.CDLL(None).fflush(None)  # C stdio may still hold buffered text
            except OSError:
                pass
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            box.append(tmp.read().decode("utf-8", "replace"))


_tf = None


def import_tensorflow():
    """Import TensorFlow once, without its start-up log lines (CPU-only: no CUDA probing)."""
    global _tf
    if _tf is None:
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
        with captured_stderr():
            import tensorflow as tf
            tf.get_logger().setLevel("ERROR")
            # Enumerate devices now, inside the capture: the CUDA probe logs an error on
            # machines without a GPU, and tinyopt runs on the CPU anyway.
            tf.config.set_visible_devices([], "GPU")
            import tf_keras  # noqa: F401
        _tf = tf
    return _tf
