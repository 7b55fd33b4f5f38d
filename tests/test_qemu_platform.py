"""The emulated boards as PlatformIO sees them (qemu-m4 for the build steps): the offline bootstrap, the dev-platform's
build and size report, upload (= starting QEMU), --keep-running / --stop."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error, mlperf_model, run_tinyopt
from qemu_fixtures import built_project, require_emulator

from tinyopt import platformio
from tinyopt.boards import load_board
from tinyopt.paths import BOARDS_DIR, PROJECT_ROOT

PLATFORM = BOARDS_DIR / "platform-qemu"
EMULATED = sorted(p.stem for p in BOARDS_DIR.glob("*.toml") if load_board(p.stem).emulated)


def test_every_emulated_board_is_one_platform_board_overridden_from_its_file():
    assert {"qemu-m0", "qemu-m4", "qemu-m7", "qemu-m33", "qemu-m55"} <= set(EMULATED)
    manifests = sorted(p.name for p in (PLATFORM / "boards").iterdir())
    assert manifests == ["qemu-cortex-m.json"]
    for name in EMULATED:
        board = load_board(name)
        assert board.family == "qemu" and board.platformio["board"] == "qemu-cortex-m"
        e = board.emulator
        # ticks x instructions_per_tick = instructions: 1e9 ns / systick_hz / 2^shift
        assert 1e9 / e["systick_hz"] / 2 ** e["icount_shift"] == e["instructions_per_tick"], name
        assert e["uart"] in ("cmsdk", "nrf51") and e["irq_lines"] % 32 == 0
        assert e["stack_bytes"] < board.ram_bytes and e["stack_bytes"] <= board.runtime_ram_bytes


@pytest.mark.parametrize("name", EMULATED)
def test_generated_platformio_ini_carries_the_board_files_machine(tmp_path, name, demo_int8_tflite):
    from platformio.project.config import ProjectConfig

    from tinyopt.codegen.generate import generate
    board = load_board(name)
    project = generate(demo_int8_tflite, name, backend="aot", out=tmp_path / "p")
    cfg = ProjectConfig(str(project.path / "platformio.ini"))
    env = f"env:{name.replace('-', '_')}"
    e = board.emulator
    assert cfg.get(env, "board_qemu.machine") == e["machine"]
    assert cfg.get(env, "board_build.cpu") == e["cpu"]
    assert int(cfg.get(env, "board_upload.maximum_size")) == board.flash_bytes
    assert int(cfg.get(env, "board_upload.maximum_ram_size")) == board.ram_bytes
    ld = (project.path / "qemu.ld").read_text()
    assert f"ORIGIN = 0x{e['flash_origin']:08X}, LENGTH = {board.flash_bytes}" in ld
    assert f"ORIGIN = 0x{e['ram_origin']:08X}, LENGTH = {board.ram_bytes}" in ld
    glue = (project.path / "src" / "platform_qemu.c").read_text()
    assert f"#define UART_BASE 0x{e['uart_base']:08X}u" in glue


def test_parse_size_report():
    text = ("Checking size .pio/build/x/firmware.elf\n"
            "RAM:   [          ]   0.1% (used 3744 bytes from 4194304 bytes)\n"
            "Flash: [=         ]   6.8% (used 283912 bytes from 4194304 bytes)\n")
    assert platformio.parse_size_report(text) == {"RAM": (3744, 4194304), "Flash": (283912, 4194304)}
    assert platformio.parse_size_report("no report") == {}


def test_offline_bootstrap_leaves_platformio_ready():
    platformio.ensure_platformio()
    proc = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "pio_offline.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tool-scons present" in proc.stdout


def test_offline_package_templates_hold_no_third_party_code():
    folder = PROJECT_ROOT / "scripts" / "pio-offline" / "tool-scons"
    assert sorted(p.name for p in folder.iterdir()) == ["package.json", "scons.py"]
    assert json.loads((folder / "package.json").read_text())["name"] == "tool-scons"


def test_build_reports_sizes_like_a_real_board(tmp_path):
    project = built_project(tmp_path)
    result = platformio.build(project, load_board("qemu-m4"))
    assert result.elf is not None and result.elf.name == "firmware.elf"
    assert (result.elf.parent / "firmware.bin").is_file()
    # ad01: ~270 kB of int8 weights in flash, activations in RAM
    assert 250_000 < result.flash_bytes < 1_000_000
    assert 0 < result.ram_bytes < 100_000
    assert result.flash_max == result.ram_max == 4 * 1024 * 1024
    size = subprocess.run(["arm-none-eabi-size", "-A", "-d", str(result.elf)], capture_output=True,
                          text=True, check=True).stdout
    sections = {ln.split()[0]: int(ln.split()[1]) for ln in size.splitlines() if ln.startswith(".")}
    assert result.ram_bytes == sections.get(".data", 0) + sections.get(".bss", 0)
    # the vector table is at 0 and the reset vector points into the code
    assert sections[".isr_vector"] > 0


def test_flash_keep_running_then_stop_from_the_cli(tmp_path):
    project = built_project(tmp_path)
    proc = run_tinyopt("flash", project, "--keep-running", timeout=300)
    assert proc.returncode == 0, proc.stderr
    port = proc.stdout.strip()
    assert port.startswith("/dev/") and os.path.exists(port)
    assert (project / ".tinyopt" / "port").read_text().strip() == port
    assert "m-golden-pass" in proc.stderr
    pid = int((project / ".tinyopt" / "pid").read_text())
    os.kill(pid, 0)                                   # running
    proc = run_tinyopt("flash", project, "--stop", timeout=60)
    assert proc.returncode == 0 and "emulator stopped" in proc.stderr
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not (project / ".tinyopt" / "port").exists()


def test_measure_without_a_running_emulator_says_how_to_start_it(tmp_path):
    project = built_project(tmp_path)
    proc = run_tinyopt("measure", project, timeout=60)
    assert_one_line_error(proc, "not running", "--keep-running")


def test_tflm_project_without_tree_fails_clearly(tmp_path, monkeypatch):
    require_emulator()
    from tinyopt.codegen.generate import generate
    monkeypatch.delenv("TINYOPT_TFLM_DIR", raising=False)
    project = generate(mlperf_model("ad01_int8.tflite"), "qemu-m4", backend="tflm", out=tmp_path / "p")
    from tinyopt.errors import TinyoptError
    with pytest.raises(TinyoptError, match="TINYOPT_TFLM_DIR"):
        platformio.build(project.path, load_board("qemu-m4"))


@pytest.mark.slow
def test_offline_bootstrap_from_an_empty_platformio_home(tmp_path):
    """A fresh PlatformIO home (as on a CI runner): the bootstrap installs tool-scons from
    PyPI's scons under owner platformio, and `pio run` then builds the emulated board."""
    project = built_project(tmp_path)               # skips without the toolchain
    env = dict(os.environ, PLATFORMIO_CORE_DIR=str(tmp_path / "pio-home"),
               PLATFORMIO_SETTING_ENABLE_TELEMETRY="No")
    script = str(PROJECT_ROOT / "scripts" / "pio_offline.py")
    check = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True, env=env, timeout=60)
    assert check.returncode == 1 and "missing" in check.stdout
    proc = subprocess.run([sys.executable, script, "--force"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    meta = json.loads((tmp_path / "pio-home" / "packages" / "tool-scons" / ".piopm").read_text())
    assert meta["spec"]["owner"] == "platformio" and meta["version"] == "4.41101.0"
    build = subprocess.run([sys.executable, "-m", "platformio", "run", "-d", str(project)],
                           capture_output=True, text=True, env=env, timeout=600)
    assert build.returncode == 0, build.stdout[-2000:]
    assert platformio.parse_size_report(build.stdout)["Flash"][0] > 0
