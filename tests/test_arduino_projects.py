"""The Arduino Cortex-M boards' projects (nano33ble, teensy41, nucleo_l4r5zi, pico): what
their real cores and platforms need, checked without the cores (those checks are in
tests/test_conformance_arduino.py): no F_CPU on ArduinoCore-mbed, no ACLE SIMD intrinsics
(GCC 7.2.1 has none), TFLM from a source tree where TFLM's Arduino library cannot build,
Teensy's code and constants in RAM, DWT_CYCCNT left running, and the Nucleo waiting for the
host before its boot lines."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tiny_models import tiny_cnn

from tinyopt.analysis.fit import check_fit
from tinyopt.boards import load_board
from tinyopt.codegen.generate import generate

STUBS = Path(__file__).parent / "stubs"
GCC = shutil.which("arm-none-eabi-gcc")
GXX = shutil.which("arm-none-eabi-g++")
HOST_GXX = shutil.which("g++")
ARDUINO_LIBRARY = "tflite-micro-arduino-examples"
needs_arm_gcc = pytest.mark.skipif(GCC is None, reason="arm-none-eabi-gcc not installed")


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """One generated project per (board, backend), made on first use."""
    made = {}

    def get(board, backend):
        if (board, backend) not in made:
            made[board, backend] = generate(tiny_cnn(), board, backend=backend,
                                            out=tmp_path_factory.mktemp(f"{board}-{backend}") / "fw")
        return made[board, backend]
    return get


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


# ---- 3: ArduinoCore-mbed defines no F_CPU ----

@needs_arm_gcc
@pytest.mark.parametrize("board", ["nano33ble", "pico"])
def test_glue_compiles_without_f_cpu_on_the_mbed_core(board, projects, tmp_path):
    """Defines as nordicnrf52's / raspberrypi's mbed builder passes them: ARDUINO,
    ARDUINO_ARCH_MBED, the variant's; tests/stubs/Arduino.h defines no F_CPU either."""
    src = projects(board, "aot").path / "src"
    text = (src / "platform_arduino.cpp").read_text()
    assert not re.search(r"\bF_CPU\b(?!_ACTUAL)", text.split("*/", 1)[1])
    cpu = ["-mcpu=cortex-m4", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16"] if board == "nano33ble" \
        else ["-mcpu=cortex-m0plus"]
    _run([GXX, *cpu, "-mthumb", "-std=gnu++14", "-DARDUINO=10810", "-DARDUINO_ARCH_MBED",
          "-Wall", "-Werror", "-O2", f"-I{STUBS}", f"-I{src}", "-c", str(src / "platform_arduino.cpp"),
          "-o", str(tmp_path / "glue.o")])


# ---- 4: the DSP path without arm_acle.h's SIMD32 intrinsics ----

@needs_arm_gcc
@pytest.mark.parametrize("cpu", [["-mcpu=cortex-m4", "-mfloat-abi=soft"],
                                 ["-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"]])
def test_aot_dsp_path_needs_no_acle_intrinsics(cpu, projects, tmp_path):
    """GCC 7.2.1 (nordicnrf52's pinned toolchain) ships an arm_acle.h without __smlad /
    __sxtb16 / __sxtab16: an arm_acle.h without them (first on the include path) stands in
    for it. The DSP instructions must still be used, and no intrinsic referenced."""
    old_acle = tmp_path / "gcc7"
    old_acle.mkdir()
    (old_acle / "arm_acle.h").write_text("/* GCC 7.2.1's arm_acle.h: no SIMD32 intrinsics */\n")
    lib = projects("nano33ble", "aot").path / "lib" / "tinyopt_model"
    objs = []
    for src in sorted(lib.glob("*.c")):
        obj = tmp_path / (src.stem + ".o")
        _run([GCC, *cpu, "-mthumb", "-std=gnu11", "-O2", "-Wall", "-Werror",
              "-Werror=implicit-function-declaration", f"-I{old_acle}", f"-I{lib}",
              "-c", str(src), "-o", str(obj)])
        objs.append(str(obj))
    undefined = _run([GCC.replace("gcc", "nm"), "-u", *objs])
    assert not re.search(r"__(smlad|sxtb16|sxtab16)", undefined), undefined
    disasm = _run([GCC.replace("gcc", "objdump"), "-d", *objs])
    assert "smlad" in disasm and "sxtb16" in disasm


def test_math_header_uses_no_acle_intrinsics(projects):
    text = (projects("nano33ble", "aot").path / "lib/tinyopt_model/tinyopt_aot_math.h").read_text()
    assert "#include <arm_acle.h>" not in text
    assert not re.search(r"\b__(smlad|sxtb16|sxtab16)\s*\(", text)


# ---- 5: where TFLM's Arduino library cannot build, TFLM comes from a source tree ----

@pytest.mark.parametrize("board", ["teensy41", "nucleo_l4r5zi", "pico"])
def test_tflm_off_the_nano_comes_from_a_source_tree(board, projects):
    project = projects(board, "tflm").path
    ini = (project / "platformio.ini").read_text()
    assert ARDUINO_LIBRARY not in ini       # its peripherals/ stop with #error off the Nano 33 BLE
    assert "extra_scripts = pre:tinyopt_tflm.py" in ini
    assert "custom_tflm_dir = ${sysenv.TINYOPT_TFLM_DIR}" in ini
    assert ("custom_cmsis_nn_dir = ${sysenv.TINYOPT_CMSIS_NN_DIR}" in ini) == (board != "pico")
    assert (project / "tinyopt_tflm.py").is_file()
    glue = (project / "src/platform_arduino.cpp").read_text()
    assert "DebugLog(const char *format, va_list args)" in glue


def test_the_nano_keeps_the_arduino_library_and_aot_has_no_tflm_script(projects):
    nano = projects("nano33ble", "tflm").path
    assert ARDUINO_LIBRARY in (nano / "platformio.ini").read_text()
    assert not (nano / "tinyopt_tflm.py").exists()
    aot = projects("teensy41", "aot").path
    assert "tinyopt_tflm" not in (aot / "platformio.ini").read_text()
    assert not (aot / "tinyopt_tflm.py").exists()


def test_cpp17_for_tflm_where_the_core_passes_gnu14(projects):
    for board in ("teensy41", "pico"):
        ini = (projects(board, "tflm").path / "platformio.ini").read_text()
        flags = ini.split("build_flags =", 1)[1].split("build_unflags =", 1)
        assert "-std=gnu++17" in flags[0] and "-std=gnu++14" in flags[1]


class _FakeEnv:
    """The few SCons/PlatformIO env methods the extra script calls."""

    def __init__(self, options):
        self.options, self.calls = options, {"Append": [], "Prepend": [], "BuildLibrary": []}

    def GetProjectOption(self, name, default=""):
        return self.options.get(name, default)

    def GetOption(self, name):
        return False

    def Exit(self, code):
        raise SystemExit(code)

    def Append(self, **kw):
        self.calls["Append"].append(kw)

    def Prepend(self, **kw):
        self.calls["Prepend"].append(kw)

    def BuildLibrary(self, variant, src, src_filter):
        self.calls["BuildLibrary"].append((variant, src, src_filter))
        return f"lib:{variant}"


def _run_extra_script(project, options, capsys):
    env = _FakeEnv(options)
    code = (project / "tinyopt_tflm.py").read_text()
    exec(compile(code, "tinyopt_tflm.py", "exec"), {"Import": lambda name: None, "env": env,
                                                     "__name__": "SCons"})
    return env


def test_extra_script_builds_tflm_with_cmsis_nn_kernels(projects, tmp_path, capsys):
    tflm, nn = tmp_path / "tflm", tmp_path / "nn"
    (tflm / "tensorflow/lite/micro/kernels/cmsis_nn").mkdir(parents=True)
    (tflm / "tensorflow/lite/micro/micro_interpreter.h").write_text("")
    (tflm / "tensorflow/lite/micro/kernels/cmsis_nn/conv.cc").write_text("")
    (nn / "Include").mkdir(parents=True)
    (nn / "Include/arm_nnfunctions.h").write_text("")
    env = _run_extra_script(projects("nucleo_l4r5zi", "tflm").path,
                            {"custom_tflm_dir": str(tflm), "custom_cmsis_nn_dir": str(nn)}, capsys)
    libs = {Path(v).name: f for v, _, f in env.calls["BuildLibrary"]}
    assert set(libs) == {"tflm", "cmsis_nn"}
    assert "-<tensorflow/lite/micro/kernels/conv.cc>" in libs["tflm"]
    assert "+<tensorflow/lite/micro/kernels/cmsis_nn/conv.cc>" in libs["tflm"]
    assert "-<tensorflow/lite/micro/debug_log.cc>" in libs["tflm"]
    paths = [p for kw in env.calls["Append"] for p in kw.get("CPPPATH", [])]
    assert str(tflm) in paths and str(nn / "Include") in paths
    assert "CMSIS_NN" in [d for kw in env.calls["Append"] for d in kw.get("CPPDEFINES", [])]
    assert "-<Source/*/*_f32.c>" in libs["cmsis_nn"]


def test_extra_script_stops_with_the_variable_to_set(projects, capsys):
    with pytest.raises(SystemExit):
        _run_extra_script(projects("pico", "tflm").path, {"custom_tflm_dir": ""}, capsys)
    assert "TINYOPT_TFLM_DIR" in capsys.readouterr().err


# ---- 6: Teensy 4.1 runs code and constants from RAM1 ----

def test_teensy_weights_count_against_ram():
    teensy, nucleo = load_board("teensy41"), load_board("nucleo_l4r5zi")
    assert teensy.code_and_constants_in_ram and not nucleo.code_and_constants_in_ram
    weights = 400 * 1024              # fits 8 MB of flash easily; RAM1 is 512 KB
    kw = dict(model_bytes=weights + 4096, weight_bytes=weights, arena_bytes=16 * 1024,
              arena_measured=True, heaviest_activation=None)
    fit = check_fit(teensy, **kw)
    assert fit.fits_flash and not fit.fits_ram, fit.verdict
    assert fit.ram_parts["model"] == weights + 4096
    assert fit.ram_parts["code"] == teensy.runtime_flash_bytes
    assert fit.ram_used == weights + 4096 + 16 * 1024 + teensy.runtime_ram_bytes + teensy.runtime_flash_bytes
    assert "RAM" in fit.verdict and any("weights" in s for s in fit.suggestions)
    assert check_fit(nucleo, **kw).fits          # 640 KB RAM, weights stay in flash


def test_small_model_still_fits_the_teensy():
    fit = check_fit(load_board("teensy41"), model_bytes=60_000, weight_bytes=50_000, arena_bytes=30_000,
                    arena_measured=True, heaviest_activation=None)
    assert fit.fits, fit.verdict


# ---- 7: DWT_CYCCNT left running; the Nucleo waits for the host ----

@pytest.mark.parametrize("board", ["teensy41", "nucleo_l4r5zi", "nano33ble"])
def test_glue_never_writes_the_cycle_counter(board, projects):
    text = (projects(board, "aot").path / "src/platform_arduino.cpp").read_text()
    assert "TINYOPT_TIMER_DWT" in text
    assert not re.search(r"DWT_CYCCNT\s*=(?!=)", text), "Teensy's micros() relies on DWT_CYCCNT"
    assert re.search(r"g_last_cyc\s*=\s*DWT_CYCCNT", text)


_HOST_SERIAL = r"""
#include <Arduino.h>
#include <stdio.h>
#include "tinyopt_platform.h"
HardwareSerialStub Serial;
static int polls, reads, began;
void HardwareSerialStub::begin(unsigned long) { began = 1; }
int HardwareSerialStub::available() { return ++polls > 3 ? 1 : 0; }   /* a byte after 3 polls */
int HardwareSerialStub::read() { ++reads; return 'n'; }
size_t HardwareSerialStub::write(const uint8_t *, size_t n) { return n; }
size_t HardwareSerialStub::print(const char *) { return 0; }
HardwareSerialStub::operator bool() { return true; }
unsigned long micros(void) { return 0; }
void delayMicroseconds(unsigned int) {}
int main() {
  tinyopt_platform_init();
  printf("%d %d %d\n", began, polls, reads);
  return 0;
}
"""


@pytest.mark.skipif(HOST_GXX is None, reason="no host g++")
@pytest.mark.parametrize("board,waits", [("nucleo_l4r5zi", True), ("teensy41", False)])
def test_uart_bridge_board_waits_for_the_hosts_first_byte(board, waits, projects, tmp_path):
    """The glue on the host against tests/stubs/Arduino.h, with a Serial whose first byte
    arrives after three polls. The Nucleo (ST-LINK VCP: no USB CDC port-open signal) must not
    return from init before it, nor eat it (it starts the host's first command); the boot
    lines (m-init-done, m-ready) follow from the unchanged harness."""
    src = projects(board, "aot").path / "src"
    glue = (src / "platform_arduino.cpp").read_text()
    # the DWT registers are absolute Cortex-M addresses: time from micros() on the host
    glue = glue.replace("#define TINYOPT_TIMER_DWT 1", "#define TINYOPT_TIMER_MICROS 1")
    glue = glue.replace("#define TINYOPT_WAIT_FOR_USB 1", "#define TINYOPT_WAIT_FOR_USB 0")
    (tmp_path / "glue.cpp").write_text(glue)
    (tmp_path / "main.cpp").write_text(_HOST_SERIAL)
    exe = tmp_path / "glue"
    _run([HOST_GXX, "-std=gnu++17", "-Wall", "-Werror", f"-I{STUBS}", f"-I{src}",
          str(tmp_path / "glue.cpp"), str(tmp_path / "main.cpp"), "-o", str(exe)])
    began, polls, reads = map(int, _run([str(exe)], timeout=10).split())
    assert began == 1 and reads == 0
    assert (polls >= 4) == waits, f"available() polled {polls} times"
