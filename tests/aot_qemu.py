"""Run a generated aot library on an emulated Cortex-M core without PlatformIO: the
library's sources, tests/qemu_ops/ (vector table, semihosting output, driver) and the inputs
as a C array, compiled with arm-none-eabi-gcc for the core of a qemu-* board file and run
in qemu-system-arm with semihosting. Fast enough for per-operator checks of the DSP paths,
which the host build (x86) never takes."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import aot_host as host
import numpy as np

from tinyopt.boards import load_board
from tinyopt.codegen.aot import model_library
from tinyopt.nice import nice
from tinyopt.tflm_runtime import Runner

HERE = Path(__file__).parent / "qemu_ops"
CORES = ["m0", "m4", "m7", "m33", "m55"]


def missing_tools() -> str | None:
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if not shutil.which(tool):
            return f"{tool} not installed (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)"
    return None


def machine_flags(emu: dict) -> list[str]:
    flags = [f"-mcpu={emu['cpu']}", "-mthumb", f"-mfloat-abi={emu.get('float_abi', 'soft')}"]
    if emu.get("fpu"):
        flags.append(f"-mfpu={emu['fpu']}")
    return flags


def build_elf(lib, inputs: np.ndarray, output_bytes: int, core: str, work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    folder = host.write_library(lib, work / "lib")
    (folder / "host_driver.c").unlink()
    rows = ",\n".join("{" + ",".join(str(int(v)) for v in x.reshape(-1)) + "}" for x in inputs)
    (work / "to_inputs.h").write_text(
        f"#define TO_SAMPLES {len(inputs)}\n#define TO_INPUT_BYTES {inputs[0].size}\n"
        f"#define TO_OUTPUT_BYTES {output_bytes}\n"
        f"static const int8_t to_inputs[TO_SAMPLES][TO_INPUT_BYTES] = {{\n{rows}\n}};\n")
    return build_program([HERE / "driver.c", *sorted(folder.glob("*.c"))], [folder, work], core, work,
                         lib.build_flags)


def build_program(sources: list[Path], include_dirs: list[Path], core: str, work: Path,
                  flags: list[str] = ("-O2",)) -> Path:
    """An ELF for CORE's emulated board from SOURCES (one of them defines main(); to_puts() of
    tests/qemu_ops/startup.c writes to the semihosting console)."""
    emu = load_board(f"qemu-{core}").emulator
    board = load_board(f"qemu-{core}")
    work.mkdir(parents=True, exist_ok=True)
    ld = (HERE / "link.ld.in").read_text()
    for key, value in (("@FLASH@", board.flash_bytes), ("@RAM@", board.ram_bytes),
                       ("0x00000000", f"{int(emu['flash_origin']):#x}"),
                       ("0x20000000", f"{int(emu['ram_origin']):#x}")):
        ld = ld.replace(key, str(value))
    (work / "link.ld").write_text(ld)
    elf = work / f"ops_{core}.elf"
    cmd = ["arm-none-eabi-gcc", *machine_flags(emu), *host.WARN_FLAGS, *flags, "-ffunction-sections",
           "-fdata-sections", *(f"-I{d}" for d in include_dirs), "--specs=nano.specs", "-nostartfiles",
           "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments", f"-T{work / 'link.ld'}",
           str(HERE / "startup.c"), *(str(s) for s in sources), "-o", str(elf), "-lm"]
    proc = subprocess.run(nice(cmd), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return elf


def run_elf(elf: Path, core: str, timeout: float = 120) -> list[str]:
    emu = load_board(f"qemu-{core}").emulator
    proc = subprocess.run([emu.get("qemu", "qemu-system-arm"), "-M", emu["machine"], "-cpu", emu["cpu"],
                           "-nographic", "-monitor", "none", "-serial", "null", "-icount", "shift=0",
                           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                          capture_output=True, text=True, timeout=timeout)
    lines = proc.stderr.splitlines()   # QEMU writes the semihosting console to stderr
    assert lines and lines[-1] == "done", f"exit {proc.returncode}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    return lines[:-1]


def check_on_core(model_bytes: bytes, core: str, work: Path, samples: int = 8, seed: int = 0,
                  options: dict | None = None):
    """The aot library of MODEL_BYTES, generated for CORE's board (the M0's has no DSP kernels), gives
    the TFLM runtime's outputs on CORE, byte for byte."""
    lib = model_library(model_bytes, board=load_board(f"qemu-{core}"), options=options)
    runner = Runner(model_bytes)
    xs = np.random.default_rng(seed).integers(-128, 128, (samples,) + runner.input_shape, dtype=np.int8)
    expected = np.stack([runner.run(x).reshape(-1) for x in xs])
    lines = run_elf(build_elf(lib, xs, expected.shape[1], core, Path(work)), core)
    got = np.stack([np.frombuffer(bytes.fromhex(line), dtype=np.int8) for line in lines])
    bad = np.argwhere(expected != got)
    assert bad.size == 0, (f"{core}: {len(bad)} of {expected.size} outputs differ; first at sample {bad[0][0]} "
                           f"index {bad[0][1]}: expected {expected[bad[0][0], bad[0][1]]}, "
                           f"got {got[bad[0][0], bad[0][1]]}")
    return lib
