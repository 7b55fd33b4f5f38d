"""The flash stage: build and upload a generated project with PlatformIO.

Real boards: `pio run -t upload` on the port found by USB VID:PID (or --port), retried once
with the board's boot-mode hint. The emulated board goes through the same command: its
dev-platform's upload starts qemu-system-arm with UART0 on a pseudo-terminal, checks the
boot banner and records the port in PROJECT/.tinyopt/port. With keep_running the emulator
stays up for any serial client; stop() ends it."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tinyopt import platformio
from tinyopt.boards import Board, load_board
from tinyopt.errors import NotBuildableHere, TinyoptError
from tinyopt.paths import BOARDS_DIR

STATE_DIR = ".tinyopt"
LAUNCHER = BOARDS_DIR / "platform-qemu" / "builder" / "qemu_launch.py"


@dataclass(frozen=True)
class FlashResult:
    project: Path
    board: str
    port: str | None
    emulated: bool
    running: bool                    # emulator still up (keep_running)
    pid: int | None
    banner: tuple[str, ...] = field(default_factory=tuple)   # boot lines seen by the upload
    build: platformio.BuildResult | None = None

    def to_json(self) -> dict:
        return {"project": str(self.project), "board": self.board, "port": self.port,
                "emulated": self.emulated, "running": self.running, "pid": self.pid,
                "banner": list(self.banner), "build": self.build.to_json() if self.build else None}


def _project_board(project: Path, board) -> Board:
    if isinstance(board, Board):
        return board
    if board:
        return load_board(str(board))
    from tinyopt.codegen.generate import load_project
    return load_board(load_project(project).board)


def emulator_state(project) -> dict:
    """{"port": ..., "pid": ...} of the emulator started for PROJECT, empty if none runs."""
    sdir = Path(project) / STATE_DIR
    out = {}
    try:
        pid = int((sdir / "pid").read_text().strip())
        port = (sdir / "port").read_text().strip()
    except (OSError, ValueError):
        return out
    if Path(f"/proc/{pid}").exists() or _alive(pid):
        out = {"port": port, "pid": pid}
    return out


def _alive(pid: int) -> bool:
    import os
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def stop(project) -> bool:
    """End the emulator started for PROJECT; True if one was running."""
    proc = subprocess.run([sys.executable, str(LAUNCHER), "stop", "--project", str(Path(project).resolve())],
                          capture_output=True, text=True, timeout=30)
    return "emulator stopped" in proc.stdout


def _banner(log: str) -> tuple[str, ...]:
    return tuple(ln.strip() for ln in log.splitlines() if ln.strip().startswith("m-"))


def flash(project, board=None, port: str | None = None, keep_running: bool = False,
          on_line=None, built: platformio.BuildResult | None = None) -> FlashResult:
    """Build PROJECT and upload it (start the emulator for an emulated board). BUILT, when
    the caller has just built it (the pipeline has), is used instead of building again."""
    project = Path(project).resolve()
    if not (project / "platformio.ini").is_file():
        raise TinyoptError(f"{project} is not a PlatformIO project (no platformio.ini)",
                           "generate one with `tinyopt generate MODEL.tflite --board NAME -o DIR`")
    board = _project_board(project, board)
    build = built if built is not None else platformio.build(project, board, on_line=on_line)
    if board.emulated:
        log = platformio.upload(project, board, on_line=on_line)
        banner = _banner(log)
        state = emulator_state(project)
        if not state:
            raise TinyoptError("the emulator did not stay up after upload",
                               f"see {project / STATE_DIR / 'qemu.log'}")
        failed = [ln for ln in banner if ln.startswith("m-golden-fail") or ln.startswith("m-error-")]
        if failed:
            stop(project)
            raise TinyoptError(f"the firmware started but its boot check failed: {failed[0]}",
                               "its output for the golden input differs from the TFLM runtime's: "
                               "a backend bug; try the other backend and report this model")
        if not keep_running:
            stop(project)
        return FlashResult(project, board.name, state["port"], True, keep_running,
                           state["pid"] if keep_running else None, banner, build)

    if port is None and board.usb_ids:
        from tinyopt.serial_link import find_port
        port = find_port(board.usb_ids, board.name)
    try:
        log = platformio.upload(project, board, port, on_line=on_line)
    except NotBuildableHere:
        raise
    except TinyoptError:
        hint = board.upload.get("boot_hint")
        if not hint:
            raise
        if on_line:
            on_line(f"upload failed; retrying once. {hint}")
        try:
            log = platformio.upload(project, board, port, on_line=on_line)
        except TinyoptError as second:
            raise TinyoptError(second.message, hint) from None
    return FlashResult(project, board.name, port, False, False, None, _banner(log), build)
