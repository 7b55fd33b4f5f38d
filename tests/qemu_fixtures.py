"""Helpers for tests that run firmware on the emulated board qemu-m4: skip reasons, a
generated + built project, and a pty relay that can corrupt the link between the real
emulated firmware and the client."""
from __future__ import annotations

import os
import select
import shutil
import threading
import tty
from pathlib import Path

import pytest
from conftest import mlperf_model


def require_emulator() -> None:
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (Debian: gcc-arm-none-eabi, qemu-system-arm)")


def built_project(folder: Path, model: str = "ad01_int8.tflite", backend: str = "aot") -> Path:
    """An MLPerf Tiny model generated for qemu-m4 and built with PlatformIO."""
    require_emulator()
    from tinyopt import platformio
    from tinyopt.boards import load_board
    from tinyopt.codegen.generate import generate
    project = generate(mlperf_model(model), "qemu-m4", backend=backend, out=folder / "project")
    platformio.build(project.path, load_board("qemu-m4"))
    return project.path


class Relay:
    """A second pty between the client and QEMU's pty. Device-to-client bytes pass through
    `mangle(line) -> bytes` one line at a time; client-to-device bytes pass unchanged."""

    def __init__(self, device_port: str, mangle):
        self.dev = os.open(device_port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.dev)
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave          # held open so the relay's writes are never dropped
        self.mangle = mangle
        # The threads wait in select() on a wake-up pipe as well, so that close() can stop
        # and join them before the descriptors close: a thread still inside os.read() on a
        # closed number would read from whatever the next open() reuses it for (the next
        # test's own link to the same pty), stealing its bytes.
        self._wake_r, self._wake_w = os.pipe()
        self._threads = [threading.Thread(target=self._down, daemon=True),
                         threading.Thread(target=self._up, daemon=True)]
        for t in self._threads:
            t.start()

    def _read(self, fd) -> bytes:
        ready, _, _ = select.select([fd, self._wake_r], [], [])
        if self._wake_r in ready:
            return b""
        return os.read(fd, 4096)

    def _down(self):
        buf = b""
        while True:
            try:
                data = self._read(self.dev)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    os.write(self.master, self.mangle(line + b"\n"))
                except OSError:
                    return

    def _up(self):
        while True:
            try:
                data = self._read(self.master)
            except OSError:
                return
            if not data:
                return
            try:
                os.write(self.dev, data)
            except OSError:
                return

    def close(self):
        os.write(self._wake_w, b"x")
        for t in self._threads:
            t.join(timeout=5)
        for fd in (self.dev, self.master, self._slave, self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
