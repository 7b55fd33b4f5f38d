"""The board-independent firmware parts compile for the boards' CPUs with arm-none-eabi-gcc
(-Werror, C99 pedantic for the harness; the TFLM model library against TINYOPT_TFLM_DIR).
The boards' own toolchains come from the PlatformIO registry and are not available here."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from host_build import tflm_include_dirs, tflm_tree_from_env
from tiny_models import tiny_cnn

from tinyopt.codegen.generate import generate

CPUS = {"pico": ["-mcpu=cortex-m0plus"],
        "nano33ble": ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
        "teensy41": ["-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"],
        "nucleo_l4r5zi": ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]}
# What each board's core defines that the glue looks at (the builders' own flags are in
# scripts/conformance_arduino.py, which compiles against the real cores when they are there).
CORE_DEFINES = {"pico": ["-DARDUINO_ARCH_MBED"], "nano33ble": ["-DARDUINO_ARCH_MBED"],
                "teensy41": ["-D__IMXRT1062__"], "nucleo_l4r5zi": ["-DARDUINO_ARCH_STM32"]}
GCC = shutil.which("arm-none-eabi-gcc")
STUBS = Path(__file__).parent / "stubs"
pytestmark = pytest.mark.skipif(GCC is None, reason="arm-none-eabi-gcc not installed")


def _compile(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("board", sorted(CPUS))
def test_harness_compiles_for_the_cpu(board, tmp_path):
    project = generate(tiny_cnn(), board, out=tmp_path / "fw")
    src = project.path / "src"
    _compile([GCC, *CPUS[board], "-mthumb", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror",
              "-O2", f"-I{src}", f"-I{project.path / 'lib/tinyopt_model'}",
              "-c", str(src / "tinyopt_harness.c"), "-o", str(tmp_path / "harness.o")])


@pytest.mark.parametrize("board", sorted(CPUS))
def test_arduino_glue_compiles_for_the_cpu(board, tmp_path):
    """Against declarations of the Arduino API only (tests/stubs/Arduino.h, which, like
    ArduinoCore-mbed, defines no F_CPU): the glue's own code (DWT / RP2040 timer registers,
    64-bit extension, DebugLog) type-checks per CPU."""
    project = generate(tiny_cnn(), board, out=tmp_path / "fw")
    src = project.path / "src"
    for name in ("platform_arduino.cpp", "main.cpp"):
        _compile([GCC.replace("gcc", "g++"), *CPUS[board], *CORE_DEFINES[board], "-mthumb", "-std=gnu++17", "-Wall",
                  "-Wextra", "-Werror", "-O2", f"-I{STUBS}", f"-I{src}", "-c", str(src / name),
                  "-o", str(tmp_path / (name + ".o"))])


@pytest.mark.slow
def test_tflm_model_library_compiles_for_cortex_m4(tmp_path):
    tree = tflm_tree_from_env()
    if tree is None:
        pytest.skip("TINYOPT_TFLM_DIR not set: no TFLM headers to compile the model library against")
    project = generate(tiny_cnn(), "nano33ble", out=tmp_path / "fw")
    lib = project.path / "lib/tinyopt_model"
    for source in sorted(lib.glob("*.cc")):
        _compile(["nice", "-n", "10", GCC.replace("gcc", "g++"), *CPUS["nano33ble"], "-mthumb",
                  "-std=gnu++17", "-O2", "-DNDEBUG", "-DTF_LITE_STATIC_MEMORY", "-fno-rtti",
                  "-fno-exceptions", "-Wall", "-Werror", "-Wno-unused-parameter",
                  *[f"-I{d}" for d in tflm_include_dirs(tree)], f"-I{lib}",
                  "-c", str(source), "-o", str(tmp_path / (source.name + ".o"))])
