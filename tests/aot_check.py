"""Compile a model with the aot backend on the host and compare it byte for byte with
the TFLM Python runtime (the project's int8 reference)."""
from __future__ import annotations

from pathlib import Path

import aot_host as host
import numpy as np

from tinyopt.codegen.aot import model_library
from tinyopt.tflm_runtime import Runner


def check_bit_exact(model_bytes: bytes, workdir: Path, samples: int = 100, sanitize: bool = False, seed: int = 0,
                    options: dict | None = None):
    """Builds once, runs `samples` random int8 inputs; returns (library, runner)."""
    lib = model_library(model_bytes, options=options)
    workdir = Path(workdir)
    folder = host.write_library(lib, workdir / "lib")
    binary = host.build(folder, workdir / ("model_san" if sanitize else "model"),
                        opt="-O1" if sanitize else "-O2", sanitize=sanitize)
    runner = Runner(model_bytes)
    rng = np.random.default_rng(seed)
    xs = rng.integers(-128, 128, (samples,) + runner.input_shape, dtype=np.int8)
    expected = np.stack([runner.run(x).reshape(-1) for x in xs])
    got = host.run(binary, xs, expected.shape[1], workdir)
    bad = np.argwhere(expected != got)
    assert bad.size == 0, (f"{len(bad)} of {expected.size} outputs differ; first at sample {bad[0][0]} index "
                           f"{bad[0][1]}: expected {expected[bad[0][0], bad[0][1]]}, got {got[bad[0][0], bad[0][1]]}")
    return lib, runner
