"""Loading Keras models (through tf_keras, which tfmot needs), .npz data sets, and the
bundled demo: a small CNN trained on scikit-learn's 8x8 digits (no download)."""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import tinyopt  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tinyopt.errors import TinyoptError
from tinyopt.paths import cache_dir
from tinyopt.quiet import import_tensorflow

DEMO_NAME = "digits_cnn"
DEMO_VERSION = 1  # bump when the demo architecture or training changes


def keras():
    import_tensorflow()
    import tf_keras
    return tf_keras


# ---------------------------------------------------------------- models

def load_model(path: str | Path):
    """Load a .keras, .h5 or SavedModel directory as a tf_keras functional/sequential model."""
    path = Path(path)
    if not path.exists():
        raise TinyoptError(f"model {path} does not exist", "check the path; omit it to use the bundled demo model")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise TinyoptError(f"{path} is a directory but not a SavedModel (no saved_model.pb)",
                               "pass a .keras or .h5 file, or a directory written by model.save(dir)")
    elif path.suffix == ".keras":
        _check_keras_zip(path)
    elif path.suffix not in (".h5", ".hdf5"):
        raise TinyoptError(f"{path}: unknown model format {path.suffix!r}",
                           "tinyopt reads .keras, .h5 and SavedModel directories")
    try:
        model = keras().models.load_model(str(path), compile=False)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise TinyoptError(f"cannot load {path} as a Keras model: {first}",
                           "check that the file is complete (re-save or re-download it)") from None
    except Exception as err:  # h5py and the SavedModel loader raise many kinds
        raise TinyoptError(f"cannot load {path} as a Keras model ({type(err).__name__})",
                           "check that the file is complete (re-save or re-download it)") from None
    if not isinstance(model, keras().Model):
        raise TinyoptError(f"{path} holds a bare TensorFlow SavedModel, not a Keras model",
                           "save the model with Keras (model.save) so tinyopt can optimize it")
    if not (isinstance(model, keras().Sequential) or getattr(model, "_is_graph_network", False)):
        raise TinyoptError(f"{path} holds a subclassed Keras model ({type(model).__name__})",
                           "tfmot needs a Sequential or functional model; rebuild it with the functional API")
    return model


def _check_keras_zip(path: Path) -> None:
    if not zipfile.is_zipfile(path):
        raise TinyoptError(f"{path} is not a Keras model file (a .keras file is a zip archive)",
                           "re-save the model with model.save('model.keras') or pass the right file")
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("metadata.json")) if "metadata.json" in zf.namelist() else {}
    except (zipfile.BadZipFile, json.JSONDecodeError, KeyError) as err:
        raise TinyoptError(f"{path} is a damaged .keras archive ({type(err).__name__})",
                           "re-save the model") from None
    version = str(meta.get("keras_version", ""))
    if version.startswith("3."):
        raise TinyoptError(
            f"{path} was saved by Keras {version}; tfmot (pruning, clustering) needs Keras 2 (tf_keras)",
            "in Keras 3 run model.export('saved_dir') or save to .h5 (model.save('m.h5')) and pass that")


def save_model(model, path: Path) -> Path:
    # .keras (the native format) keeps no optimizer state worth shipping anyway.
    if str(path).endswith(".keras"):
        model.save(str(path))
    else:
        model.save(str(path), include_optimizer=False)
    return path


def input_shape(model) -> tuple[int, ...]:
    """The model's input shape without the batch dimension."""
    shape = model.inputs[0].shape
    dims = tuple(shape[1:])
    if any(d is None for d in dims):
        raise TinyoptError(f"the model input has unknown dimensions {tuple(shape)}",
                           "give the model a fixed input shape (e.g. keras.Input(shape=(49, 10, 1)))")
    return tuple(int(d) for d in dims)


# ---------------------------------------------------------------- data

@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_val: np.ndarray
    y_val: np.ndarray | None
    source: str

    @property
    def labelled(self) -> bool:
        return self.y_train is not None and self.y_val is not None


def load_dataset(path: str | Path, model=None) -> Dataset:
    """Read OUT.npz with x_train, x_val (required) and y_train, y_val (optional)."""
    path = Path(path)
    if not path.is_file():
        raise TinyoptError(f"data file {path} does not exist",
                           "pass an .npz with x_train, y_train, x_val, y_val (labels optional)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as err:
        raise TinyoptError(f"cannot read {path} as .npz ({type(err).__name__})",
                           "save the data with numpy.savez(path, x_train=..., y_train=..., x_val=..., "
                           "y_val=...)") from None
    missing = [k for k in ("x_train", "x_val") if k not in arrays]
    if missing:
        raise TinyoptError(f"{path} lacks {', '.join(missing)} (has {', '.join(sorted(arrays)) or 'nothing'})",
                           "the .npz needs x_train and x_val; y_train and y_val are optional labels")
    ds = Dataset(arrays["x_train"], arrays.get("y_train"), arrays["x_val"], arrays.get("y_val"), str(path))
    _validate(ds, model)
    return ds


def _validate(ds: Dataset, model) -> None:
    for key in ("x_train", "x_val"):
        x = getattr(ds, key)
        if not np.issubdtype(x.dtype, np.number):
            raise TinyoptError(f"{key} has dtype {x.dtype}, not numbers", "store float32 inputs")
        if x.ndim < 2 or len(x) == 0:
            raise TinyoptError(f"{key} has shape {x.shape}: expected (samples, ...)", "store one sample per row")
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            bad = int(np.sum(~np.isfinite(x)))
            raise TinyoptError(f"{key} contains {bad} NaN or infinite values",
                               "clean the data (e.g. np.nan_to_num) before optimizing")
    for xk, yk in (("x_train", "y_train"), ("x_val", "y_val")):
        y = getattr(ds, yk)
        if y is not None and len(y) != len(getattr(ds, xk)):
            raise TinyoptError(f"{yk} has {len(y)} rows but {xk} has {len(getattr(ds, xk))}",
                               "labels and inputs must have one row per sample")
    if (ds.y_train is None) != (ds.y_val is None):
        raise TinyoptError("only one of y_train / y_val is present", "give both labels or neither")
    if model is not None:
        want = input_shape(model)
        for key in ("x_train", "x_val"):
            got = tuple(getattr(ds, key).shape[1:])
            if got != want and int(np.prod(got)) != int(np.prod(want)):
                raise TinyoptError(f"{key} samples have shape {got} but the model expects {want}",
                                   "reshape the data to the model's input shape")


def as_model_input(x: np.ndarray, model) -> np.ndarray:
    """Float32 inputs in the model's shape (accepts flattened rows of the right size)."""
    return np.asarray(x, np.float32).reshape((len(x),) + input_shape(model))


# ---------------------------------------------------------------- demo

def demo_dir() -> Path:
    return cache_dir() / f"demo-{DEMO_NAME}-v{DEMO_VERSION}"


def demo_dataset(seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images), scaled to [0, 1], split 80/20."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[..., None]
    y = digits.target.astype(np.int64)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return Dataset(x_tr, y_tr, x_va, y_va, "sklearn digits (bundled)")


def build_demo_model():
    k = keras()
    return k.Sequential([
        k.Input(shape=(8, 8, 1), name="image"),
        k.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
        k.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dwconv2"),
        k.layers.Conv2D(32, 1, activation="relu", name="pwconv2"),
        k.layers.MaxPooling2D(2, name="pool"),
        k.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3"),
        k.layers.Flatten(name="flatten"),
        k.layers.Dense(64, activation="relu", name="fc1"),
        k.layers.Dense(10, activation="softmax", name="logits"),
    ], name=DEMO_NAME)


def demo_model_path(progress=None) -> Path:
    """Train the demo model once and cache it (and its data as demo.npz) in the user cache."""
    folder = demo_dir()
    model_path, data_path = folder / "demo.keras", folder / "demo.npz"
    if model_path.is_file() and data_path.is_file():
        return model_path
    tf = import_tensorflow()
    k = keras()
    k.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    ds = demo_dataset()
    model = build_demo_model()
    model.compile(optimizer=k.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    epochs, batch = 30, 32
    callbacks = []
    if progress is not None:
        # The rich display gets a Keras callback that drives it, never the display itself.
        from tinyopt.progress import keras_progress_callback
        steps = -(-len(ds.x_train) // batch)
        callbacks.append(keras_progress_callback(progress, "training the demo model", epochs, steps))
    model.fit(ds.x_train, ds.y_train, epochs=epochs, batch_size=batch, verbose=0,
              validation_data=(ds.x_val, ds.y_val), callbacks=callbacks)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "demo.tmp.keras"
    save_model(model, tmp)
    np.savez(folder / "demo.tmp.npz", x_train=ds.x_train, y_train=ds.y_train, x_val=ds.x_val, y_val=ds.y_val)
    tmp.rename(model_path)
    (folder / "demo.tmp.npz").rename(data_path)
    return model_path


def demo_data_path() -> Path:
    demo_model_path()
    return demo_dir() / "demo.npz"


def fresh_copy(model):
    """An independent copy (new layer objects, same weights). tfmot wrappers reuse the layers
    they wrap, so wrapping a copy keeps the original intact as baseline and teacher."""
    copy = keras().models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
