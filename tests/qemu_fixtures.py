"""Helpers for tests that run firmware on the emulated board qemu-m4: skip reasons, a
generated + built project, and a pty relay that can corrupt the link between the real
emulated firmware and the client."""
from __future__ import annotations

import os
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
    from tinyopt.codegen.project import generate
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
        self.stopped = False
        threading.Thread(target=self._down, daemon=True).start()
        threading.Thread(target=self._up, daemon=True).start()

    def _down(self):
        buf = b""
        while not self.stopped:
            try:
                data = os.read(self.dev, 4096)
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
        while not self.stopped:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            try:
                os.write(self.dev, data)
            except OSError:
                return

    def close(self):
        self.stopped = True
        for fd in (self.dev, self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
