"""The generate stage: int8 .tflite + board -> a PlatformIO project (FirmwareProject).

This module writes every file but lib/tinyopt_model/, which the backend writes (found
through tinyopt/backends.py), from the values context.py builds: platformio.ini, src/
(harness, board glue, golden vector, quantization helpers), tinyopt_project.json (the
manifest flash/measure read) and, on ESP-IDF boards, the CMake and component-manager files.
Board glue comes from the board's glue folder in firmware_templates/: files at its top go
to src/, files under its project/ folder mirror the project root; *.j2 files are rendered,
others copied."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyopt import backends
from tinyopt.boards import Board, load_board
from tinyopt.codegen.context import ModelIO, template_context
from tinyopt.codegen.library import ModelLibrary, write_files
from tinyopt.codegen.manifest import METADATA, ProjectManifest
from tinyopt.codegen.names import safe_label
from tinyopt.codegen.render import render
from tinyopt.errors import TinyoptError
from tinyopt.output_dir import check_writable, staged_output
from tinyopt.paths import TEMPLATES_DIR

LIB_DIR = "lib/tinyopt_model"
GOLDEN_SEED = 20240601


@dataclass(frozen=True)
class FirmwareProject:
    path: Path
    board: str
    backend: str
    files: tuple[str, ...]
    manifest: ProjectManifest
    memory_plan: dict | None = None     # the backend's activation placement (not written to disk)

    @property
    def metadata(self) -> dict:
        """The manifest as written to tinyopt_project.json."""
        return self.manifest.to_json()

    def to_json(self) -> dict:
        return {"path": str(self.path), "board": self.board, "backend": self.backend,
                "files": list(self.files), **{k: v for k, v in self.metadata.items()
                                             if k not in ("golden",)}}


def _check_io(model) -> tuple:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise TinyoptError(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                           "the firmware harness drives exactly one of each",
                           "export a model with a single input and a single output")
    t_in, t_out = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    for what, t in (("input", t_in), ("output", t_out)):
        if t.dtype != "INT8":
            raise TinyoptError(f"the model's {what} is {t.dtype}, the firmware needs int8",
                               "convert with int8 input and output (`tinyopt convert` does)")
    return t_in, t_out


def golden_vector(model_bytes: bytes, input_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """A reproducible int8 input (seeded by the model's hash) and the TFLM runtime's output."""
    from tinyopt.tflm_runtime import Runner
    seed = int.from_bytes(hashlib.sha256(model_bytes).digest()[:4], "little") ^ GOLDEN_SEED
    x = np.random.default_rng(seed).integers(-128, 128, size=input_bytes, dtype=np.int8)
    y = Runner(model_bytes).run(x).reshape(-1)
    return x, y


def _refuse_misfit(analysis, board: Board) -> None:
    fit = analysis.fit
    if fit is None or fit.fits:
        return
    hint = "; ".join(fit.suggestions[:2]) + "; or pass --force to generate anyway"
    raise TinyoptError(f"model does not fit {board.name}: {fit.verdict.split(': ', 1)[-1]} "
                       f"(flash {fit.flash_used} of {fit.flash_budget} bytes, "
                       f"RAM {fit.ram_used} of {fit.ram_budget} bytes)", hint)


def _glue_files(glue: str) -> list[tuple[Path, str]]:
    """(template path relative to firmware_templates, destination in the project)."""
    base = TEMPLATES_DIR / glue
    if not base.is_dir():
        raise TinyoptError(f"board glue folder firmware_templates/{glue} is missing",
                           "reinstall tinyopt, or fix `glue` in the board file")
    out = []
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base)
        if rel.parts[0] == "project":
            dest = Path(*rel.parts[1:])
        else:
            dest = Path("src") / rel
        if dest.suffix == ".j2":
            dest = dest.with_suffix("")
        out.append((path.relative_to(TEMPLATES_DIR), dest.as_posix()))
    if not out:
        raise TinyoptError(f"board glue folder firmware_templates/{glue} is empty",
                           "the glue for this board family has not been written yet")
    return out


def _render_or_copy(template_rel: Path, ctx: dict) -> str:
    if template_rel.suffix == ".j2":
        return render(template_rel.as_posix(), ctx)
    return (TEMPLATES_DIR / template_rel).read_text()


def _check_board(board: Board, backend: str) -> None:
    backends.require(board, backend)
    if not board.glue.get("folder"):
        from tinyopt.boards import glue_folders
        raise TinyoptError(f"board file {board.path or board.name} has no [glue] folder, so no firmware "
                           "can be generated for it", f"add [glue] folder = one of {', '.join(glue_folders())}")


def _project_files(ctx: dict, board: Board, lib: ModelLibrary) -> dict[str, str | bytes]:
    """Every file of the project but the manifest: the common harness, the board glue and
    the backend's model library under LIB_DIR."""
    files: dict[str, str | bytes] = {
        "platformio.ini": render("common/platformio.ini.j2", ctx),
        "src/tinyopt_harness.c": (TEMPLATES_DIR / "common/tinyopt_harness.c").read_text(),
        "src/tinyopt_platform.h": (TEMPLATES_DIR / "common/tinyopt_platform.h").read_text(),
        "src/tinyopt_golden.h": render("common/tinyopt_golden.h.j2", ctx),
        "src/tinyopt_quant.h": render("common/tinyopt_quant.h.j2", ctx),
        f"{LIB_DIR}/tinyopt_model.h": render("common/tinyopt_model.h.j2", ctx),
        f"{LIB_DIR}/library.json": render("common/library.json.j2", ctx),
    }
    for template_rel, dest in _glue_files(board.glue["folder"]):
        content = _render_or_copy(template_rel, ctx)
        if content.strip():   # a template may render to nothing for this board/backend
            files[dest] = content
    for rel, content in lib.files.items():
        rel = Path(rel).as_posix()
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise TinyoptError(f"backend {ctx['backend']} wrote outside {LIB_DIR}: {rel}", "report this bug")
        files[f"{LIB_DIR}/{rel}"] = content
    return files


def _manifest(board: Board, backend: str, model_info: dict, io: ModelIO, analysis,
              lib: ModelLibrary) -> ProjectManifest:
    return ProjectManifest(
        board=board.name, family=board.family, backend=backend, model=model_info,
        input=io.manifest("input"), output=io.manifest("output"),
        arena={"firmware_bytes": analysis.arena.firmware_bytes,
               "tflm_bytes": analysis.arena.tflm_bytes, "head_bytes": analysis.arena.head_bytes,
               "margin_bytes": analysis.arena.margin_bytes},
        activation_bytes=lib.activation_bytes,
        fit=analysis.fit.to_json() if analysis.fit else None,
        serial={"baud": board.baud, "protocol": "mlperf-tiny", "usb_ids": list(board.usb_ids),
                "dtr": int(board.upload.get("dtr", 0)), "rts": int(board.upload.get("rts", 0))},
        timer=board.timer, library=lib.summary,
        golden={"input": [int(v) for v in io.golden_in], "output": [int(v) for v in io.golden_out]})


def generate(tflite_path, board, backend: str | None = None, out=None, force: bool = False,
             options: dict | None = None, analysis=None) -> FirmwareProject:
    """Write the PlatformIO project for TFLITE_PATH on BOARD into OUT (staged, atomic).
    ANALYSIS, when the caller already has it for this model and board (the pipeline does),
    is reused instead of analysing the model again."""
    from tinyopt.analysis import analyze, raise_for_audit, read_tflite

    options = dict(options or {})
    board = board if isinstance(board, Board) else load_board(str(board))
    if out is None:
        raise TinyoptError("no output directory given", "pass -o PROJECT_DIR")
    out = Path(out)
    backend = backend or backends.default_for(board)
    _check_board(board, backend)
    module = backends.module(backend)
    check_writable(out, force)

    tflite_path = Path(tflite_path)
    model = read_tflite(tflite_path)
    # The arena margin and the fit depend on the board, so only its own analysis will do.
    if analysis is None or analysis.fit is None or analysis.fit.board != board.name:
        analysis = analyze(model, board)
    raise_for_audit(analysis, backend)
    if not force:
        _refuse_misfit(analysis, board)
    t_in, t_out = _check_io(model)
    raw = model.raw
    sha = hashlib.sha256(raw).hexdigest()
    model_name = safe_label(options.get("model_name") or tflite_path.stem)
    options["model_name"] = model_name
    golden_in, golden_out = golden_vector(raw, t_in.nbytes)
    if golden_out.size != t_out.nbytes:
        raise TinyoptError("the TFLM runtime's output size differs from the model's output tensor",
                           "report this model: the reader and the runtime disagree")
    lib: ModelLibrary = module.model_library(model, analysis, board, options)

    io = ModelIO.of(t_in, t_out, golden_in, golden_out)
    files = _project_files(template_context(board, backend, lib, io, model_name=model_name, sha=sha), board, lib)
    manifest = _manifest(board, backend, {"name": model_name, "source": str(tflite_path), "sha256": sha,
                                          "bytes": len(raw)}, io, analysis, lib)
    files[METADATA] = json.dumps(manifest.to_json(), indent=2) + "\n"
    with staged_output(out, force) as stage:
        write_files(stage, files)
    return FirmwareProject(out.resolve(), board.name, backend, tuple(sorted(files)), manifest, lib.memory_plan)


def load_project(path) -> ProjectManifest:
    """The manifest of a generated project (tinyopt_project.json)."""
    return ProjectManifest.load(path)


