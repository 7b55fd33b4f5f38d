"""Compile check of the generated Arduino Cortex-M projects against the real core sources.

For a board and backend, `check()` generates the project and compiles every generated
source file (src/ and lib/) with Debian's arm-none-eabi-gcc/g++ and the flags, defines and
include paths the board's PlatformIO builder passes (table BOARDS below, each entry naming
the builder file it comes from), against a checkout of the board's Arduino core. For the
tflm backend it also compiles the TFLM sources the board's build uses (TFLM tree boards:
the interpreter and the model's kernels, CMSIS-NN ones where the board uses them; the Nano
33 BLE: the Arduino library's peripherals/, which PlatformIO builds whole). For the aot
backend it checks that no object references an ACLE intrinsic (__smlad, ...) that the
older GCC some platforms pin lacks.

    .venv/bin/python scripts/conformance_arduino.py [--board B] [--backend tflm|aot] [MODEL.tflite]

What it is not: a PlatformIO build (the platforms and their pinned toolchains come from the
PlatformIO registry, which cannot be reached here). Debian's GCC replaces the pinned ones
(nordicnrf52: GCC 7.2.1, teensy: 11.3.1, ststm32: 12.3.1, raspberrypi: 9.2.1); nothing is
linked.

Trees (environment variables; a board whose trees are missing is "skipped"). Each comes from
a `fetch` snapshot (a bare git directory DIR) extracted with `git -C DIR archive TAG | tar -x
-C DEST`, or blob by blob (git ls-tree -r TAG + git cat-file --batch) where archive stops at
a missing blob:

  TINYOPT_ARDUINO_MBED_DIR   github:arduino/ArduinoCore-mbed at tag 4.1.3 (nordicnrf52@10.5.0
                             pins framework-arduino-mbed ~4.1.3; nano33ble), with
                             github:arduino/ArduinoCore-API tag 1.5.0's api/ copied to
                             cores/arduino/api (the Arduino package ships it there).
  TINYOPT_ARDUINO_MBED_RP2040_DIR  the same at tag 4.0.2 with ArduinoCore-API 1.4.0
                             (raspberrypi@1.9.0 pins framework-arduino-mbed ~4.0.2; pico);
                             defaults to TINYOPT_ARDUINO_MBED_DIR.
  TINYOPT_TEENSY_CORES_DIR   github:PaulStoffregen/cores at tag 1.58 (teensy@4.18.0 pins
                             framework-arduinoteensy ~1.158.0): the folder holding teensy4/.
  TINYOPT_STM32_CORE_DIR     github:stm32duino/Arduino_Core_STM32 at tag 2.7.1 (ststm32@17.3.0
                             pins framework-arduinoststm32 ~4.20701.0).
  TINYOPT_CMSIS_DIR          github:ARM-software/CMSIS_5 at tag 5.9.0 (ststm32@17.3.0 pins
                             framework-cmsis ~2.50900.0 for STM32duino; CMSIS/Core/Include).
  TINYOPT_TFLM_DIR           a TFLM tree with third_party/ (flatbuffers, gemmlowp, ruy,
                             kissfft): github:tensorflow/tflite-micro with its downloads, e.g.
                             third_party/ copied from github:espressif/esp-tflite-micro (both
                             flatbuffers 25); tflm backend of teensy41, nucleo_l4r5zi, pico.
                             The CMSIS-NN boards need its kernels/cmsis_nn/ (esp-tflite-micro
                             has none: they skip).
  TINYOPT_CMSIS_NN_DIR       github:ARM-software/CMSIS-NN at the commit the TFLM tree's
                             tensorflow/lite/micro/tools/make/ext_libs/cmsis_nn_download.sh
                             names (tflm backend of teensy41 and nucleo_l4r5zi).
  TINYOPT_TFLM_ARDUINO_DIR   github:tensorflow/tflite-micro-arduino-examples at the commit
                             boards/nano33ble.toml pins (tflm backend of nano33ble).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GCC = "arm-none-eabi-gcc"
GXX = "arm-none-eabi-g++"
NM = "arm-none-eabi-nm"
ACLE = ("__smlad", "__sxtb16", "__sxtab16", "__smuad", "__qadd16")
ARDUINO_BOARDS = ("nano33ble", "nucleo_l4r5zi", "pico", "teensy41")

# The flags per board, read from the builders of the pinned platform versions.
#   mbed:   builder-framework-arduino-core-mbed @66ff9c5 (the submodule platform-nordicnrf52
#           v10.5.0 and platform-raspberrypi v1.9.0 pin), arduino-core-mbed.py:104-121 (the
#           variant's cflags.txt/cxxflags.txt: shared flags -> CCFLAGS, the rest -> CFLAGS /
#           CXXFLAGS; defines.txt), :136-147 (-iprefix <core> @includes.txt -nostdlib),
#           :150-160 (ARDUINO=10810, ARDUINO_ARCH_MBED, core + api/deprecated* paths), :216
#           (variant dir), :80-100 (configure_fpu_flags: -mfloat-abi=soft -mfpu=fpv4-sp-d16
#           on cortex-m4, appended last); nordicnrf52 platform.py:56-61 picks that script
#           for board nano33ble.
#   teensy: platform-teensy v4.18.0 builder/frameworks/arduino.py:74-79 (ARDUINO=10805,
#           TEENSYDUINO=158 from framework 1.158.0, CORE_TEENSY), :66-67 (USB_SERIAL),
#           :127-172 (teensy4 CCFLAGS / CXXFLAGS / F_CPU / LAYOUT_US_ENGLISH), :181-205
#           (-fno-threadsafe-statics, -mfloat-abi=hard -mfpu=fpv5-d16), :278-283 (-O2).
#   stm32:  Arduino_Core_STM32 2.7.1 tools/platformio/platformio-build.py (the script
#           platform-ststm32 v17.3.0 builder/frameworks/arduino.py runs):201-213 (machine
#           flags), :215-332 (C/C++ flags, defines, include paths), :139-143
#           (VECT_TAB_OFFSET), :404 (variant dir); board id NUCLEO_L4R5ZI (not remapped in
#           boards_remap.json: $BOARD upper-cased, :168-197).
#   extra:  each board JSON's build.extra_flags and build.f_cpu (boards/<board>.json of the
#           same platform tag).
BOARDS = {
    "nano33ble": {
        "kind": "mbed", "tree": "TINYOPT_ARDUINO_MBED_DIR", "variant": "ARDUINO_NANO33BLE",
        "fpu": ["-mfloat-abi=soft", "-mfpu=fpv4-sp-d16"],
        "extra": ["-DARDUINO_ARDUINO_NANO33BLE", "-DARDUINO_ARCH_NRF52840"],
    },
    "pico": {
        "kind": "mbed", "tree": "TINYOPT_ARDUINO_MBED_RP2040_DIR", "fallback": "TINYOPT_ARDUINO_MBED_DIR",
        "variant": "RASPBERRY_PI_PICO", "fpu": [],
        "extra": ["-DARDUINO_RASPBERRY_PI_PICO", "-DARDUINO_ARCH_RP2040"],
    },
    "teensy41": {
        "kind": "teensy", "tree": "TINYOPT_TEENSY_CORES_DIR", "core": "teensy4",
        "cc": ["-Wall", "-ffunction-sections", "-fdata-sections", "-mthumb", "-mcpu=cortex-m7",
               "-nostdlib", "-mfloat-abi=hard", "-mfpu=fpv5-d16", "-O2"],
        "c": [],
        "cxx": ["-fno-exceptions", "-felide-constructors", "-fno-rtti", "-std=gnu++14",
                "-Wno-error=narrowing", "-fpermissive", "-fno-threadsafe-statics"],
        "defines": ["ARDUINO=10805", "TEENSYDUINO=158", "CORE_TEENSY", "USB_SERIAL",
                    "F_CPU=600000000", "LAYOUT_US_ENGLISH"],
        "extra": ["-D__IMXRT1062__", "-DARDUINO_TEENSY41"],
    },
    "nucleo_l4r5zi": {
        "kind": "stm32", "tree": "TINYOPT_STM32_CORE_DIR", "cmsis": "TINYOPT_CMSIS_DIR",
        "series": "STM32L4xx", "board_id": "NUCLEO_L4R5ZI",
        "variant": "STM32L4xx/L4R5Z(G-I)T_L4R7ZIT_L4S5ZIT_L4S7ZIT",
        "cc": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os",
               "-ffunction-sections", "-fdata-sections", "-nostdlib", "--param",
               "max-inline-insns-single=500"],
        "c": ["-std=gnu17"],
        "cxx": ["-std=gnu++17", "-fno-threadsafe-statics", "-fno-rtti", "-fno-exceptions",
                "-fno-use-cxa-atexit"],
        "defines": ["STM32L4xx", "ARDUINO=10808", "ARDUINO_ARCH_STM32", "NDEBUG",
                    "ARDUINO_NUCLEO_L4R5ZI", 'BOARD_NAME="NUCLEO_L4R5ZI"', "HAL_UART_MODULE_ENABLED",
                    "USE_FULL_LL_DRIVER", 'VARIANT_H="variant_NUCLEO_L4R5ZI.h"', "VECT_TAB_OFFSET=0x0"],
        "extra": ["-DSTM32L4R5xx"],
    },
}
# STM32duino include paths relative to the core (platformio-build.py:257-305, 331).
STM32_CORE_PATHS = ["cores/arduino/avr", "cores/arduino/stm32", "cores/arduino/stm32/LL",
                    "cores/arduino/stm32/usb", "cores/arduino/stm32/OpenAMP",
                    "cores/arduino/stm32/usb/hid", "cores/arduino/stm32/usb/cdc",
                    "system/Drivers/{s}_HAL_Driver/Inc", "system/Drivers/{s}_HAL_Driver/Src",
                    "system/{s}", "system/Middlewares/ST/STM32_USB_Device_Library/Core/Inc",
                    "system/Middlewares/ST/STM32_USB_Device_Library/Core/Src",
                    "system/Middlewares/OpenAMP", "system/Middlewares/OpenAMP/open-amp/lib/include",
                    "system/Middlewares/OpenAMP/libmetal/lib/include",
                    "system/Middlewares/OpenAMP/virtual_driver"]
STM32_CORE_PATHS_AFTER_CMSIS = ["system/Drivers/CMSIS/Device/ST/{s}/Include",
                                "system/Drivers/CMSIS/Device/ST/{s}/Source/Templates/gcc"]
TFLM_INCLUDES = ["", "third_party/flatbuffers/include", "third_party/gemmlowp", "third_party/ruy",
                 "third_party/kissfft"]
# TFLM framework sources compiled besides the model's kernels (tree boards)
TFLM_CORE_SOURCES = ["tensorflow/lite/micro/micro_interpreter.cc",
                     "tensorflow/lite/micro/micro_allocator.cc",
                     "tensorflow/lite/micro/kernels/kernel_util.cc"]
# TFLM kernel file per builtin op, where the name does not follow lower_snake_case
KERNEL_FILES = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "depthwise_conv", "AVERAGE_POOL_2D": "pooling",
                "MAX_POOL_2D": "pooling", "RELU": "activations", "RELU6": "activations"}


def _tree(var: str, fallback: str | None = None) -> Path | None:
    for name in (var, fallback):
        if name and os.environ.get(name):
            path = Path(os.environ[name]).expanduser()
            if path.is_dir():
                return path.resolve()
    return None


def _need(trees: dict, var: str, probe: str, fallback: str | None = None) -> str | None:
    """Record tree VAR in TREES; the reason it is unusable, or None."""
    path = _tree(var, fallback)
    if path is None:
        return f"{var} not set (or not a directory): no tree to compile against"
    if not (path / probe).exists():
        return f"{var}={path} has no {probe}"
    trees[var] = path          # under VAR even when it came from the fallback variable
    return None


def _core_flags(board: str, trees: dict) -> tuple[list[str], list[str], list[str]]:
    """(common, C only, C++ only) flags of BOARD's core, including defines and includes."""
    spec = BOARDS[board]
    if spec["kind"] == "mbed":
        root = trees[spec["tree"]]
        var = root / "variants" / spec["variant"]

        def load(name):
            f = var / f"{name}.txt"
            return [ln.strip() for ln in f.read_text().splitlines() if ln.strip()] if f.is_file() else []
        cflags, cxxflags = set(load("cflags")), set(load("cxxflags"))
        shared = cflags & cxxflags
        core = root / "cores" / "arduino"
        common = (sorted(shared - {"-c"})
                  + [f"-iprefix{core}", f"@{var / 'includes.txt'}", "-nostdlib"]
                  # defines.txt writes quotes shell-escaped (\"cmsis_nvic.h\"); no shell here
                  + [d.replace('\\"', '"') for d in load("defines")]
                  + ["-DARDUINO=10810", "-DARDUINO_ARCH_MBED"]
                  + [f"-I{core}", f"-I{core / 'api' / 'deprecated'}", f"-I{core / 'api' / 'deprecated-avr-comp'}",
                     f"-I{var}"]
                  + spec["fpu"] + spec["extra"])
        return common, sorted(cflags - shared - {"-c"}), sorted(cxxflags - shared - {"-c"})
    defines = [f"-D{d}" for d in spec["defines"]] + spec["extra"]
    if spec["kind"] == "teensy":
        root = trees[spec["tree"]]
        core = root / spec["core"] if (root / spec["core"]).is_dir() else root / "cores" / spec["core"]
        return spec["cc"] + defines + [f"-I{core}"], spec["c"], spec["cxx"]
    root, cmsis = trees[spec["tree"]], trees[spec["cmsis"]] / "CMSIS"
    s = spec["series"]
    paths = ([root / p.format(s=s) for p in STM32_CORE_PATHS] + [cmsis / "Core" / "Include"]
             + [root / p.format(s=s) for p in STM32_CORE_PATHS_AFTER_CMSIS]
             + [cmsis / "DSP" / "Include", cmsis / "DSP" / "PrivateInclude", root / "cores" / "arduino",
                root / "variants" / spec["variant"]])
    return spec["cc"] + defines + [f"-I{p}" for p in paths], spec["c"], spec["cxx"]


def _project_flags(project: Path) -> tuple[list[str], list[str]]:
    """platformio.ini's build_flags and build_unflags of the generated project."""
    flags, unflags, cur = [], [], None
    for line in (project / "platformio.ini").read_text().splitlines():
        if re.match(r"^\S", line):
            key = line.split("=", 1)[0].strip()
            cur = {"build_flags": flags, "build_unflags": unflags}.get(key)
            rest = line.split("=", 1)[1].strip() if "=" in line else ""
            if cur is not None and rest:
                cur.extend(rest.split())
        elif cur is not None and line.strip():
            cur.extend(line.split())
    return flags, unflags


def _apply(flags: list[str], build_flags: list[str], unflags: list[str], cxx: bool) -> list[str]:
    # PlatformIO: build_flags are appended (C++-only -std= go to CXXFLAGS), then build_unflags removed
    extra = [f for f in build_flags if cxx or not f.startswith("-std=gnu++")]
    return [f for f in flags + extra if f not in unflags]


def _compile(cmd: list[str], cwd: Path) -> str | None:
    proc = subprocess.run(["nice", "-n", "10", *cmd], cwd=cwd, capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    err = [ln for ln in proc.stderr.splitlines() if "error" in ln] or proc.stderr.splitlines() or ["(no output)"]
    return err[0].strip()


def _kernel_sources(tflm: Path, ops: list[str], cmsis_nn: bool) -> list[Path]:
    out = []
    for op in ops:
        name = KERNEL_FILES.get(op, op.lower())
        kdir = tflm / "tensorflow/lite/micro/kernels"
        for cand in ([kdir / "cmsis_nn" / f"{name}.cc"] if cmsis_nn else []) + [kdir / f"{name}.cc"]:
            if cand.is_file():
                if cand not in out:
                    out.append(cand)
                break
    return out


def _ldf_includes(core_root: Path, folder: Path) -> list[str]:
    """The framework libraries (core_root/libraries/NAME) whose headers FOLDER's files include
    with <...>, as PlatformIO's library dependency finder adds them."""
    wanted = set()
    for f in folder.iterdir():
        if f.suffix in (".h", ".cpp", ".c"):
            wanted |= set(re.findall(r'^\s*#\s*include\s*<([^>]+)>', f.read_text(errors="replace"), re.M))
    out = []
    for libdir in sorted((core_root / "libraries").glob("*")):
        for d in (libdir / "src", libdir):
            if d.is_dir() and any((d / w).is_file() for w in wanted):
                out.append(f"-I{d}")
                break
    return out


def _requirements(board: str, backend: str, tflm_source: str, kernels: str) -> list[tuple]:
    spec = BOARDS[board]
    reqs = []
    if spec["kind"] == "mbed":
        reqs.append((spec["tree"], f"variants/{spec['variant']}/includes.txt", spec.get("fallback")))
        reqs.append((spec["tree"], "cores/arduino/api/ArduinoAPI.h", spec.get("fallback")))
    elif spec["kind"] == "teensy":
        reqs.append((spec["tree"], "teensy4/Arduino.h", None))
    else:
        reqs.append((spec["tree"], "cores/arduino/Arduino.h", None))
        reqs.append((spec["cmsis"], "CMSIS/Core/Include/core_cm4.h", None))
    if backend == "tflm":
        if tflm_source == "tree":
            reqs.append(("TINYOPT_TFLM_DIR", "tensorflow/lite/micro/micro_interpreter.h", None))
            if kernels == "cmsis-nn":
                # tinyopt_tflm.py stops the build on a tree without TFLM's CMSIS-NN kernels
                # (esp-tflite-micro): compiling the reference ones instead would pass falsely
                reqs.append(("TINYOPT_TFLM_DIR", "tensorflow/lite/micro/kernels/cmsis_nn", None))
                reqs.append(("TINYOPT_CMSIS_NN_DIR", "Include/arm_nnfunctions.h", None))
        else:
            reqs.append(("TINYOPT_TFLM_ARDUINO_DIR", "src/TensorFlowLite.h", None))
    return reqs


def precheck(board_name: str, backend: str) -> tuple[str, str] | None:
    """Without generating anything: ("unsupported" | "skipped", reason) when check() would
    stop there, else None. Cheap, so a test can skip before it makes a model."""
    return _precheck(board_name, backend, {})


def _precheck(board_name: str, backend: str, trees: dict) -> tuple[str, str] | None:
    from tinyopt.boards import load_board
    if board_name not in BOARDS:
        return "skipped", f"{board_name} is not an Arduino Cortex-M board of this check"
    board = load_board(board_name)
    if backend not in board.backends:
        return "unsupported", f"{board_name} offers {', '.join(board.backends)}, not {backend}"
    tflm_source = board.tflm.get("source", "arduino-library")
    kernels = board.tflm.get("kernels", "reference")
    for var, probe, fallback in _requirements(board_name, backend, tflm_source, kernels):
        why = _need(trees, var, probe, fallback)
        if why:
            return "skipped", why
    for tool in (GCC, GXX, NM):
        if shutil.which(tool) is None:
            return "skipped", f"{tool} not installed (Debian: gcc-arm-none-eabi)"
    return None


def check(board_name: str, backend: str, model: Path, workdir: Path) -> tuple[str, str]:
    """Generate BOARD_NAME's BACKEND project for MODEL in WORKDIR and compile it against the
    real core: ("compiled" | "failed" | "skipped" | "unsupported", one-line reason)."""
    from tinyopt.boards import load_board
    trees: dict[str, Path] = {}
    stop = _precheck(board_name, backend, trees)
    if stop:
        return stop
    board = load_board(board_name)
    tflm_source = board.tflm.get("source", "arduino-library")
    kernels = board.tflm.get("kernels", "reference")

    from tinyopt.codegen.generate import generate
    from tinyopt.errors import TinyoptError
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{board_name}-{backend}"
    try:
        project = generate(model, board, backend=backend, out=out, force=True)
    except TinyoptError as err:
        return "failed", f"generate: {err.message}"
    common, c_only, cxx_only = _core_flags(board_name, trees)
    build_flags, unflags = _project_flags(project.path)
    includes = [f"-I{project.path / 'src'}", f"-I{project.path / 'lib' / 'tinyopt_model'}"]
    extra_sources: list[Path] = []
    if backend == "tflm":
        if tflm_source == "tree":
            tflm = trees["TINYOPT_TFLM_DIR"]
            includes += [f"-I{tflm / d}" if d else f"-I{tflm}" for d in TFLM_INCLUDES]
            if kernels == "cmsis-nn":
                nn = trees["TINYOPT_CMSIS_NN_DIR"]
                includes += [f"-I{nn}", f"-I{nn / 'Include'}", "-DCMSIS_NN", "-DARM_NN_ENABLE_F16=0",
                             "-DARM_NN_ENABLE_F32=0"]
            extra_sources = ([tflm / s for s in TFLM_CORE_SOURCES]
                             + _kernel_sources(tflm, project.metadata["library"]["ops"], kernels == "cmsis-nn"))
            if kernels == "cmsis-nn":    # the CMSIS-NN library as tinyopt_tflm.py builds it
                extra_sources += sorted(p for p in trees["TINYOPT_CMSIS_NN_DIR"].glob("Source/*/*.c")
                                        if not p.name.endswith(("_f16.c", "_f32.c", "arm_nntables_flt.c")))
        else:
            lib = trees["TINYOPT_TFLM_ARDUINO_DIR"] / "src"
            includes.append(f"-I{lib}")
            extra_sources = sorted((lib / "peripherals").glob("*.cpp"))
            includes += _ldf_includes(trees[BOARDS[board_name]["tree"]], lib / "peripherals")
    sources = sorted(p for d in ("src", "lib") for p in (project.path / d).rglob("*")
                     if p.suffix in (".c", ".cc", ".cpp"))
    objdir = Path(tempfile.mkdtemp(prefix="obj-", dir=workdir))
    objects = []
    for i, src in enumerate(sources + extra_sources):
        cxx = src.suffix != ".c"
        flags = _apply(common + (cxx_only if cxx else c_only), build_flags, unflags, cxx)
        obj = objdir / f"{i}_{src.stem}.o"
        err = _compile([GXX if cxx else GCC, *flags, *includes, "-c", str(src), "-o", str(obj)], project.path)
        if err:
            where = src.relative_to(project.path) if src.is_relative_to(project.path) else src.name
            return "failed", f"{where}: {err}"[:300]
        objects.append(obj)
    if backend == "aot":
        nm = subprocess.run([NM, "-u", *map(str, objects)], capture_output=True, text=True).stdout
        bad = sorted({s for s in ACLE if re.search(rf"\b{s}\b", nm)})
        if bad:
            return "failed", f"objects reference ACLE intrinsics {', '.join(bad)} (missing from older GCCs)"
    shutil.rmtree(objdir, ignore_errors=True)
    what = f"{len(sources)} generated files"
    if extra_sources:
        n_nn = sum(1 for p in extra_sources if p.suffix == ".c")
        what += (f" + {len(extra_sources) - n_nn} TFLM sources" + (f" + {n_nn} CMSIS-NN sources" if n_nn else "")
                 if tflm_source == "tree" else f" + {len(extra_sources)} library peripherals/ files")
    return "compiled", f"{what} against {trees[BOARDS[board_name]['tree']].name} ({board.platformio['platform']})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", type=Path, help="int8 .tflite (default: a small CNN made here)")
    ap.add_argument("--board", action="append", choices=ARDUINO_BOARDS)
    ap.add_argument("--backend", action="append", choices=("tflm", "aot"))
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args(argv)
    model = args.model
    if model is None:
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_models import tiny_cnn
        model = tiny_cnn()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tinyopt-conformance-"))
    failed = 0
    for board in args.board or ARDUINO_BOARDS:
        for backend in args.backend or ("tflm", "aot"):
            status, reason = check(board, backend, model, workdir)
            failed += status == "failed"
            print(f"{board:14} {backend:5} {status:12} {reason}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
