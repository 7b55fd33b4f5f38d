"""The MLPerf Tiny serial client against the real emulated firmware (qemu-m4): every failure
ends within its timeout with a clear error, never a hang; measurements repeat."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from conftest import assert_one_line_error, run_tinyopt
from qemu_fixtures import Relay, built_project

from tinyopt.flash import emulator_state, flash, stop
from tinyopt.measure import MeasureError, measure
from tinyopt.serial_link import DeviceLink, DeviceReset, LinkError


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return built_project(tmp_path_factory.mktemp("serial"))


@pytest.fixture
def running(project):
    result = flash(project, keep_running=True)
    yield result
    stop(project)


def test_port_that_does_not_exist_fails_at_once():
    start = time.monotonic()
    with pytest.raises(LinkError, match="does not exist"):
        DeviceLink("/dev/tinyopt-no-such-port", timeout=2).open()
    assert time.monotonic() - start < 1


def test_port_that_does_not_exist_is_one_line_from_the_cli():
    proc = run_tinyopt("measure", "--board", "qemu-m4", "--port", "/dev/tinyopt-no-such-port", timeout=60)
    assert_one_line_error(proc, "/dev/tinyopt-no-such-port", "does not exist")


def test_firmware_that_never_answers_times_out():
    master, slave = os.openpty()        # a port nobody serves
    try:
        port = os.ttyname(slave)
        start = time.monotonic()
        with pytest.raises(LinkError, match="no answer from the device") as err:
            with DeviceLink(port, timeout=1.0) as link:
                link.handshake(retries=2)
        elapsed = time.monotonic() - start
        assert elapsed < 2 * (1.0 + 2.0) + 2, elapsed    # two tries, each timeout + drain
        assert "name" in err.value.message
    finally:
        os.close(master)
        os.close(slave)


def test_handshake_and_info_from_the_real_firmware(running):
    with DeviceLink(running.port, timeout=5) as link:
        info = link.handshake()
    assert info.name == "tinyopt"
    assert info.model == "ad01_int8"
    assert info.extra["backend"] == "aot"
    assert info.extra["timer"] == "systick-icount"
    assert info.extra["input-bytes"] == 640


def test_emulator_killed_mid_run_gives_error_and_partial_figures(project, running):
    pid = running.pid
    outcome = {}

    def run():
        try:
            measure(project, runs=400, windows=200, check_outputs=False, timeout=5)
        except MeasureError as err:
            outcome["err"] = err

    t = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    t.start()
    time.sleep(3.0)                      # a few windows in
    os.kill(pid, signal.SIGKILL)
    t.join(30)
    assert not t.is_alive(), "the client hung after the emulator was killed"
    err = outcome.get("err")
    assert err is not None, "killing the emulator went unnoticed"
    assert "lost" in err.message or "no answer" in err.message, err.message
    assert "figures so far" in err.message
    assert err.partial.complete is False
    assert err.partial.latency_us is not None and err.partial.latency_us["median"] > 0
    assert time.monotonic() - start < 30


def test_garbage_bytes_between_lines_give_a_clear_error(running):
    relay = Relay(running.port, lambda line: line + b"\x00\xfe\x81garbage")
    try:
        start = time.monotonic()
        with pytest.raises(LinkError, match="garbled data"):
            with DeviceLink(relay.port, timeout=5) as link:
                link.handshake()
        assert time.monotonic() - start < 10
    finally:
        relay.close()


def test_device_reset_mid_exchange_is_reported(running):
    armed = threading.Event()

    def banner_again(line: bytes) -> bytes:
        # once armed, the firmware's boot banner shows up before its next m-ready
        if armed.is_set() and line.strip() == b"m-ready":
            armed.clear()
            return b"m-golden-pass\r\nm-init-done\r\n" + line
        return line

    relay = Relay(running.port, banner_again)
    try:
        with DeviceLink(relay.port, timeout=5) as link:
            link.handshake()
            armed.set()
            start = time.monotonic()
            with pytest.raises(DeviceReset, match="reset while running 'infer 2 0'"):
                link.infer(2, 0, timeout=10)
            assert time.monotonic() - start < 10
    finally:
        relay.close()


@pytest.mark.slow
def test_two_measurements_of_the_same_firmware_agree_within_1_percent(project, running):
    first = measure(project, windows=3, runs=50, check_outputs=False)
    second = measure(project, windows=3, runs=50, check_outputs=False)
    a, b = first.cycles["median"], second.cycles["median"]
    assert a > 0 and b > 0
    assert abs(a - b) / a < 0.01, (a, b)
    # -icount makes it repeat to the SysTick tick (40 instructions) per window of 50
    assert abs(a - b) <= 40
    assert emulator_state(project)["pid"] == running.pid


def test_port_discovery_lists_the_ports_it_saw_when_none_matches():
    from tinyopt.serial_link import find_port, list_ports
    seen = [p.device for p in list_ports()]
    with pytest.raises(LinkError, match="no serial port of testboard found") as err:
        find_port(["FFFF:FFFE"], "testboard")
    assert "FFFF:FFFE" in err.value.message
    assert "--port" in err.value.hint
    for device in seen:
        assert device in err.value.message
