"""SCons build script of tinyopt's qemu dev-platform: bare-metal Cortex-M firmware with the
system's arm-none-eabi-gcc (newlib-nano), the project's own startup code and linker script
(src/startup_qemu.c, qemu.ld from tinyopt's firmware_templates/qemu/), a size check against
the board's maximum sizes like a real board's, and an upload that starts qemu-system-arm
(builder/qemu_launch.py). Core, FPU, memory sizes and the QEMU machine come from the board
manifest, which tinyopt's generated platformio.ini overrides per board (board_build.cpu,
board_qemu.machine, ...)."""
import os
import sys

from SCons.Script import COMMAND_LINE_TARGETS, AlwaysBuild, Builder, Default, DefaultEnvironment

env = DefaultEnvironment()
platform = env.PioPlatform()
board = env.BoardConfig()

MACHINE_FLAGS = ["-mcpu=%s" % board.get("build.cpu", "cortex-m4"), "-mthumb",
                 "-mfloat-abi=%s" % board.get("build.float_abi", "soft")]
if board.get("build.fpu", ""):
    MACHINE_FLAGS.append("-mfpu=%s" % board.get("build.fpu"))

env.Replace(
    AR="arm-none-eabi-gcc-ar",
    AS="arm-none-eabi-as",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    GDB="arm-none-eabi-gdb",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-gcc-ranlib",
    SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"],
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
    # Flash: code, constants and the initial values of .data; RAM: .data and .bss (as the
    # ststm32 platform counts them: stack and heap are what is left).
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.rodata|\.data|\.ARM\.exidx|\.ARM\.extab|"
                   r"\.preinit_array|\.init_array|\.fini_array)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
)

env.Append(
    ASFLAGS=MACHINE_FLAGS,
    ASPPFLAGS=["-x", "assembler-with-cpp"],
    CCFLAGS=MACHINE_FLAGS + ["-Os", "-ffunction-sections", "-fdata-sections", "-Wall"],
    CFLAGS=["-std=gnu11"],
    CXXFLAGS=["-std=gnu++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
              "-fno-use-cxa-atexit"],
    CPPDEFINES=["TINYOPT_QEMU", ("F_CPU", board.get("build.f_cpu", "25000000L"))],
    LINKFLAGS=MACHINE_FLAGS + ["-Wl,--gc-sections", "--specs=nano.specs", "-nostartfiles",
                               "-Wl,--no-warn-rwx-segments"],
    LIBS=["m", "stdc++", "c", "gcc"],
    BUILDERS=dict(
        ElfToBin=Builder(action=env.VerboseAction("$OBJCOPY -O binary $SOURCES $TARGET",
                                                  "Building $TARGET"), suffix=".bin")),
)
# C++ sources (TFLM) need g++ as the linker driver.
env.Replace(LINK="$CXX")

# The linker script lives in the generated project (board_build.ldscript, default qemu.ld).
ldscript = board.get("build.ldscript", "qemu.ld")
if not os.path.isabs(ldscript):
    ldscript = os.path.join(env.subst("$PROJECT_DIR"), ldscript)
if not os.path.isfile(ldscript) and not env.GetOption("clean"):
    sys.stderr.write("Error: linker script %s not found; regenerate the project with tinyopt "
                     "(it writes qemu.ld for its emulated boards)\n" % ldscript)
    env.Exit(1)
env.Replace(LDSCRIPT_PATH=ldscript)

# TFLM projects (tinyopt backend "tflm"): the TFLM source tree named by custom_tflm_dir
# (platformio.ini: ${sysenv.TINYOPT_TFLM_DIR}) compiled for the board's core as a static library,
# -O2 -DNDEBUG (TFLM's DCHECKs sit in the kernels' inner loops). Kernels (custom_tflm_kernels):
# "reference" (default), or "cmsis-nn": TFLM's kernels/cmsis_nn/ glue in place of the reference
# kernels it replaces (a tflite-micro tree; esp-tflite-micro has none) and the CMSIS-NN library
# from custom_cmsis_nn_dir (${sysenv.TINYOPT_CMSIS_NN_DIR}), int8 only as TFLM's Makefile builds it.
TFLM_FILTER = ["+<tensorflow/>", "+<signal/>", "-<tensorflow/lite/micro/esp/>",
               "-<tensorflow/lite/micro/kernels/esp_nn/>", "-<**/examples/>", "-<**/tools/>",
               "-<**/testing/>", "-<**/*_test.cc>", "-<**/test_helper*.cc>"]
# TFLM's library sources as its Makefile collects them (a tflite-micro tree also holds the other
# vendors' kernel folders, which must not be compiled).
TFLM_MAKEFILE_FILTER = [
    "-<*>", "+<tensorflow/lite/micro/*.cc>", "+<tensorflow/lite/micro/arena_allocator/*.cc>",
    "+<tensorflow/lite/micro/memory_planner/*.cc>", "+<tensorflow/lite/micro/tflite_bridge/*.cc>",
    "+<tensorflow/lite/micro/kernels/*.cc>", "+<tensorflow/lite/kernels/*.cc>",
    "+<tensorflow/lite/kernels/internal/*.cc>", "+<tensorflow/lite/kernels/internal/reference/*.cc>",
    "+<tensorflow/lite/core/api/*.cc>", "+<tensorflow/lite/core/c/*.cc>", "+<tensorflow/lite/c/*.cc>",
    "+<tensorflow/lite/schema/*.cc>", "+<tensorflow/compiler/mlir/lite/core/api/*.cc>",
    "+<tensorflow/compiler/mlir/lite/schema/*.cc>", "-<**/*_test.cc>", "-<**/*test_helper*.cc>",
    "-<**/*test_util*.cc>", "-<**/fake_micro_context.cc>", "-<**/mock_micro_graph.cc>"]
TFLM_INCLUDES = ["", "third_party/gemmlowp", "third_party/flatbuffers/include", "third_party/ruy",
                 "third_party/kissfft"]


def _project_backend():
    import json
    meta = os.path.join(env.subst("$PROJECT_DIR"), "tinyopt_project.json")
    try:
        with open(meta) as f:
            return json.load(f).get("backend")
    except (OSError, ValueError):
        return None


# Cores with the Helium (MVE) extension. For them arm-none-eabi-gcc 12.2 (Debian bookworm) turns
# some float conversions in TFLM's kernels (resize_nearest_neighbor.cc) into conditional
# `vcvtne.f32.s32` inside an IT block, which its assembler rejects as a malformed MVE
# instruction; the late if-conversion pass is what makes them conditional, so TFLM is compiled
# without it there (MVE itself stays on: CMSIS-NN's Helium kernels are what an M55 runs).
MVE_CPUS = ("cortex-m55", "cortex-m85")


def _fail(message):
    sys.stderr.write("Error: %s\n" % message)
    env.Exit(1)


if _project_backend() == "tflm" and not env.GetOption("clean"):
    tflm_dir = env.GetProjectOption("custom_tflm_dir", "").strip()
    if not tflm_dir or not os.path.isfile(
            os.path.join(tflm_dir, "tensorflow", "lite", "micro", "micro_interpreter.h")):
        _fail("this TFLM project needs a TFLM source tree: set TINYOPT_TFLM_DIR to a "
              "tflite-micro or esp-tflite-micro checkout (platformio.ini: custom_tflm_dir = %r)" % tflm_dir)
    kernels = env.GetProjectOption("custom_tflm_kernels", "reference").strip() or "reference"
    if kernels not in ("reference", "cmsis-nn"):
        _fail("custom_tflm_kernels = %r: use reference or cmsis-nn" % kernels)
    env.Append(CPPPATH=[os.path.join(tflm_dir, d) if d else tflm_dir for d in TFLM_INCLUDES])
    tflm_env = env.Clone()
    tflm_env.Replace(CCFLAGS=MACHINE_FLAGS + ["-O2", "-ffunction-sections", "-fdata-sections", "-w"])
    if board.get("build.cpu", "") in MVE_CPUS:
        tflm_env.Append(CCFLAGS=["-fno-if-conversion2"])
    tflm_env.Append(CPPDEFINES=["NDEBUG", "TF_LITE_STATIC_MEMORY"])
    glue = os.path.join(tflm_dir, "tensorflow", "lite", "micro", "kernels", "cmsis_nn")
    # a tflite-micro tree (it has the vendors' kernel folders): its Makefile's sources
    tflm_filter = list(TFLM_MAKEFILE_FILTER) if os.path.isdir(glue) else TFLM_FILTER
    libs = []
    if kernels == "cmsis-nn":
        nn = env.GetProjectOption("custom_cmsis_nn_dir", "").strip()
        if not nn or not os.path.isfile(os.path.join(nn, "Include", "arm_nnfunctions.h")):
            _fail("CMSIS-NN kernels need the CMSIS-NN library: set TINYOPT_CMSIS_NN_DIR to an "
                  "ARM-software/CMSIS-NN checkout (platformio.ini: custom_cmsis_nn_dir = %r)" % nn)
        if not os.path.isdir(glue):
            _fail("the TFLM tree at %s has no tensorflow/lite/micro/kernels/cmsis_nn/ (esp-tflite-micro "
                  "has none): use a tflite-micro tree" % tflm_dir)
        for name in sorted(os.listdir(glue)):   # each CMSIS-NN kernel replaces the reference one
            if name.endswith(".cc"):
                tflm_filter += ["-<tensorflow/lite/micro/kernels/%s>" % name,
                                "+<tensorflow/lite/micro/kernels/cmsis_nn/%s>" % name]
        defines = ["CMSIS_NN", ("ARM_NN_ENABLE_F16", 0), ("ARM_NN_ENABLE_F32", 0)]
        tflm_env.Append(CPPPATH=[nn, os.path.join(nn, "Include")], CPPDEFINES=defines)
        nn_env = tflm_env.Clone()
        libs.append(nn_env.BuildLibrary(os.path.join("$BUILD_DIR", "cmsis_nn"), nn,
                                        ["-<*>", "+<Source/*/*.c>", "-<Source/*/*_f16.c>",
                                         "-<Source/*/*_f32.c>", "-<Source/*/arm_nntables_flt.c>"]))
    libs.insert(0, tflm_env.BuildLibrary(os.path.join("$BUILD_DIR", "tflm"), tflm_dir, tflm_filter))
    env.Prepend(LIBS=libs)

target_elf = None
if "nobuild" in COMMAND_LINE_TARGETS:
    target_elf = os.path.join("$BUILD_DIR", "${PROGNAME}.elf")
    target_bin = os.path.join("$BUILD_DIR", "${PROGNAME}.bin")
else:
    target_elf = env.BuildProgram()
    target_bin = env.ElfToBin(os.path.join("$BUILD_DIR", "${PROGNAME}"), target_elf)
    env.Depends(target_bin, "checkprogsize")

AlwaysBuild(env.Alias("nobuild", target_bin))
target_buildprog = env.Alias("buildprog", target_bin, target_bin)

target_size = env.AddPlatformTarget(
    "size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"),
    "Program Size", "Calculate program size")

LAUNCHER = os.path.join(platform.get_dir(), "builder", "qemu_launch.py")
qemu_args = '--machine %s --cpu %s --icount-shift %d --timeout %d' % (
    board.get("qemu.machine", "mps2-an386"), board.get("qemu.cpu", "cortex-m4"),
    int(board.get("qemu.icount_shift", 0)), int(board.get("qemu.boot_timeout_s", 60)))
env.Replace(
    UPLOADCMD='"$PYTHONEXE" "%s" start --elf $SOURCE --project "$PROJECT_DIR" %s' % (LAUNCHER, qemu_args),
    STOPCMD='"$PYTHONEXE" "%s" stop --project "$PROJECT_DIR"' % LAUNCHER,
)
env.AddPlatformTarget(
    "upload", target_elf, [env.VerboseAction("$UPLOADCMD", "Starting the emulator (qemu-system-arm)")],
    "Upload", "Start qemu-system-arm with the firmware, UART0 on a pseudo-terminal")
env.AddPlatformTarget(
    "stop", None, [env.VerboseAction("$STOPCMD", "Stopping the emulator")],
    "Stop emulator", "End the qemu-system-arm started by upload")

Default([target_buildprog, target_size])
