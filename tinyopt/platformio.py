"""PlatformIO from tinyopt: `pio run` (build, size report) and `pio run -t upload`.

PlatformIO runs in a child process of this interpreter (`python -m platformio`), politely
(nice, -j2 at most: build machines are shared). Before the first build, the offline
bootstrap (scripts/pio_offline.py) provides PlatformIO's core package tool-scons when the
registry does not answer. A real board whose platform cannot be downloaded stops with a
clear message: the project is ready, build it where PlatformIO can reach its registry."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tinyopt.boards import Board
from tinyopt.errors import NotBuildableHere, TinyoptError
from tinyopt.nice import nice

# The offline bootstrap runs in a child Python: it installs packages through `pio pkg`.
BOOTSTRAP = [sys.executable, "-m", "tinyopt.pio_offline"]
REGISTRY_HOST = "api.registry.platformio.org"
# The size report PlatformIO prints after a build, e.g.
# "RAM:   [          ]   0.1% (used 3744 bytes from 4194304 bytes)"
SIZE_RE = re.compile(r"^(RAM|Flash):\s+\[.*?\]\s+[\d.]+%\s+\(used (\d+) bytes from (\d+) bytes\)", re.M)
# What PlatformIO says when it cannot reach its registry or find a package.
NETWORK_RE = re.compile(r"HTTPClientError|ConnectionError|Max retries exceeded|Could not resolve|"
                        r"Name or service not known|Temporary failure in name resolution|"
                        r"UnknownPackageError|Could not find the package|InternetConnectionError|"
                        r"timed out", re.I)


@dataclass(frozen=True)
class BuildResult:
    project: Path
    board: str
    elf: Path | None
    flash_bytes: int | None        # what PlatformIO's size check reports as program size
    flash_max: int | None
    ram_bytes: int | None          # static RAM (.data + .bss); stack and heap come on top
    ram_max: int | None
    seconds: float
    log_tail: str

    def to_json(self) -> dict:
        return {"project": str(self.project), "board": self.board,
                "elf": str(self.elf) if self.elf else None,
                "flash_bytes": self.flash_bytes, "flash_max": self.flash_max,
                "ram_bytes": self.ram_bytes, "ram_max": self.ram_max, "seconds": round(self.seconds, 2)}


def parse_size_report(text: str) -> dict:
    """{"RAM": (used, max), "Flash": (used, max)} from `pio run` output (last report wins)."""
    out = {}
    for kind, used, total in SIZE_RE.findall(text):
        out[kind] = (int(used), int(total))
    return out


def pio_env() -> dict:
    env = dict(os.environ)
    env.setdefault("PLATFORMIO_SETTING_ENABLE_TELEMETRY", "No")
    env.setdefault("PLATFORMIO_NO_ANSI", "true")
    env["PYTHONUNBUFFERED"] = "1"
    # Objects shared across generated projects (TFLM takes minutes to compile on a small machine).
    if "PLATFORMIO_BUILD_CACHE_DIR" not in env:
        from tinyopt.paths import cache_dir
        env["PLATFORMIO_BUILD_CACHE_DIR"] = str(cache_dir() / "pio-build-cache")
    return env


def pio_command(args: list[str]) -> list[str]:
    return nice([sys.executable, "-m", "platformio", *args])


def registry_reachable(timeout: float = 3.0) -> bool:
    # A TCP connect is enough to tell "offline" from "online"; PlatformIO's own client
    # would otherwise wait minutes on an unreachable registry.
    import socket
    try:
        with socket.create_connection((REGISTRY_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def core_ready() -> bool:
    """True when PlatformIO Core has its build tool (tool-scons) installed."""
    try:
        from platformio.package.manager.core import get_core_package_dir
    except ImportError:
        raise TinyoptError("PlatformIO is not installed in this Python environment",
                           "pip install platformio (scripts/setup.sh does it)") from None
    return bool(get_core_package_dir("tool-scons", auto_install=False))


def ensure_platformio() -> None:
    """Make `pio run` possible: PlatformIO installed and its core package tool-scons present
    (from the registry, or from PyPI's scons through tinyopt.pio_offline when offline)."""
    if core_ready():
        return
    proc = subprocess.run(BOOTSTRAP, capture_output=True, text=True,
                          env=pio_env(), timeout=600)
    if proc.returncode != 0:
        raise TinyoptError(f"PlatformIO cannot build yet: {(proc.stderr or proc.stdout).strip()[-500:]}",
                           f"run `{' '.join(BOOTSTRAP)} --force`, or `pio pkg install -g -t "
                           "platformio/tool-scons` where the registry is reachable")


def _platform_installed(spec: str) -> bool:
    """Is the dev-platform of SPEC ("ststm32@17.3.0", "symlink://...") present locally?"""
    if spec.startswith(("file://", "symlink://")) or spec == "native":
        return True
    try:
        from platformio.package.manager.platform import PlatformPackageManager
        return PlatformPackageManager().get_package(spec) is not None
    except Exception:   # an unparsable spec: let PlatformIO say what it thinks
        return True


def _not_buildable_here(project: Path, why: str) -> NotBuildableHere:
    return NotBuildableHere(
        f"the project is ready at {project}, but it cannot be built here: {why}",
        f"build and upload it where PlatformIO can reach its registry: pio run -t upload -d {project}")


def check_buildable(project: Path, board: Board) -> None:
    """Stop early (without PlatformIO's minutes-long network waits) when a real board's
    platform is missing and the registry does not answer."""
    spec = str(board.platformio.get("platform", ""))
    if board.emulated:
        for tool in ("arm-none-eabi-gcc", board.emulator.get("qemu", "qemu-system-arm")):
            if not shutil.which(tool):
                raise TinyoptError(f"{tool} is not installed: the emulated board {board.name} needs it",
                                   "Debian: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                                   "libstdc++-arm-none-eabi-newlib qemu-system-arm (scripts/setup.sh)")
        return
    if not _platform_installed(spec) and not registry_reachable():
        raise _not_buildable_here(project, f"PlatformIO platform {spec!r} is not installed "
                                  "and the PlatformIO registry does not answer")


def _run_pio(args: list[str], project: Path, timeout: float, on_line=None) -> tuple[int, str]:
    lines: list[str] = []
    proc = subprocess.Popen(pio_command(args), cwd=project, env=pio_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if on_line:
                on_line(line.rstrip("\n"))
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(args, timeout)
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise TinyoptError(f"`pio {' '.join(args)}` took longer than {timeout:.0f} s; stopped",
                           "run it by hand in the project folder to see what it waits for") from None
    except BaseException:
        # Ctrl-C reaches only us (pio runs in a session of its own): stop it, or it would go on
        # building into a folder that is about to be removed
        proc.kill()
        proc.wait()
        raise
    return proc.returncode, "\n".join(lines)


def build(project, board: Board, jobs: int = 2, timeout: float = 3600, on_line=None) -> BuildResult:
    """`pio run` in PROJECT; flash/RAM from PlatformIO's size check."""
    project = Path(project).resolve()
    ensure_platformio()
    check_buildable(project, board)
    start = time.monotonic()
    code, log = _run_pio(["run", "-j", str(max(1, min(jobs, 2)))], project, timeout, on_line)
    seconds = time.monotonic() - start
    if code != 0:
        if not board.emulated and NETWORK_RE.search(log):
            raise _not_buildable_here(project, "PlatformIO could not download the platform "
                                      "or its packages")
        raise TinyoptError(f"`pio run` failed in {project}:\n{_errors(log)}",
                           f"see the full log: cd {project} && pio run -v")
    sizes = parse_size_report(log)
    flash, ram = sizes.get("Flash", (None, None)), sizes.get("RAM", (None, None))
    env_dirs = sorted((project / ".pio" / "build").glob("*/firmware.elf"))
    return BuildResult(project, board.name, env_dirs[0] if env_dirs else None, flash[0], flash[1],
                       ram[0], ram[1], seconds, "\n".join(log.splitlines()[-15:]))


def _errors(log: str, keep: int = 25) -> str:
    """The lines of a build log that say what went wrong (compiler errors first)."""
    lines = log.splitlines()
    picked = [ln for ln in lines if re.search(r"error|Error|undefined reference|No such file", ln)]
    return "\n".join((picked or lines)[-keep:])


def upload(project, board: Board, port: str | None = None, timeout: float = 600,
           on_line=None) -> str:
    """`pio run -t upload` (for the emulated board: start the emulator). Returns the log."""
    project = Path(project).resolve()
    ensure_platformio()
    check_buildable(project, board)
    args = ["run", "-t", "upload", "-j", "2"]
    if port:
        args += ["--upload-port", port]
    code, log = _run_pio(args, project, timeout, on_line)
    if code != 0:
        hint = board.upload.get("boot_hint") or "check the cable and the port (--port)"
        raise TinyoptError(f"upload to {board.name} failed:\n{_errors(log, 15)}", hint)
    return log


def doctor_checks() -> list[dict]:
    """For `tinyopt doctor`: can `pio run` build here (tool-scons present or installable)?"""
    try:
        ready = core_ready()
    except TinyoptError as err:
        return [{"name": "PlatformIO core (tool-scons)", "version": None, "ok": False,
                 "detail": err.message, "fix": err.hint or ""}]
    if ready:
        from platformio.package.manager.core import get_core_package_dir
        path = get_core_package_dir("tool-scons", auto_install=False)
        return [{"name": "PlatformIO core (tool-scons)", "version": "installed", "ok": True,
                 "detail": str(path)}]
    # Not an error: the first build installs it (registry, or offline from PyPI's scons).
    return [{"name": "PlatformIO core (tool-scons)", "version": None, "ok": True,
             "detail": "not installed yet: the first build installs it (offline: from PyPI's scons)",
             "fix": " ".join(BOOTSTRAP)}]
