"""Storage of pruned layers in the aot backend. Two encodings besides dense, each giving exactly the
dense integer sums (the MACs of zero weights are skipped, nothing else changes):
  - bitmap (SparseWeights): per output channel, per filter tap, a bitmap of the non-zero
    input-channel weights (LSB first, padded to whole bytes) followed by the non-zero values in
    order; the kernels walk the bits. The smallest form.
  - non-zero list (NonzeroList): per output channel its non-zero weights as (offset, value) pairs;
    the convolution kernel multiplies each by the inputs at that offset in four pixels' patches.
    Larger than the bitmap, much faster.
thresholds() decides, per layer, which one a mode takes; a layer is encoded only when that is
smaller than dense."""
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


@dataclass
class NonzeroList:
    """Per output channel, its non-zero weights as (offset, value) pairs: the offset into the
    channel's taps x inputs row, so a kernel that holds the inputs of a window in that order (a
    padded patch) reads each input with one load, for several pixels at once."""
    counts: np.ndarray      # uint16, non-zeros per channel
    offsets: np.ndarray     # uint16, in channel order
    values: np.ndarray      # int8
    nbytes: int
    dense_bytes: int


def encode_list(weights: np.ndarray) -> NonzeroList | None:
    """weights: int8 [channels, taps, inputs]; None when a row is too long for 16-bit offsets."""
    w = np.asarray(weights, np.int8)
    rows = w.reshape(w.shape[0], -1)
    if rows.shape[1] > 0xFFFF:
        return None
    nz = rows != 0
    counts = nz.sum(axis=1).astype(np.uint16)
    offsets = np.nonzero(nz)[1].astype(np.uint16)       # row-major: channel by channel
    values = rows[nz].astype(np.int8)
    return NonzeroList(counts, offsets, values, 2 * counts.size + 3 * values.size, w.size)


# How the aot backend stores pruned layers (measured on the emulated Cortex-M0 and M4, a 3x3
# convolution of 32 channels and a 512 -> 64 fully connected layer; scripts/bench_aot.py prints a
# pruned model both ways):
#   - the bitmap walk (SparseWeights) is the smallest form (3/8 byte per weight at 75 % zeros) but
#     slow: at 75 % zeros the convolution took 1.7x (M0) and 3.2x (M4) the dense instructions, the
#     fully connected layer 1.7x / 1.9x; at 90 % it is about even on the M0 and still slower on the
#     M4 (bitmaps of 4 bytes per tap are walked whatever their bits);
#   - the non-zero list (NonzeroList, convolutions with the folded bias) reads each input with one
#     load for four pixels: at 75 % zeros 0.51x (M0) / 0.85x (M4) the dense instructions, at 90 %
#     0.25x / 0.40x, and smaller than dense from 2/3 zeros.
# "auto": as small as possible without being slower than dense: convolutions as non-zero lists from
# LIST_MIN_ZEROS, fully connected layers as bitmaps from FC_BITMAP_MIN_ZEROS (higher on cores with
# the DSP extension, whose dense kernel is faster), dense otherwise. "size": the smallest form
# (the bitmap, or at very high sparsity the list) wherever at least MIN_SPARSITY of the weights are
# zero and it is smaller than dense. "off": dense.
MODES = ("auto", "size", "off")
MIN_SPARSITY = 0.5
LIST_MIN_ZEROS = 0.72
FC_BITMAP_MIN_ZEROS = {False: 0.9, True: 0.93}    # by core: with the DSP extension or not


def thresholds(mode: str, dsp: bool, kernel: str) -> tuple[float | None, float | None]:
    """(zeros from which a bitmap, zeros from which a non-zero list is used; None: never) for a
    layer of KERNEL ("conv": takes the list; "fc") under MODE on a core with or without DSP."""
    if mode == "off":
        return None, None
    if mode == "size":
        return MIN_SPARSITY, MIN_SPARSITY
    return (None, LIST_MIN_ZEROS) if kernel == "conv" else (FC_BITMAP_MIN_ZEROS[dsp], None)


def choose(weights: np.ndarray, need_starts: bool, min_sparsity: float | None = MIN_SPARSITY,
           listed: float | None = None, smallest: bool = False) -> SparseWeights | NonzeroList | None:
    """The storage of a pruned layer (thresholds() gives the fractions of zeros): the non-zero list
    from `listed` zeros, else the bitmap from `min_sparsity` zeros, each only when smaller than
    dense; with `smallest`, whichever of the two is smaller; None: dense."""
    w = np.asarray(weights)
    if w.size == 0:
        return None
    zeros = 1.0 - np.count_nonzero(w) / w.size
    found = []
    if listed is not None and zeros >= listed:
        found.append(encode_list(w))
    if min_sparsity is not None and zeros >= min_sparsity and (smallest or not found or found[0] is None):
        found.append(encode(w, need_starts))
    found = [e for e in found if e is not None and e.nbytes < e.dense_bytes]
    if not found:
        return None
    return min(found, key=lambda e: e.nbytes) if smallest else found[0]
