"""Boards are data: one TOML file per board in boards/. This module loads and validates them.

A board names its glue folder (firmware_templates/<[glue] folder>/): a new family of boards is
a new glue folder and board files that name it, with no list to extend here."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from tinyopt.errors import TinyoptError
from tinyopt.paths import BOARDS_DIR, TEMPLATES_DIR

TIMERS = {"esp_timer", "dwt", "systick", "micros", "rp2040_timer"}


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    family: str                 # a name for people (reports, `tinyopt boards`); the glue is [glue]
    cpu: str
    clock_mhz: int
    flash_bytes: int
    ram_bytes: int
    timer: str
    baud: int
    backends: tuple[str, ...]
    usb_ids: tuple[str, ...]
    platformio: dict            # platform / board / framework / build_flags / lib_deps ...
    glue: dict = field(default_factory=dict)     # folder (under firmware_templates/), uart, core ...
    tflm: dict = field(default_factory=dict)     # library, kernels, arena_placement ...
    upload: dict = field(default_factory=dict)   # dtr / rts / boot_hint ...
    emulator: dict = field(default_factory=dict)  # only for emulated boards
    runtime_flash_bytes: int = 0   # estimate of flash taken by code besides the model
    runtime_ram_bytes: int = 0     # estimate of RAM taken besides the arena (stack, heap, RTOS)
    # the linker copies code and constants into RAM at boot (Teensy 4.x: ITCM/DTCM), so the
    # model and the runtime code count against ram_bytes as well
    code_and_constants_in_ram: bool = False
    # the core has Arm's DSP extension (SMLAD, SXTB16: Cortex-M4/M7/M33/M55); without it the aot
    # backend generates only its portable kernels and plans no scratch for the DSP ones
    dsp: bool = True
    path: Path | None = None

    @property
    def emulated(self) -> bool:
        return bool(self.emulator)


_REQUIRED = ("description", "family", "cpu", "clock_mhz", "flash_bytes", "ram_bytes",
             "timer", "baud", "backends", "platformio")


def _parse(path: Path) -> Board:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise TinyoptError(f"board file {path} is not valid TOML: {err}",
                           "fix the syntax in that file") from None
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise TinyoptError(f"board file {path} lacks {', '.join(missing)}",
                           "add the missing keys (see boards/README.md)")
    # [glue] is what generate needs; a board file used only for fit checks may leave it out
    glue = data.get("glue", {})
    folder = glue.get("folder") if isinstance(glue, dict) else None
    if "glue" in data and (not folder or not (TEMPLATES_DIR / folder).is_dir()):
        raise TinyoptError(f"board file {path}: [glue] folder {folder!r} is not a folder of firmware_templates/",
                           f"name one of the glue folders: {', '.join(glue_folders())}")
    if data["timer"] not in TIMERS:
        raise TinyoptError(f"board file {path}: unknown timer {data['timer']!r}",
                           f"use one of {', '.join(sorted(TIMERS))}")
    from tinyopt.backends import names as backend_names
    bad = set(data["backends"]) - set(backend_names())
    if bad or not data["backends"]:
        raise TinyoptError(f"board file {path}: unknown or no backend(s) {sorted(bad)}",
                           f"list one or more of {', '.join(backend_names())}; the first is the default")
    pio = data["platformio"]
    for key in ("platform", "board"):
        if key not in pio:
            raise TinyoptError(f"board file {path}: [platformio] lacks {key!r}",
                               "add it (see boards/README.md)")
    return Board(
        name=path.stem, description=data["description"], family=data["family"],
        cpu=data["cpu"], clock_mhz=int(data["clock_mhz"]),
        flash_bytes=int(data["flash_bytes"]), ram_bytes=int(data["ram_bytes"]),
        timer=data["timer"], baud=int(data["baud"]), backends=tuple(data["backends"]),
        usb_ids=tuple(s.upper() for s in data.get("usb_ids", [])), platformio=dict(pio),
        glue=dict(glue) if isinstance(glue, dict) else {}, tflm=dict(data.get("tflm", {})),
        upload=dict(data.get("upload", {})),
        emulator=dict(data.get("emulator", {})),
        runtime_flash_bytes=int(data.get("runtime_flash_bytes", 0)),
        runtime_ram_bytes=int(data.get("runtime_ram_bytes", 0)),
        code_and_constants_in_ram=bool(data.get("code_and_constants_in_ram", False)),
        dsp=_flag(data, "dsp", True, path), path=path)


def _flag(data: dict, key: str, default: bool, path: Path) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise TinyoptError(f"board file {path}: {key} = {value!r} is not true or false",
                           f"write {key} = true or {key} = false (see boards/README.md)")
    return value


def glue_folders() -> list[str]:
    """The board glue folders there are: those holding a platform_* implementation of
    tinyopt_platform.h."""
    found = TEMPLATES_DIR.glob("**/platform_*")
    return sorted({p.parent.relative_to(TEMPLATES_DIR).as_posix() for p in found})


def board_names(directory: Path = BOARDS_DIR) -> list[str]:
    return sorted(p.stem for p in Path(directory).glob("*.toml"))


def load_board(name: str, directory: Path = BOARDS_DIR) -> Board:
    path = Path(directory) / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(board_names(directory)) or "(none)"
        raise TinyoptError(f"unknown board {name!r}",
                           f"known boards: {known}; run `tinyopt boards` for details")
    return _parse(path)


def all_boards(directory: Path = BOARDS_DIR) -> list[Board]:
    return [load_board(n, directory) for n in board_names(directory)]
