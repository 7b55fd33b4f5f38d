"""TFLM backend: the model as a C array plus the TFLM interpreter behind the tinyopt model
interface (lib/tinyopt_model/). The op resolver holds exactly the model's operators; the
arena is the size the analysis computed for the firmware (runtime figure + margin, aligned)."""
from __future__ import annotations

from tinyopt.analysis.op_support import tflm_builtin_ops
from tinyopt.analysis.reader import TfliteModel
from tinyopt.codegen.c_array import model_data_files
from tinyopt.codegen.library import ModelLibrary
from tinyopt.codegen.render import render
from tinyopt.errors import TinyoptError

NAME = "tflm"
# -DNDEBUG: TFLM's DCHECKs sit in the kernels' inner loops (4.6-7.7x slower without it).
BUILD_FLAGS = ["-O2", "-DNDEBUG", "-DTF_LITE_STATIC_MEMORY"]
PLACEMENTS = ("static", "heap", "psram")
MODEL_SYMBOL = "tinyopt_model_data"

# MicroMutableOpResolver method names that do not follow the CamelCase rule below.
_METHOD_EXCEPTIONS = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "PADV2": "AddPadV2",
    "BATCH_MATMUL": "AddBatchMatMul",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "DETECTION_POSTPROCESS": "AddDetectionPostprocess",
    "CUMSUM": "AddCumSum",
}


def resolver_method(opcode: str) -> str:
    """CONV_2D -> AddConv2D, DEPTHWISE_CONV_2D -> AddDepthwiseConv2D, RELU6 -> AddRelu6."""
    if opcode in _METHOD_EXCEPTIONS:
        return _METHOD_EXCEPTIONS[opcode]
    parts = []
    for token in opcode.split("_"):
        if token[:1].isdigit():        # "2D" stays as it is
            parts.append(token)
        else:
            parts.append(token[:1].upper() + token[1:].lower())
    return "Add" + "".join(parts)


def model_ops(model: TfliteModel) -> list[str]:
    """Every operator the model's subgraphs use, each once, in order of first use."""
    seen: list[str] = []
    graphs = model.subgraph_opcodes or [[op.opcode for op in model.operators]]
    for graph in graphs:
        for opcode in graph:
            if opcode not in seen:
                seen.append(opcode)
    return seen


def arena_placement(board, options: dict) -> str:
    placement = options.get("arena_placement") or board.tflm.get("arena_placement", "static")
    if placement not in PLACEMENTS:
        raise TinyoptError(f"unknown arena placement {placement!r}", f"use one of {', '.join(PLACEMENTS)}")
    if placement != "static" and board.platformio.get("framework") != "espidf":
        raise TinyoptError(f"arena placement {placement!r} is only available on ESP32 boards",
                           "use arena_placement = \"static\" on this board")
    if placement == "psram" and not board.tflm.get("psram", False):
        raise TinyoptError(f"board {board.name} has no PSRAM (psram = false in its board file)",
                           "use a board file for a module with PSRAM, or place the arena in internal RAM")
    return placement


def model_library(model: TfliteModel, analysis, board, options: dict | None = None) -> ModelLibrary:
    options = dict(options or {})
    ops = model_ops(model)
    unknown = [op for op in ops if op not in tflm_builtin_ops()]
    if unknown:
        raise TinyoptError(f"TFLM has no kernel for {', '.join(unknown)}",
                           "run `tinyopt analyze` on the model; change the layers that produce these operators")
    if analysis.arena.firmware_bytes is None:
        raise TinyoptError("the tensor arena could not be measured for this model",
                           f"run `tinyopt analyze`: {analysis.arena.note}")
    arena = int(analysis.arena.firmware_bytes)
    placement = arena_placement(board, options)
    io_in = model.tensors[model.inputs[0]]
    io_out = model.tensors[model.outputs[0]]
    model_name = options["model_name"]
    files = model_data_files(model.raw, model_name, MODEL_SYMBOL)
    # TFLM invokes every operator of the main graph, in order: those are its layers
    layers = tuple((op.index, op.opcode if op.custom_code is None else f"CUSTOM:{op.custom_code}")
                   for op in model.operators)
    files["tinyopt_model_tflm.cc"] = render("tflm/tinyopt_model_tflm.cc.j2", {
        "model_name": model_name, "ops": ops, "resolver_methods": [resolver_method(op) for op in ops],
        "arena_bytes": arena, "arena_placement": placement, "symbol": MODEL_SYMBOL,
        "arena_note": f"TFLM runtime {analysis.arena.tflm_bytes} + margin {analysis.arena.margin_bytes}, aligned to 16",
        "input_bytes": io_in.nbytes, "output_bytes": io_out.nbytes, "layers": layers})
    lib_deps = list(board.tflm.get("lib_deps", []))
    return ModelLibrary(
        files=files, build_flags=list(BUILD_FLAGS), lib_deps=lib_deps, activation_bytes=arena, layers=layers,
        summary={"backend": NAME, "ops": ops, "op_count": len(ops), "arena_bytes": arena,
                 "arena_tflm_bytes": analysis.arena.tflm_bytes,
                 "arena_margin_bytes": analysis.arena.margin_bytes,
                 "arena_placement": placement,
                 "tflm_library": board.tflm.get("library", "TFLM"),
                 "kernels": board.tflm.get("kernels", "reference"),
                 "model_array_bytes": len(model.raw)})
