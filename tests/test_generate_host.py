"""The generated firmware, compiled for the host with g++ against a TFLM source tree
(TINYOPT_TFLM_DIR) and driven over its pseudo-terminal like a board, by tinyopt's own
serial client (tinyopt.serial_link), not by reading stdout: golden check, every
MLPerf Tiny command, and outputs for 20 inputs sent with `db load` equal to the
tflite_micro runtime's, byte for byte."""
from __future__ import annotations

import re
import subprocess
import time

import numpy as np
import pytest
from conftest import mlperf_model
from host_build import build_host_firmware, tflm_tree_from_env
from tiny_models import tiny_cnn

from tinyopt.codegen.generate import generate
from tinyopt.serial_link import DeviceLink
from tinyopt.tflm_runtime import Runner

pytestmark = pytest.mark.slow


def _tree():
    tree = tflm_tree_from_env()
    if tree is None:
        pytest.skip("TINYOPT_TFLM_DIR not set: no TFLM source tree to compile the firmware against")
    return tree


class Device:
    """tinyopt's own serial client (tinyopt.serial_link.DeviceLink) on the firmware's pty."""

    def __init__(self, port: str, timeout: float = 30.0):
        self.link = DeviceLink(port, 115200, timeout=timeout).open()

    def boot_lines(self) -> list[str]:
        deadline = time.monotonic() + 30
        lines = [self.link.read_line(deadline, "the boot lines")]
        while lines[-1] != "m-ready":
            lines.append(self.link.read_line(deadline, "the boot lines"))
        return lines

    def command(self, text: str) -> list[str]:
        """The answer's lines, m-ready included (errors are answers here, not failures)."""
        return self.link.command(text, allow_error=True) + ["m-ready"]

    def close(self):
        self.link.close()


@pytest.fixture
def firmware(tmp_path):
    """Generate, compile and start the host firmware for a model; yields (Device, project)."""
    procs = []
    tree = _tree()   # skip before any model is built

    def start(model_path, name_hint: str):
        project = generate(model_path, "host", out=tmp_path / f"fw-{name_hint}")
        binary = build_host_firmware(project.path, tree, tmp_path / f"bin-{name_hint}" / "firmware")
        proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        first = proc.stdout.readline()
        match = re.search(r"char device redirected to (/dev/pts/\d+)", first)
        assert match, f"no pty announced: {first!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        device = Device(match.group(1))
        return device, project, proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _results(line: str) -> list[float]:
    return [float(v) for v in re.fullmatch(r"m-results-\[(.*)\]", line).group(1).split(",")]


def _check_protocol(device: Device, project, raw: bytes, inputs: int = 20):
    meta = project.metadata
    boot = device.boot_lines()
    assert boot == ["m-golden-pass", "m-init-done", "m-ready"], boot
    hello = device.link.handshake()
    assert (hello.name, hello.model) == ("tinyopt", meta["model"]["name"])
    assert hello.extra["backend"] == "tflm" and hello.extra["input-bytes"] == meta["input"]["bytes"]

    assert device.command("name") == ["m-name-dut-[tinyopt]", "m-ready"]
    assert device.command("profile") == ["m-profile-[tinyopt]", f"m-model-[{meta['model']['name']}]", "m-ready"]
    t1 = int(re.fullmatch(r"m-lap-us-(\d+)", device.command("timestamp")[0]).group(1))
    time.sleep(0.05)
    t2 = int(re.fullmatch(r"m-lap-us-(\d+)", device.command("timestamp")[0]).group(1))
    assert 40_000 <= t2 - t1 < 5_000_000
    info = device.command("info")
    arena = int(re.search(r"m-info-arena-bytes-\[(\d+)\]", "\n".join(info)).group(1))
    assert "m-info-backend-[tflm]" in info and "m-info-timer-[clock_monotonic]" in info
    assert f"m-info-input-bytes-[{meta['input']['bytes']}]" in info
    assert f"m-info-output-bytes-[{meta['output']['bytes']}]" in info
    assert f"m-info-model-sha-[{meta['model']['sha256'][:16]}]" in info
    # the device's arena use (64-bit host: same tail as the runtime) fits what was allocated
    assert 0 < arena <= meta["arena"]["firmware_bytes"]
    assert device.command("bogus") == ["m-error-[unknown command]", "m-ready"]

    runner = Runner(raw)
    scale, zp = meta["output"]["scale"], meta["output"]["zero_point"]
    rng = np.random.default_rng(11)
    for k in range(inputs):
        x = rng.integers(-128, 128, size=meta["input"]["bytes"], dtype=np.int8)
        device.link.load_input(x.tobytes())
        if k == 0:   # db print shows what was loaded
            dump = device.command("db print 40 8")
            assert "".join(l[len("m-buffer-"):] for l in dump[:-1]) == x.tobytes()[8:48].hex()
        expected = runner.run(x).reshape(-1)
        warm = 1 if k == 0 else 0
        lines = device.command(f"infer 2 {warm}")
        assert lines[:3] == [f"m-warmup-start-{warm}", "m-warmup-done", "m-infer-start-2"], lines
        t0, t1 = (int(re.fullmatch(r"m-lap-us-(\d+)", l).group(1)) for l in lines[3:5])
        assert t1 >= t0
        assert lines[5] == "m-infer-done"
        assert re.fullmatch(r"m-infer-cycles-\d+", lines[7]) and lines[8] == "m-ready"
        deq = (expected.astype(np.float32) - zp) * np.float32(scale)
        assert np.allclose(_results(lines[6]), deq, atol=0.0015), (lines[6], deq)
        floats, ints = device.link.results()
        assert np.array_equal(np.array(ints), expected.astype(int)), (k, ints, expected)
        assert floats == _results(lines[6])


def test_host_firmware_tiny_cnn(firmware):
    model = tiny_cnn()
    device, project, proc = firmware(model, "cnn")
    _check_protocol(device, project, model.read_bytes())
    device.close()
    assert proc.wait(timeout=10) == 0   # closing the port ends the host firmware


def test_host_firmware_demo(firmware, demo_int8_tflite):
    device, project, proc = firmware(demo_int8_tflite, "demo")
    _check_protocol(device, project, demo_int8_tflite.read_bytes())
    device.close()
    assert proc.wait(timeout=10) == 0


def test_host_firmware_resnet8(firmware):
    model = mlperf_model("pretrainedResnet_quant.tflite")
    device, project, proc = firmware(model, "resnet")
    _check_protocol(device, project, model.read_bytes())
    device.close()
    assert proc.wait(timeout=10) == 0


def test_golden_mismatch_is_reported(firmware, tmp_path):
    """The boot check can fail: a project whose expected output was altered says so."""
    tree = _tree()
    project = generate(tiny_cnn(), "host", out=tmp_path / "fw-bad")
    header = project.path / "src/tinyopt_golden.h"
    text = header.read_text()
    head, tail = text.split("tinyopt_golden_output[", 1)
    first = re.search(r"-?\d+", tail.split("{", 1)[1]).group(0)
    bad = str(0 if int(first) != 0 else 1)
    tail = tail.replace("{\n  " + first, "{\n  " + bad, 1)
    header.write_text(head + "tinyopt_golden_output[" + tail)
    binary = build_host_firmware(project.path, tree, tmp_path / "bin-bad" / "firmware")
    proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        port = re.search(r"(/dev/pts/\d+)", proc.stdout.readline()).group(1)
        device = Device(port)
        assert device.boot_lines() == ["m-golden-fail-[mismatches=1]", "m-init-done", "m-ready"]
        device.close()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_bad_db_commands_answer_errors(firmware):
    device, project, _ = firmware(tiny_cnn(), "errors")
    device.boot_lines()
    too_many = project.metadata["input"]["bytes"] + 1
    assert device.command(f"db load {too_many}")[0].startswith("m-error-[")
    assert device.command("db load 2") == ["m-[Expecting 2 bytes]", "m-ready"]
    assert device.command("db 0g1")[0] == "m-error-[db: odd number of hex digits]"
    assert device.command("db zz11")[0] == "m-error-[db: not a hex byte]"
    assert device.command("db 0102") == ["m-load-done", "m-ready"]
    assert device.command("db 03")[0] == "m-error-[db: more bytes than announced by db load]"
    assert device.command("x" * 3000) == ["m-error-[command too long]", "m-ready"]
    assert device.command("name") == ["m-name-dut-[tinyopt]", "m-ready"]
    device.close()
