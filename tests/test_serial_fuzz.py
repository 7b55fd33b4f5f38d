"""Hostile serial input against the real emulated firmware (qemu-m4): bursts of random bytes,
unterminated lines, huge/negative/junk numbers in every command, NULs and '%' storms, each
followed by a liveness probe, with a byte-exact inference every few bursts; and a run of ten
million inferences cut short by a single byte."""
from __future__ import annotations

import random
import re
import time

import numpy as np
import pytest
from conftest import mlperf_model
from qemu_fixtures import built_project

from tinyopt.flash import flash, stop
from tinyopt.serial_link import DeviceLink

BURSTS = 200
EXACT_EVERY = 10

COMMANDS = ["name", "profile", "timestamp", "results", "info", "infer", "db load", "db print", "db"]
JUNK_NUMBERS = ["-1", "0", "-0", "18446744073709551616", "99999999999999999999999", "1e9", "0x10",
                "1000000000000", "9999999", "4294967296", "640", "641", "+5", "5x", "", " ", ",", "1 2 3"]


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    project = built_project(tmp_path_factory.mktemp("serial-fuzz"))   # ad01, aot: 640 input bytes
    result = flash(project, keep_running=True)
    yield result
    stop(project)


def _burst(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:                                    # random bytes, '%' among them
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    if kind == 1:                                    # a command line that never ends
        return (rng.choice(COMMANDS) + " " + rng.choice(JUNK_NUMBERS)).encode()
    if kind == 2:                                    # junk numbers in every command
        return b"".join(f"{c} {rng.choice(JUNK_NUMBERS)} {rng.choice(JUNK_NUMBERS)}%".encode()
                        for c in rng.sample(COMMANDS, rng.randint(1, len(COMMANDS))))
    if kind == 3:                                    # NULs around a command
        return b"\x00" * rng.randint(1, 64) + b"name%" + b"\x00" * rng.randint(1, 64)
    if kind == 4:                                    # '%' storm
        return b"%" * rng.randint(1, 400)
    return b"x" * rng.randint(2049, 5000) + b"%"     # longer than the command buffer


def _probe(link: DeviceLink) -> None:
    """End whatever the burst left half-typed, then name% must be answered within 10 s
    (answers to the burst may still come first: they are skipped)."""
    link.serial.write(b"%name%")
    link.serial.flush()
    deadline = time.monotonic() + 10
    while link.read_line(deadline, "the name% probe") != "m-name-dut-[tinyopt]":
        pass
    assert link.read_line(deadline, "m-ready after name%") == "m-ready"
    link.drain(quiet_s=0.1, limit_s=2)


def test_hostile_bursts_never_take_the_device_away(device):
    from tinyopt.tflm_runtime import Runner
    runner = Runner(mlperf_model("ad01_int8.tflite").read_bytes())
    rng = random.Random(2024)
    data_rng = np.random.default_rng(5)
    failures = []
    with DeviceLink(device.port, timeout=10) as link:
        link.handshake()
        for n in range(1, BURSTS + 1):
            burst = _burst(rng)
            link.serial.write(burst)
            link.serial.flush()
            try:
                _probe(link)
                if n % EXACT_EVERY == 0:
                    x = data_rng.integers(-128, 128, 640, dtype=np.int8)
                    link.load_input(x.tobytes())
                    link.infer(1, 0, timeout=30)
                    _, got = link.results()
                    want = runner.run(x).reshape(-1).tolist()
                    if got != want:
                        failures.append((n, "results differ"))
            except Exception as err:   # collect, so one failure shows with its burst
                failures.append((n, f"{type(err).__name__}: {err}", burst[:80]))
                break
    assert not failures, failures


def test_ten_million_inferences_stop_at_one_byte(device):
    with DeviceLink(device.port, timeout=10) as link:
        link.handshake()
        # beyond the cap: refused at once
        lines = link.command("infer 1000000000000 0", allow_error=True)
        assert any(ln.startswith("m-error-[infer: at most") for ln in lines), lines
        link.serial.write(b"infer 9999999 0%")
        link.serial.flush()
        deadline = time.monotonic() + 10
        while link.read_line(deadline, "m-infer-start") != "m-infer-start-9999999":
            pass
        link.serial.write(b"n")      # one byte stops the run; it starts the next command
        link.serial.flush()
        sent = time.monotonic()
        line = link.read_line(time.monotonic() + 5, "the interruption")
        wall = time.monotonic() - sent
        m = re.match(r"^m-error-\[infer interrupted in infer after (\d+) of 9999999 runs, (\d+) us\]$", line)
        assert m, line
        runs, emulated_us = int(m.group(1)), int(m.group(2))
        assert 0 <= runs < 9999999
        assert emulated_us < 1_000_000, f"stopped after {emulated_us} emulated µs"
        assert wall < 2.0
        assert link.read_line(time.monotonic() + 5, "m-ready") == "m-ready"
        # the stopping byte was kept: "n" + "ame%" is the next command
        assert "m-name-dut-[tinyopt]" in link.command("ame", timeout=5)


def test_line_ends_after_infer_do_not_stop_it(device):
    with DeviceLink(device.port, timeout=10) as link:
        link.handshake()
        link.serial.write(b"infer 50 1%\r\n")   # what a terminal user types
        link.serial.flush()
        lines = []
        deadline = time.monotonic() + 30
        while (ln := link.read_line(deadline, "m-ready")) != "m-ready":
            lines.append(ln)
        assert "m-infer-done" in lines and not any(ln.startswith("m-error") for ln in lines), lines
