"""Sparse weight encoding for pruned layers: per output channel, per filter tap, a bitmap
of the non-zero input-channel weights (LSB first, padded to whole bytes) followed by the
non-zero values in order. The kernels walk the bitmap and multiply only where a bit is
set, so the MACs of pruned weights are skipped and the integer sum (hence the output)
is exactly the dense one. A layer is encoded only when that is smaller than dense."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SparseWeights:
    bitmap: np.ndarray      # uint8, [channels][taps][tap_bytes]
    values: np.ndarray      # int8, non-zeros in channel/tap/input order
    starts: np.ndarray      # uint32, first value of each channel
    tap_bytes: int
    nbytes: int             # flash taken by bitmap + values (+ starts when needed)
    dense_bytes: int


def encode(weights: np.ndarray, need_starts: bool) -> SparseWeights:
    """weights: int8 [channels, taps, inputs] (FULLY_CONNECTED: taps = 1).
    need_starts: the kernel visits channels out of storage order (convolutions)."""
    w = np.asarray(weights, np.int8)
    channels, taps, inputs = w.shape
    tap_bytes = (inputs + 7) // 8
    nz = w != 0
    padded = np.zeros((channels, taps, tap_bytes * 8), bool)
    padded[:, :, :inputs] = nz
    bitmap = np.packbits(padded, axis=-1, bitorder="little")
    values = w[nz]                                   # C order = channel, tap, input
    counts = nz.reshape(channels, -1).sum(axis=1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.uint32)
    nbytes = bitmap.size + values.size + (starts.size * 4 if need_starts else 0)
    return SparseWeights(bitmap.reshape(-1), values.astype(np.int8), starts, tap_bytes, nbytes, w.size)


# Below this fraction of zeros the bit walk costs more time than the MACs it skips,
# and the flash saved is small: such layers (e.g. unpruned ones) stay dense.
MIN_SPARSITY = 0.5


def choose(weights: np.ndarray, need_starts: bool, enabled: bool = True,
           min_sparsity: float = MIN_SPARSITY) -> SparseWeights | None:
    """The sparse encoding for a pruned layer (at least min_sparsity zeros) when it takes
    fewer bytes than the dense array, else None."""
    w = np.asarray(weights)
    if not enabled or w.size == 0 or np.count_nonzero(w) > (1.0 - min_sparsity) * w.size:
        return None
    enc = encode(w, need_starts)
    return enc if enc.nbytes < enc.dense_bytes else None
