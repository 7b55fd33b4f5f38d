"""The generated aot C compiles at every optimisation level a user's build may use, on every
Cortex-M class: the DSP path's inline asm must find its registers with a frame pointer and
the loops' own pointers live (-O0, -Os), not only at the -O2 tinyopt's projects ask for. A
block of eleven register operands did not (\"impossible constraints\" at -O0/-O1/-Os/-O3)."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import mlperf_model

CPUS = {"m0plus": ["-mcpu=cortex-m0plus"],
        "m4": ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
        "m7": ["-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"],
        "m33": ["-mcpu=cortex-m33"],
        "m55": ["-mcpu=cortex-m55"]}
LEVELS = ["-O0", "-Og", "-O1", "-Os", "-O2", "-O3"]


@pytest.fixture(scope="module", params=["kws_ref_model.tflite", "pretrainedResnet_quant.tflite"])
def library(request, tmp_path_factory):
    if not shutil.which("arm-none-eabi-gcc"):
        pytest.skip("arm-none-eabi-gcc not installed (Debian: gcc-arm-none-eabi)")
    from tinyopt.codegen.generate import generate
    out = tmp_path_factory.mktemp("levels") / "p"
    generate(mlperf_model(request.param), "qemu-m4", backend="aot", out=out)
    return out / "lib" / "tinyopt_model"


@pytest.mark.slow
@pytest.mark.parametrize("cpu", list(CPUS))
def test_aot_library_compiles_at_every_optimisation_level(library, cpu, tmp_path):
    failed = []
    for level in LEVELS:
        proc = subprocess.run(["arm-none-eabi-gcc", *CPUS[cpu], "-mthumb", level, "-std=c99", "-Wall", "-Werror",
                               f"-I{library}", "-c", str(library / "tinyopt_model_aot.c"), "-o",
                               str(tmp_path / "m.o")], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            failed.append((level, next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr[-300:])))
    assert not failed, failed
