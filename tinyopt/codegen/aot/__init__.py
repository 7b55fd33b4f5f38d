"""The aot backend: an int8 .tflite compiled to plain C99 (no interpreter).

model_library(model) lowers the graph (lowering.py with the per-operator lowerings of ops/,
found through registry.py), plans one static activation buffer
(planner.py), chooses dense or sparse storage per layer (sparse.py) and renders
lib/tinyopt_model/ from firmware_templates/aot/ behind the common tinyopt_model.h (which,
with library.json, the project generator writes for every backend)."""
from __future__ import annotations

import dataclasses
import hashlib

from tinyopt.analysis.reader import TfliteModel, read_tflite
from tinyopt.codegen.library import ModelLibrary
from tinyopt.codegen.render import render
from tinyopt.errors import TinyoptError

from . import lowering, planner, sparse

BUILD_FLAGS = ["-O2", "-DNDEBUG"]
KERNEL_FILE = "tinyopt_model_aot.c"


def _model_name(model: TfliteModel, options: dict) -> str:
    if options.get("model_name"):
        return str(options["model_name"])
    return "model-" + hashlib.sha256(model.raw).hexdigest()[:8] if model.raw else "model"


def _plan(model: TfliteModel, low) -> tuple[dict, int, dict]:
    """The planner's offsets and total for the lowered steps, with every in-place offer the
    kernels make, and the placement for reports: per activation tensor its offset, size and
    live range over the steps, and the in-place overlaps the planner took."""
    from tinyopt.analysis.live_ranges import live_ranges
    sizes = {**low.act_tensors, **low.scratch}
    steps_io = [(s.inputs, s.outputs + ([s.scratch] if s.scratch is not None else [])) for s in low.steps]
    offers = [planner.Overlap(i, src, t, lag, src in s.exact_overlap) for i, s in enumerate(low.steps)
              for src, lag in s.overlap.items() for t in s.outputs]
    offsets, total, taken = planner.plan_with_overlaps(sizes, steps_io, model.inputs, model.outputs,
                                                       low.aliases, offers)
    ranges = live_ranges(sizes, steps_io, model.inputs, model.outputs, low.aliases)
    owner = {s.scratch: s for s in low.steps if s.scratch is not None}

    def label(key: int) -> tuple[str, str]:
        if key in owner:
            return f"scratch of {owner[key].opcode} #{owner[key].op_index}", f"s{owner[key].op_index}"
        return model.tensors[key].name, f"t{key}"
    tensors = [{"tensor": r.key, "name": label(r.key)[0], "label": label(r.key)[1], "offset": offsets[r.key],
                "bytes": r.size, "first": r.first, "last": r.last, "scratch": r.key in owner} for r in ranges.values()]
    in_place = [{"step": o.step, "source": o.source, "target": o.target, "lag": o.lag} for o in taken]
    placement = {"bytes": total, "steps": [f"{s.opcode} #{s.op_index}" for s in low.steps], "tensors": tensors,
                 "in_place": in_place, "scratch_bytes": max(low.scratch.values(), default=0)}
    return offsets, total, placement


def memory_plan(model) -> dict:
    """The aot planner's placement for a picture, without generating code (analyze --plot);
    model_library hands the same plan over as ModelLibrary.memory_plan."""
    if not isinstance(model, TfliteModel):
        model = read_tflite(model)
    return _plan(model, lowering.lower(model))[2]


def sparse_mode(value) -> str:
    if value is True or value is False:
        return "size" if value else "off"
    if value not in sparse.MODES:
        raise TinyoptError(f"sparse storage {value!r} is not one of {', '.join(sparse.MODES)}",
                           "use --sparse auto (default), size or off")
    return value


def model_library(model, analysis=None, board=None, options=None) -> ModelLibrary:
    """model: TfliteModel (or .tflite path/bytes). options: "sparse" (sparse.MODES, default "auto";
    True / False mean "size" / "off"),
    "model_name", "dsp" (when no board is given). analysis is accepted for the common backend
    signature. The generated C compiles for every core; a board whose core lacks the DSP
    extension (board.dsp false) gets only the portable kernels, so no RAM goes to the DSP
    kernels' scratch."""
    options = dict(options or {})
    if not isinstance(model, TfliteModel):
        model = read_tflite(model)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise TinyoptError(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                           "tinyopt firmware feeds one input and reads one output",
                           "export a single-input, single-output model")
    # a board without the DSP extension gets the portable kernels only: no DSP code, no scratch
    dsp = board.dsp if board is not None else bool(options.get("dsp", True))
    low = lowering.lower(model, sparse_mode=sparse_mode(options.get("sparse", "auto")), dsp=dsp)
    offsets, arena_bytes, placement = _plan(model, low)
    steps = [dataclasses.replace(s, params=lowering.resolve(s.params, offsets)) for s in low.steps]
    tin, tout = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    name = _model_name(model, options)
    values = dict(model_name=name, consts=low.consts, steps=steps, arena_bytes=arena_bytes,
                  arena_alloc=max(arena_bytes, 4), input_off=offsets[model.inputs[0]], input_bytes=tin.nbytes,
                  output_off=offsets[model.outputs[0]], output_bytes=tout.nbytes)
    files = {
        KERNEL_FILE: render("aot/tinyopt_model_aot.c.j2", **values),
        "tinyopt_aot_math.h": render("aot/tinyopt_aot_math.h.j2", model_name=name),
        "tinyopt_aot_kernels.h": render("aot/tinyopt_aot_kernels.h.j2", model_name=name),
    }
    summary = {
        "backend": "aot",
        "model_name": name,
        "activation_bytes": arena_bytes,
        "weight_bytes": low.weight_bytes,
        "dense_weight_bytes": low.dense_weight_bytes,
        "other_const_bytes": low.other_const_bytes,
        "sparse_layers": low.sparse_layers,
        "steps": [{"op": s.opcode, "index": s.op_index, "kernel": s.kind, "macs": s.macs} for s in steps],
        "macs": sum(s.macs for s in steps),
    }
    return ModelLibrary(files=files, build_flags=list(BUILD_FLAGS), lib_deps=[], activation_bytes=arena_bytes,
                        summary=summary, layers=tuple((s.op_index, s.opcode) for s in steps),
                        memory_plan=placement)
