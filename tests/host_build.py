"""Compile a generated project for the host (Linux/macOS, g++) against a local TFLM source
tree (TINYOPT_TFLM_DIR). This is how tests run the real firmware sources without a board:
the harness and the model library are the same files a board build compiles; only the
board glue (firmware_templates/host/) differs.

The TFLM library is compiled once per tree and flag set into tinyopt's cache
(cache_dir()/tflm-host/<key>/libtflm.a), because it takes minutes on a small machine."""
from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import os
import subprocess
from pathlib import Path

from tinyopt.errors import TinyoptError
from tinyopt.nice import nice
from tinyopt.paths import cache_dir

# Reference kernels with the flags a generated project uses on a board (see tflm.py):
# -DNDEBUG drops TFLITE_DCHECKs from the kernels' inner loops.
TFLM_CXXFLAGS = ["-std=c++17", "-O2", "-DNDEBUG", "-DTF_LITE_STATIC_MEMORY",
                 "-DTF_LITE_DISABLE_X86_NEON", "-fno-rtti", "-fno-exceptions",
                 "-fno-threadsafe-statics", "-ffunction-sections", "-fdata-sections", "-w"]
# Folders of the esp-tflite-micro tree that need ESP-IDF (ESP-NN kernels, esp_timer).
_SKIP_PARTS = ("tensorflow/lite/micro/esp/", "tensorflow/lite/micro/kernels/esp_nn/",
               "/examples/", "/tools/", "/testing/")


def tflm_include_dirs(tree: Path) -> list[Path]:
    return [tree, tree / "third_party/gemmlowp", tree / "third_party/flatbuffers/include",
            tree / "third_party/ruy", tree / "third_party/kissfft"]


def tflm_tree_from_env() -> Path | None:
    value = os.environ.get("TINYOPT_TFLM_DIR")
    return Path(value).resolve() if value else None


def _check_tree(tree: Path) -> None:
    if not (tree / "tensorflow/lite/micro/micro_interpreter.h").is_file():
        raise TinyoptError(f"{tree} is not a TFLM source tree (no tensorflow/lite/micro/micro_interpreter.h)",
                           "point TINYOPT_TFLM_DIR at a tflite-micro or esp-tflite-micro checkout")


def tflm_sources(tree: Path) -> list[Path]:
    out = []
    for top in ("tensorflow", "signal"):
        for path in sorted((tree / top).rglob("*.cc")):
            rel = path.relative_to(tree).as_posix()
            if any(part in "/" + rel for part in _SKIP_PARTS) or rel.endswith("_test.cc"):
                continue
            out.append(path)
    return out


def _key(tree: Path, sources: list[Path], compiler: str) -> str:
    h = hashlib.sha256()
    h.update(str(tree).encode())
    h.update(" ".join(TFLM_CXXFLAGS).encode())
    h.update(subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.encode())
    for path in sources:
        st = path.stat()
        h.update(f"{path.relative_to(tree)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TinyoptError(f"host compile of {what} failed:\n{proc.stderr[-3000:]}",
                           "check the TFLM tree and the compiler (g++ with C++17)")


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def tflm_library(tree: Path, compiler: str = "g++", jobs: int = 2) -> Path:
    """libtflm.a for this tree, compiled on first use and cached (keyed by tree and flags)."""
    tree = Path(tree).resolve()
    _check_tree(tree)
    sources = tflm_sources(tree)
    base = cache_dir() / "tflm-host" / _key(tree, sources, compiler)
    lib = base / "libtflm.a"
    with _locked(base.parent / (base.name + ".lock")):
        if lib.is_file():
            return lib
        objdir = base / "obj"
        objdir.mkdir(parents=True, exist_ok=True)
        incs = [f"-I{d}" for d in tflm_include_dirs(tree)]

        def compile_one(src: Path) -> Path:
            obj = objdir / (src.relative_to(tree).as_posix().replace("/", "__") + ".o")
            if obj.is_file():                 # resumable after an interrupted build
                return obj
            tmp = obj.with_suffix(".o.tmp")
            _run(nice([compiler, *TFLM_CXXFLAGS, *incs, "-c", str(src), "-o", str(tmp)]),
                 src.relative_to(tree).as_posix())
            tmp.rename(obj)
            return obj

        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            objs = list(pool.map(compile_one, sources))
        tmp_lib = base / "libtflm.a.tmp"
        tmp_lib.unlink(missing_ok=True)
        _run(["ar", "rcs", str(tmp_lib), *map(str, objs)], "libtflm.a")
        tmp_lib.rename(lib)
    return lib


def build_host_firmware(project: Path, tree: Path, out: Path, compiler: str = "g++") -> Path:
    """Compile a generated project (board "host") into one executable OUT."""
    project, tree = Path(project), Path(tree).resolve()
    lib = tflm_library(tree, compiler)
    out.parent.mkdir(parents=True, exist_ok=True)
    objdir = out.parent / (out.name + ".obj")
    objdir.mkdir(exist_ok=True)
    incs = [f"-I{d}" for d in tflm_include_dirs(tree)] + [
        f"-I{project / 'src'}", f"-I{project / 'lib/tinyopt_model'}"]
    objs = []
    sources = sorted((project / "src").glob("*.c*")) + sorted((project / "lib/tinyopt_model").rglob("*.c*"))
    for src in sources:
        obj = objdir / (src.name + ".o")
        if src.suffix == ".c":
            cmd = ["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-DNDEBUG",
                   *incs]
        else:
            cmd = [compiler, *TFLM_CXXFLAGS[:-1], "-Wall", *incs]
        _run(nice(cmd + ["-c", str(src), "-o", str(obj)]), src.name)
        objs.append(obj)
    _run(nice([compiler, "-o", str(out), *map(str, objs), str(lib), "-lm", "-Wl,--gc-sections"]),
         "host link")
    return out
