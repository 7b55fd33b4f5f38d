"""The aot backend on the target architecture: a generated qemu-m4 project built with
PlatformIO (arm-none-eabi-gcc, Cortex-M4F) and run in QEMU passes its golden check and
gives the TFLM runtime's int8 outputs for further random inputs sent over the serial
protocol."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import mlperf_model, run_tinyopt

from tinyopt.tflm_runtime import Runner


def _pio() -> str | None:
    return shutil.which("pio") or (str(Path(sys.executable).with_name("pio"))
                                   if Path(sys.executable).with_name("pio").exists() else None)


class _Serial:
    """QEMU's UART on stdio, read by a thread."""

    def __init__(self, elf: Path):
        self.proc = subprocess.Popen(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
                                      "-serial", "stdio", "-icount", "shift=0", "-kernel", str(elf)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("ascii", "replace").strip())

    def wait_for(self, pattern: str, start: int = 0, timeout: float = 60.0) -> int:
        end = time.time() + timeout
        while time.time() < end:
            for i in range(start, len(self.lines)):
                if re.search(pattern, self.lines[i]):
                    return i
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} from the firmware; got:\n" + "\n".join(self.lines[-20:]))

    def command(self, text: str, until: str = r"^m-ready$", timeout: float = 60.0) -> list[str]:
        start = len(self.lines)
        self.proc.stdin.write(text.encode() + b"%")
        self.proc.stdin.flush()
        end = self.wait_for(until, start, timeout)
        return self.lines[start:end + 1]

    def close(self):
        self.proc.kill()
        self.proc.wait()


def _model(name: str, tmp_path: Path) -> Path:
    if name.endswith(".tflite"):
        return mlperf_model(name)
    from test_aot_ops import CASES  # a schema-built model (sparse layers)
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(CASES[name]())
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "ad01_int8.tflite", "pretrainedResnet_quant.tflite",
                                  "conv_sparse_75", "fc_sparse_80", "depthwise_mult2_stride2"])
def test_aot_firmware_bit_exact_on_emulated_cortex_m4(name, tmp_path):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed")
    pio = _pio()
    if pio is None:
        pytest.skip("PlatformIO (pio) not installed")
    model = _model(name, tmp_path)
    proj = tmp_path / "fw"
    run_tinyopt("generate", model, "--board", "qemu-m4", "--backend", "aot", "-o", proj, check=True)
    meta = json.loads((proj / "tinyopt_project.json").read_text())
    assert meta["backend"] == "aot"
    build = subprocess.run(["nice", "-n", "10", pio, "run", "-d", str(proj), "-j", "2"], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-2000:]
    elf = sorted((proj / ".pio/build").glob("*/*.elf"))[0]
    runner = Runner(model.read_bytes())
    rng = np.random.default_rng(7)
    serial = _Serial(elf)
    try:
        serial.wait_for(r"^m-golden-pass$")
        serial.wait_for(r"^m-ready$")
        info = serial.command("info")
        assert "m-info-backend-[aot]" in info
        for _ in range(3):
            x = rng.integers(-128, 128, runner.input_shape, dtype=np.int8).reshape(-1)
            serial.command(f"db load {x.size}", r"Expecting")
            hexes = x.view(np.uint8).tobytes().hex()
            for i in range(0, len(hexes), 256):
                serial.command("db " + hexes[i:i + 256], r"^m-(ready|load-done)$")
            serial.command("infer 1 0")
            res = serial.command("results")
            line = next(l for l in res if l.startswith("m-results-int8-["))
            got = np.array([int(v) for v in line[len("m-results-int8-["):-1].split(",")], np.int8)
            np.testing.assert_array_equal(got, runner.run(x).reshape(-1))
    finally:
        serial.close()
