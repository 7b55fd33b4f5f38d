"""The MLPerf Tiny harness (firmware_templates/common/tinyopt_harness.c) against malformed or
extreme commands, on the real emulated firmware (qemu-m4): every command, bad or not, ends
in m-ready; a rejected command changes nothing; numbers never wrap. Plus the cycle count of
long runs with a 32-bit counter (ESP32-like glue, compiled for the host)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import mlperf_model
from qemu_fixtures import built_project

from tinyopt.flash import flash, stop
from tinyopt.serial_link import DeviceLink

STUBS = Path(__file__).parent / "stubs"
U64_PLUS_1 = str(2**64 + 1)        # wraps to 1 in an unchecked 64-bit parse


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    project = built_project(tmp_path_factory.mktemp("robust"))
    result = flash(project, keep_running=True)
    try:
        with DeviceLink(result.port, timeout=10) as link:
            link.handshake()
            yield link
    finally:
        stop(project)


def ask(link: DeviceLink, cmd: str) -> list[str]:
    """CMD's protocol lines (m-ready seen: DeviceLink.command waits for it, bounded)."""
    return link.command(cmd, timeout=10, allow_error=True)


def load(link: DeviceLink, data: bytes) -> None:
    assert ask(link, f"db load {len(data)}") == [f"m-[Expecting {len(data)} bytes]"]
    assert ask(link, "db " + data.hex()) == ["m-load-done"]


def test_bad_hex_chunk_stores_nothing_and_can_be_resent(device):
    load(device, bytes([0xAA] * 4))
    assert ask(device, "db load 4") == ["m-[Expecting 4 bytes]"]
    assert ask(device, "db 0011zz") == ["m-error-[db: not a hex byte]"]
    assert ask(device, "db print 4") == ["m-buffer-aaaaaaaa"]      # nothing half-stored
    assert ask(device, "db 00112233") == ["m-load-done"]           # the resent chunk fits
    assert ask(device, "db print 4") == ["m-buffer-00112233"]


def test_chunk_past_the_announced_count_is_rejected_whole(device):
    assert ask(device, "db load 4") == ["m-[Expecting 4 bytes]"]
    assert ask(device, "db 0102030405") == ["m-error-[db: more bytes than announced by db load]"]
    assert ask(device, "db 0102") == []
    assert ask(device, "db 0304") == ["m-load-done"]
    assert ask(device, "db print 4") == ["m-buffer-01020304"]


def test_empty_chunk_is_an_error_not_a_load_done(device):
    assert ask(device, "db load 2") == ["m-[Expecting 2 bytes]"]
    assert ask(device, "db") == ["m-error-[db: no hex bytes]"]
    assert ask(device, "db abcd") == ["m-load-done"]


def test_infer_refuses_a_half_loaded_input(device):
    assert ask(device, "db load 4") == ["m-[Expecting 4 bytes]"]
    assert ask(device, "db 0102") == []
    lines = ask(device, "infer 1 0")
    assert len(lines) == 1 and lines[0].startswith("m-error-[db load not finished"), lines
    assert ask(device, "db 0304") == ["m-load-done"]
    assert "m-infer-done" in ask(device, "infer 1 0")


@pytest.mark.parametrize("cmd", [f"db load {U64_PLUS_1}", "db load 5x", "db load 1 2",
                                 "infer 0", "infer -1", "infer 2x", f"infer {U64_PLUS_1}",
                                 f"infer 1 {U64_PLUS_1}", "infer 1 0 7", "db print 4x"])
def test_bad_numbers_are_errors(device, cmd):
    lines = ask(device, cmd)
    assert len(lines) == 1 and lines[0].startswith("m-error-["), lines
    assert ask(device, "name") == ["m-name-dut-[tinyopt]"]


def test_db_print_clamps_counts_and_offsets_that_do_not_fit_32_bits(device):
    data = bytes(range(256)) * 2 + bytes(range(128))               # the model's 640 input bytes
    load(device, data)
    assert ask(device, f"db print 4 {2**32}") == []                 # offset past the end
    assert ask(device, f"db print {2**32 + 2} 636") == ["m-buffer-" + data[636:].hex()]
    assert ask(device, "db print 2,3") == ["m-buffer-0304"]


def test_infer_with_separators_and_defaults_still_runs(device):
    lines = ask(device, "infer 2,1")
    assert lines[:3] == ["m-warmup-start-1", "m-warmup-done", "m-infer-start-2"]
    assert "m-infer-done" in lines
    assert ask(device, "infer")[2] == "m-infer-start-1"


def test_cycle_count_over_many_counter_wraps(tmp_path):
    """4 runs of 3e9 cycles each on a 32-bit counter: the harness must read the counter after
    every run, or the glue's 64-bit extension misses wraps (ESP32 at 240 MHz: 17.9 s)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed (Debian: build-essential)")
    from tinyopt.codegen.generate import generate
    project = generate(mlperf_model("ad01_int8.tflite"), "qemu-m4", backend="aot", out=tmp_path / "fw")
    src, lib = project.path / "src", project.path / "lib/tinyopt_model"
    binary = tmp_path / "harness-counter32"
    subprocess.run([gcc, "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{src}", f"-I{lib}",
                    str(src / "tinyopt_harness.c"), *map(str, sorted(lib.glob("*.c"))),
                    str(STUBS / "platform_counter32.c"), "-Wl,--wrap=tinyopt_model_invoke", "-lm",
                    "-o", str(binary)], check=True, timeout=120)
    out = subprocess.run([str(binary)], input="infer 4 0%", capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert "m-golden-pass" in out
    laps = [int(ln[len("m-lap-us-"):]) for ln in out if ln.startswith("m-lap-us-")]
    assert laps[1] - laps[0] == 4 * 3_000_000                       # 1 GHz virtual clock
    assert "m-infer-cycles-12000000000" in out, [ln for ln in out if "cycles" in ln]
    assert out[-1] == "m-ready"
