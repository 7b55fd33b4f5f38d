"""The values the firmware templates are rendered with, one builder per concern: the model's
input/output (ModelIO), the PlatformIO environment (build flags, libraries, ESP-IDF
components and sdkconfig values) and the board's glue settings. template_context() joins
them into the one dict every template of a project sees."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from tinyopt.boards import Board
from tinyopt.codegen.c_array import int_rows
from tinyopt.codegen.library import ModelLibrary
from tinyopt.codegen.names import c_identifier
from tinyopt.errors import TinyoptError
from tinyopt.paths import BOARDS_DIR


def _quant(t) -> tuple[float, int]:
    return (float(t.scales[0]) if t.scales.size else 1.0,
            int(t.zero_points[0]) if t.zero_points.size else 0)


@dataclass(frozen=True)
class ModelIO:
    """The single int8 input and output the harness drives, and the golden vector."""
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_bytes: int
    output_bytes: int
    input_quant: tuple[float, int]
    output_quant: tuple[float, int]
    golden_in: np.ndarray
    golden_out: np.ndarray

    @classmethod
    def of(cls, t_in, t_out, golden_in, golden_out) -> ModelIO:
        return cls(tuple(t_in.shape), tuple(t_out.shape), t_in.nbytes, t_out.nbytes, _quant(t_in),
                   _quant(t_out), golden_in, golden_out)

    def manifest(self, which: str) -> dict:
        shape, nbytes, (scale, zp) = ((self.input_shape, self.input_bytes, self.input_quant)
                                      if which == "input" else
                                      (self.output_shape, self.output_bytes, self.output_quant))
        return {"shape": list(shape), "dtype": "int8", "bytes": nbytes, "scale": scale, "zero_point": zp}

    def context(self) -> dict:
        (in_scale, in_zp), (out_scale, out_zp) = self.input_quant, self.output_quant
        return {"input_bytes": self.input_bytes, "output_bytes": self.output_bytes,
                "golden_input_rows": int_rows(self.golden_in), "golden_output_rows": int_rows(self.golden_out),
                # float32 repr: the C literal the harness compares with is the tensor's own scale
                "input_scale_repr": repr(float(np.float32(in_scale))), "input_zero_point": in_zp,
                "output_scale_repr": repr(float(np.float32(out_scale))), "output_zero_point": out_zp}


def _idf_deps(lib_deps: list[str]) -> tuple[list[dict], list[str]]:
    """Split "idf:owner/name@version" entries (ESP-IDF component manager) from PlatformIO's."""
    idf, pio = [], []
    for dep in lib_deps:
        if dep.startswith("idf:"):
            name, _, version = dep[4:].partition("@")
            idf.append({"name": name, "version": version or "*",
                        "component": name.replace("/", "__")})
        else:
            pio.append(dep)
    return idf, pio


# ESP-IDF 5.3 Kconfig choices the board file's values must map onto (esp_system's
# port/soc/<target>/Kconfig.cpu, esptool_py's and partition_table's Kconfig.projbuild).
IDF_CPU_MHZ = (80, 160, 240)
IDF_FLASH_SIZES = ("1MB", "2MB", "4MB", "8MB", "16MB", "32MB", "64MB", "128MB")
IDF_PARTITION_TABLES = {"partitions_singleapp.csv": "SINGLE_APP",
                        "partitions_singleapp_large.csv": "SINGLE_APP_LARGE",
                        "partitions_two_ota.csv": "TWO_OTA"}


def _idf_config(board: Board) -> dict:
    """sdkconfig.defaults values from the board file: CPU clock, flash size (the
    `board_upload.flash_size` PlatformIO compares with the sdkconfig's) and partition table."""
    pio = board.platformio
    flash = pio.get("board_upload.flash_size")
    if board.clock_mhz not in IDF_CPU_MHZ:
        raise TinyoptError(f"board {board.name}: ESP-IDF cannot run the CPU at {board.clock_mhz} MHz",
                           f"set clock_mhz to one of {', '.join(map(str, IDF_CPU_MHZ))}")
    if flash not in IDF_FLASH_SIZES:
        raise TinyoptError(f"board {board.name}: [platformio] \"board_upload.flash_size\" is "
                           f"{flash!r}, ESP-IDF needs one of {', '.join(IDF_FLASH_SIZES)}",
                           "set it to the module's flash size (the PlatformIO board's upload.flash_size)")
    partitions = pio.get("board_build.partitions", "partitions_singleapp.csv")
    return {"cpu_mhz": board.clock_mhz, "flash_size": flash, "partitions": partitions,
            "partition_table": IDF_PARTITION_TABLES.get(partitions, "CUSTOM")}


def _platform_spec(spec: str) -> str:
    """A relative `file://NAME` or `symlink://NAME` platform is a dev-platform of tinyopt's
    own in boards/ (the emulated board's): platformio.ini needs its absolute path."""
    for scheme in ("file://", "symlink://"):
        if spec.startswith(scheme) and not spec[len(scheme):].startswith("/"):
            return scheme + str((BOARDS_DIR / spec[len(scheme):]).resolve())
    return spec


def _ini_value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


# platformio.ini keys the template writes itself; every other board key passes through.
_OWN_INI_KEYS = ("platform", "board", "framework", "build_flags", "lib_deps", "build_unflags")


def platformio_context(board: Board, backend: str, lib: ModelLibrary) -> dict:
    """platformio.ini's environment, and on ESP-IDF boards the CMake / component values."""
    pio = dict(board.platformio)
    # [tflm.platformio]: options only the tflm backend needs (e.g. the extra script that
    # compiles TFLM from a source tree); build_flags / build_unflags there are merged below.
    tflm_pio = dict(board.tflm.get("platformio", {})) if backend == "tflm" else {}
    idf_deps, pio_deps = _idf_deps(list(pio.get("lib_deps", [])) + list(lib.lib_deps))
    is_idf = pio.get("framework") == "espidf"
    build_flags = list(pio.get("build_flags", [])) + list(tflm_pio.get("build_flags", []))
    if not is_idf:   # ESP-IDF components take their flags from CMake (see the glue)
        build_flags = lib.build_flags + [f for f in build_flags if f not in lib.build_flags]
    build_unflags = (["-Os"] + list(tflm_pio.get("build_unflags", []))
                     if not is_idf and pio["platform"] != "native" else [])
    return {
        "pio": {"platform": _platform_spec(pio["platform"]), "board": pio["board"],
                "framework": pio.get("framework", "")},
        "pio_extra": [(k, _ini_value(v)) for k, v in list(pio.items()) + list(tflm_pio.items())
                      if k not in _OWN_INI_KEYS],
        "env_name": c_identifier(board.name, "board"),
        "build_flags": build_flags, "build_unflags": build_unflags,
        "lib_deps": pio_deps, "lib_ignore": ["tinyopt_model"] if is_idf else [],
        "idf_deps": idf_deps, "idf_requires": [d["component"] for d in idf_deps] or ["esp_common"],
        "build_flags_json": json.dumps(lib.build_flags), "lib_build_flags": lib.build_flags,
        "idf": _idf_config(board) if is_idf else {},
    }


def board_context(board: Board) -> dict:
    """The board glue's settings: serial, timer, clock, and the [glue] table's values."""
    return {
        "board": board, "board_name": board.name,
        "dtr": int(board.upload.get("dtr", 0)), "rts": int(board.upload.get("rts", 0)),
        "baud": board.baud, "timer": board.timer, "cpu": board.cpu, "clock_mhz": board.clock_mhz,
        # seconds until a 32-bit cycle counter wraps at this clock (the Arduino glue says so)
        "dwt_wrap_s": round(2 ** 32 / (max(board.clock_mhz, 1) * 1e6), 1),
        "wait_for_usb": bool(board.upload.get("wait_for_usb", False)),
        "uart_num": int(board.glue.get("uart", 0)), "core": int(board.glue.get("core", 1)),
        "task_stack_bytes": int(board.glue.get("task_stack_bytes", 16384)),
    }


def template_context(board: Board, backend: str, lib: ModelLibrary, io: ModelIO, *, model_name: str,
                     sha: str) -> dict:
    """Everything a project's templates see."""
    return {
        **board_context(board), **platformio_context(board, backend, lib), **io.context(),
        "backend": backend, "model_name": model_name, "model_sha16": sha[:16],
        "cmake_project": c_identifier(f"tinyopt_{model_name}"), "layer_count": len(lib.layers),
        "arena_placement": lib.summary.get("arena_placement", "static"),
    }
