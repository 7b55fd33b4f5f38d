"""Build and run a generated aot library on the host (gcc), for tests and the benchmark:
the library's own sources plus firmware_templates/aot/host_driver.c.j2."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from tinyopt.codegen.library import ModelLibrary, write_files
from tinyopt.codegen.render import render
from tinyopt.errors import TinyoptError
from tinyopt.nice import nice

WARN_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined,pointer-overflow", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer"]


def write_library(lib: ModelLibrary, folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_files(folder, lib.files)
    if "tinyopt_model.h" not in lib.files:   # normally written by the project generator
        (folder / "tinyopt_model.h").write_text(render("common/tinyopt_model.h.j2", backend="aot",
                                                       model_name=lib.summary.get("model_name", "model"),
                                                       layer_count=len(lib.layers)))
    (folder / "host_driver.c").write_text(render("aot/host_driver.c.j2"))
    return folder


def build(folder: Path, out: Path, opt: str = "-O2", sanitize: bool = False, extra: list[str] | None = None,
          compiler: str = "gcc") -> Path:
    folder = Path(folder)
    sources = sorted(str(p) for p in folder.glob("*.c"))
    cmd = [compiler, *WARN_FLAGS, opt, "-DNDEBUG", f"-I{folder}", *(SANITIZE_FLAGS if sanitize else []),
           *(extra or []), *sources, "-o", str(out), "-lm"]
    proc = subprocess.run(nice(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        raise TinyoptError(f"host build of the aot library failed:\n{proc.stderr[-4000:]}",
                           "this is a bug in tinyopt's aot generator; please report it with the model")
    return Path(out)


def run(binary: Path, inputs: np.ndarray, output_bytes: int, workdir: Path, prefix: list[str] | None = None
        ) -> np.ndarray:
    """inputs: [n, ...] int8. Returns [n, output_bytes] int8."""
    workdir = Path(workdir)
    fin, fout = workdir / "inputs.bin", workdir / "outputs.bin"
    np.ascontiguousarray(inputs, dtype=np.int8).tofile(fin)
    proc = subprocess.run([*(prefix or []), str(binary), str(fin), str(fout)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{binary.name} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return np.fromfile(fout, dtype=np.int8).reshape(len(inputs), output_bytes)
