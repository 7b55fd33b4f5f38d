"""How far a kernel's output may overlap the input it consumes (in-place execution).

A kernel that walks its output in order, pixel by pixel, and only reads input at or after
some position that rises as it goes, can write its output over input bytes it will never
read again. The planner may then place the output `lag` bytes before the input (overlapping
it) instead of beside it: at every moment the bytes written so far end at or before the
first input byte still to be read. `lag` is the smallest start difference for which that
holds, computed here from the step's shapes (it is exact for the kernels' write order, so no
tolerance is added); the planner only uses it when the input dies at that step.

The write order assumed is the one every kernel in firmware_templates/aot/kernels/conv.c.j2
and elementwise.c.j2 follows on every path (portable and DSP): output pixels in raster order
over batch, row, column; a pixel's channels written while its window is still being read;
and two neighbouring pixels computed together, so the writes may run one pixel ahead. Kernels
that read more before they write stay within the same lag: the depthwise row buffers copy
input rows before the row's first write, and the non-zero list kernel copies four pixels'
windows and then writes those four pixels, up to pixel q + 4 when pixel q + 2's bound already
allows that much (the first input byte still to be read never decreases along the raster).
A residual operand folded into a convolution (fusion.py) is read element by element just
before the same element of the output is written: lag 0 against it."""
from __future__ import annotations

import numpy as np

from .planner import ALIGN


def _align_up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def window_lag(B: int, H: int, W: int, C: int, OH: int, OW: int, O: int, SH: int, SW: int, PH: int, PW: int) -> int:
    """Lag of a windowed NHWC kernel (convolution, depthwise convolution): output pixel q of the
    B*OH*OW in raster order writes bytes up to (q + 2) * O (its neighbour may be written with it),
    while the pixels from q on still read input from their window's top-left inside the input."""
    oy, ox = np.meshgrid(np.arange(OH), np.arange(OW), indexing="ij")
    first_read = (np.maximum(0, oy * SH - PH) * W + np.maximum(0, ox * SW - PW)) * C     # [OH, OW]
    first_read = (np.arange(B)[:, None] * (H * W * C) + first_read.reshape(1, -1)).reshape(-1)
    still_read = np.minimum.accumulate(first_read[::-1])[::-1]    # first byte read by pixel q or later
    n = B * OH * OW
    written = np.minimum(np.arange(n) + 2, n) * O
    return _align_up(int((written - still_read).max()))


def flat_lag() -> int:
    """Lag of an elementwise kernel that reads element i of its inputs before it writes element i."""
    return 0


def residual_lag(O: int, pixels: int) -> int:
    """Gap a convolution's output needs below a residual operand it reads element by element
    (fusion.py), when the kernel writes `pixels` output pixels channel by channel together: the
    write of pixel q + pixels - 1's channel c must not reach pixel q's channels above c, still to
    be read. A gap of 0 (the output exactly over the operand) is safe as well: planner.Overlap.exact."""
    return _align_up((pixels - 1) * O)
