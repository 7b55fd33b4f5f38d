#!/usr/bin/env python3
"""Start and stop the emulated board for one PlatformIO project (standard library only).

`start` is the dev-platform's upload: it ends any emulator still running for the project
(re-flashing resets a board), starts qemu-system-arm paused (-S) with UART0 on a
pseudo-terminal and the monitor on a unix socket, opens the pty, resumes the guest with
`cont`, shows the boot banner (golden check, m-init-done, m-ready) and closes the pty.
QEMU drops guest output while nobody holds the pty open; the firmware
only speaks when spoken to after its banner, so clients that open the port later lose
nothing. QEMU keeps running in its own session; the port path, pid and monitor socket
are recorded in PROJECT/.tinyopt/ (port, pid, monitor, qemu.log).

`stop` ends that emulator (monitor `quit`, then SIGTERM/SIGKILL)."""
from __future__ import annotations

import argparse
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import time
import tty
from pathlib import Path

PTY_RE = re.compile(rb"char device redirected to (/dev/\S+)")


def state_dir(project: Path) -> Path:
    path = project / ".tinyopt"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _is_qemu(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)   # no /proc (macOS): trust the pid file if the process exists
            return True
        except OSError:
            return False
    return b"qemu-system" in cmdline


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as ended
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


def _monitor(sock_path: str, command: str, timeout: float = 3.0) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock_path)
            s.sendall(command.encode() + b"\n")
            time.sleep(0.1)
        return True
    except OSError:
        return False


def stop(project: Path) -> bool:
    """End the project's emulator; True if one was running."""
    sdir = state_dir(project)
    pid_text = _read(sdir / "pid")
    monitor = _read(sdir / "monitor")
    was_running = False
    if pid_text and pid_text.isdigit() and _is_qemu(int(pid_text)) and _alive(int(pid_text)):
        pid = int(pid_text)
        was_running = True
        if monitor:
            _monitor(monitor, "quit")
        for sig, wait in ((None, 2.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            if sig is not None:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
            deadline = time.monotonic() + wait
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _alive(pid):
                break
    for name in ("pid", "port", "monitor"):
        try:
            (sdir / name).unlink()
        except FileNotFoundError:
            pass
    if monitor:
        try:
            os.unlink(monitor)
        except OSError:
            pass
    return was_running


def _wait_for_pty(log: Path, proc: subprocess.Popen, deadline: float) -> str:
    while time.monotonic() < deadline:
        data = log.read_bytes() if log.exists() else b""
        match = PTY_RE.search(data)
        if match:
            return match.group(1).decode()
        if proc.poll() is not None:
            raise RuntimeError(f"qemu-system-arm exited with status {proc.returncode}:\n"
                               + data.decode(errors="replace")[-2000:])
        time.sleep(0.05)
    raise RuntimeError("qemu-system-arm did not announce its serial pty in time")


def _read_banner(fd: int, deadline: float) -> list[str]:
    """Lines up to the first m-ready after m-init-done (or a fatal m-error)."""
    buf = b""
    lines: list[str] = []
    seen_init = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, min(0.2, deadline - time.monotonic())))
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:   # EIO: QEMU ended (fault, exit)
            break
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            text = raw.decode(errors="replace").strip()
            if not text:
                continue
            lines.append(text)
            if text == "m-init-done":
                seen_init = True
            elif text == "m-ready" and seen_init:
                return lines
    raise RuntimeError("no boot banner (m-init-done, m-ready) from the firmware in time; "
                       "lines seen: " + " | ".join(lines[-10:]))


def start(elf: Path, project: Path, qemu: str, machine: str, cpu: str, icount_shift: int,
          timeout: float) -> str:
    stop(project)
    sdir = state_dir(project)
    log = sdir / "qemu.log"
    monitor = os.path.join(tempfile.gettempdir(), f"tinyopt-qemu-{os.getpid()}-{time.time_ns()}.sock")
    cmd = [qemu, "-M", machine, "-cpu", cpu, "-nographic", "-icount", f"shift={icount_shift}",
           "-serial", "pty", "-monitor", f"unix:{monitor},server=on,wait=off",
           "-no-reboot", "-S", "-kernel", str(elf)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    (sdir / "pid").write_text(f"{proc.pid}\n")
    (sdir / "monitor").write_text(monitor + "\n")
    deadline = time.monotonic() + timeout
    try:
        port = _wait_for_pty(log, proc, deadline)
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd, termios.TCSANOW)
            while not os.path.exists(monitor) and time.monotonic() < deadline:
                time.sleep(0.02)
            if not _monitor(monitor, "cont"):
                raise RuntimeError("could not resume the emulator through its monitor socket")
            for text in _read_banner(fd, deadline):
                print(f"  {text}")
        finally:
            os.close(fd)
    except BaseException:
        stop(project)
        raise
    (sdir / "port").write_text(port + "\n")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="start/stop an emulated board (tinyopt qemu platform)")
    sub = parser.add_subparsers(dest="action", required=True)
    p_start = sub.add_parser("start")
    p_start.add_argument("--elf", required=True, type=Path)
    p_start.add_argument("--project", required=True, type=Path)
    p_start.add_argument("--qemu", default="qemu-system-arm")
    p_start.add_argument("--machine", default="mps2-an386")
    p_start.add_argument("--cpu", default="cortex-m4")
    p_start.add_argument("--icount-shift", type=int, default=0)
    p_start.add_argument("--timeout", type=float, default=30.0)
    p_stop = sub.add_parser("stop")
    p_stop.add_argument("--project", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        if args.action == "stop":
            print("qemu: emulator stopped" if stop(args.project) else "qemu: no emulator running")
            return 0
        port = start(args.elf.resolve(), args.project.resolve(), args.qemu, args.machine,
                     args.cpu, args.icount_shift, args.timeout)
    except FileNotFoundError as err:
        print(f"qemu: {err.filename} not found (Debian: apt-get install qemu-system-arm)",
              file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as err:
        print(f"qemu: {err}", file=sys.stderr)
        return 1
    print(f"qemu: emulator running, serial port {port} (pid file {args.project / '.tinyopt/pid'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
