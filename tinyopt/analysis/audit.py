"""TFLM compatibility audit: everything that would make the firmware fail (or silently
run something else than the user meant), found on the host before anything is built.
Each finding says what is wrong, where (operator index and Keras layer) and how to fix it."""
from __future__ import annotations

from dataclasses import dataclass, field

from tinyopt.analysis.layers import layer_of_op
from tinyopt.analysis.op_support import aot_ops, tflm_builtin_ops, tflm_custom_ops
from tinyopt.analysis.reader import Operator, TfliteModel

_WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV",
             "BATCH_MATMUL", "SVDF", "UNIDIRECTIONAL_SEQUENCE_LSTM", "LSTM",
             "BIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN", "EMBEDDING_LOOKUP"}
_CONVERT_INT8 = ("convert full-integer int8 with a representative dataset "
                 "(`tinyopt convert MODEL --data DATA.npz`)")


@dataclass(frozen=True)
class Finding:
    code: str                   # short machine-readable kind, e.g. "float-model"
    message: str
    hint: str
    op_index: int | None = None
    layer: str | None = None
    backend: str | None = None  # set when only that backend is affected

    def to_json(self) -> dict:
        return {"code": self.code, "message": self.message, "hint": self.hint,
                "op_index": self.op_index, "layer": self.layer, "backend": self.backend}


@dataclass(frozen=True)
class Audit:
    errors: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    backend_errors: dict = field(default_factory=dict)   # backend -> tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    def errors_for(self, backend: str | None) -> tuple[Finding, ...]:
        return self.errors + tuple(self.backend_errors.get(backend, ()))

    def to_json(self) -> dict:
        return {"ok": self.ok, "errors": [f.to_json() for f in self.errors],
                "warnings": [f.to_json() for f in self.warnings],
                "backend_errors": {b: [f.to_json() for f in fs]
                                   for b, fs in self.backend_errors.items()}}


def _where(model: TfliteModel, op: Operator) -> tuple[str, str | None]:
    layer = layer_of_op(model, op)
    text = f"operator #{op.index} {op.opcode}"
    return (text + (f" (Keras layer '{layer}')" if layer else "")), layer


class _Collector:
    def __init__(self, model: TfliteModel):
        self.model = model
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []
        self.backend: dict[str, list[Finding]] = {}

    def add(self, kind, code, message, hint, op=None, backend=None):
        where, layer = _where(self.model, op) if op is not None else ("", None)
        if where:
            message = f"{where}: {message}"
        finding = Finding(code, message, hint, op.index if op is not None else None, layer, backend)
        if backend:
            self.backend.setdefault(backend, []).append(finding)
        else:
            (self.errors if kind == "error" else self.warnings).append(finding)


def audit(model: TfliteModel) -> Audit:
    c = _Collector(model)
    if not model.operators:
        c.add("error", "empty-model", "the model has no operators",
              "convert the Keras model again; check that it has layers")
    _check_subgraphs(model, c)
    _check_operators(model, c)
    _check_types(model, c)
    _check_shape_chains(model, c)
    _check_io(model, c)
    return Audit(tuple(c.errors), tuple(c.warnings),
                 {b: tuple(fs) for b, fs in c.backend.items()})


def _check_subgraphs(model: TfliteModel, c: _Collector) -> None:
    if model.subgraph_count <= 1:
        return
    loop = next((op for op in model.operators if op.opcode in ("WHILE", "IF", "CALL_ONCE")), None)
    kinds = sorted({name for ops in model.subgraph_opcodes[1:] for name in ops})
    c.add("error", "multiple-subgraphs",
          f"the model has {model.subgraph_count} subgraphs (control flow: a recurrent layer "
          f"that is not unrolled; loop body uses {', '.join(kinds[:6]) or 'no ops'}); its memory "
          "and run time depend on the sequence length at run time and cannot be planned",
          "unroll the recurrent layer: build it with unroll=True (e.g. keras.layers.LSTM(n, "
          "unroll=True)) and a fixed sequence length and batch size 1, then convert again", loop)
    # Operators inside the loop bodies must exist in TFLM too.
    supported = tflm_builtin_ops()
    for name in sorted({n for ops in model.subgraph_opcodes[1:] for n in ops}):
        if not name.startswith("CUSTOM:") and name not in supported:
            c.add("error", "unsupported-op",
                  f"operator {name} (in a control-flow subgraph) is not implemented by TFLM",
                  "unroll the recurrent layer so the converter emits plain operators")


def _check_operators(model: TfliteModel, c: _Collector) -> None:
    supported, customs = tflm_builtin_ops(), tflm_custom_ops()
    reported: set = set()      # one finding per opcode (and per backend), not per instance
    for op in model.operators:
        if op.opcode == "CUSTOM":
            code = op.custom_code or "?"
            if code.startswith("Flex"):
                c.add("error", "flex-op", f"TensorFlow (Flex) operator {code[4:]} needs the full "
                      "TensorFlow runtime, which TFLM does not have",
                      "replace the layer with builtin operators and do not enable "
                      "SELECT_TF_OPS in the converter", op)
            elif code in customs:
                c.add("warning", "custom-op", f"custom operator {code} ships with TFLM but must be "
                      "registered by hand", "register it in the op resolver of your firmware", op)
            else:
                c.add("error", "custom-op", f"custom operator {code} has no TFLM kernel",
                      "write and register a TFLM kernel for it, or replace the layer with "
                      "builtin operators", op)
            c.add("error", "backend-op", f"custom operator {code} is not supported by the aot backend",
                  "use --backend tflm", op, backend="aot")
            continue
        if op.opcode not in supported and op.opcode not in reported:
            reported.add(op.opcode)
            c.add("error", "unsupported-op", f"operator {op.opcode} is not implemented by TFLM",
                  "replace this Keras layer with one built from operators TFLM implements "
                  "(listed in tinyopt/analysis/tflm_ops.txt)", op)
        if op.opcode not in aot_ops() and ("aot", op.opcode) not in reported:
            reported.add(("aot", op.opcode))
            c.add("error", "backend-op", f"operator {op.opcode} is not supported by the aot backend",
                  "use --backend tflm, or replace the layer with one the aot backend compiles "
                  f"({', '.join(sorted(aot_ops()))})", op, backend="aot")


def _is_edge_float(model: TfliteModel, op: Operator, idx: int) -> bool:
    """A float graph input consumed by QUANTIZE, or a float graph output made by DEQUANTIZE:
    an int8 model with float I/O, reported separately from float computation."""
    return ((op.opcode == "QUANTIZE" and idx in model.inputs) or
            (op.opcode == "DEQUANTIZE" and idx in model.outputs))


def _check_types(model: TfliteModel, c: _Collector) -> None:
    t = model.tensor
    first_float = first_hybrid = first_f16 = first_u8 = first_i16 = None
    float_ops = 0
    for op in model.operators:
        acts = [i for i in op.inputs + op.outputs if i >= 0 and not t(i).is_constant]
        consts = [t(i) for i in op.inputs if i >= 0 and t(i).is_constant]
        if any(x.dtype == "FLOAT16" for x in consts) and first_f16 is None:
            first_f16 = op
        if any(t(i).dtype == "UINT8" for i in acts) or any(x.dtype == "UINT8" for x in consts):
            first_u8 = first_u8 or op
        if any(t(i).dtype == "INT16" for i in acts) and first_i16 is None:
            first_i16 = op
        floats = [i for i in acts if t(i).dtype == "FLOAT32" and not _is_edge_float(model, op, i)]
        if not floats:
            continue
        int8_weights = ((op.opcode in _WEIGHTED and any(x.dtype in ("INT8", "INT4") for x in consts))
                        # weights stored int8 and expanded to float at run time
                        or (op.opcode == "DEQUANTIZE" and any(x.dtype == "INT8" for x in consts)))
        if int8_weights:
            first_hybrid = first_hybrid or op
        else:
            float_ops += 1
            first_float = first_float or op
    if first_f16 is not None:
        c.add("error", "float16-weights", "float16 weights: TFLM has no float16 kernels",
              "do not set converter.target_spec.supported_types = [tf.float16]; " + _CONVERT_INT8,
              first_f16)
    if first_u8 is not None:
        c.add("error", "uint8-model", "uint8 (legacy asymmetric) quantization: TFLM's optimized "
              "kernels and tinyopt's firmware expect int8",
              "convert again with the TF2 converter to full-integer int8 (`tinyopt convert`)",
              first_u8)
    if first_hybrid is not None:
        c.add("error", "hybrid-model", "dynamic-range (hybrid) quantization: int8 weights with "
              "float32 activations, which TFLM kernels do not run",
              _CONVERT_INT8 + "; the converter needs it to quantize activations too", first_hybrid)
    if first_float is not None and first_hybrid is None:
        c.add("error", "float-model", f"float32 computation left in the graph ({float_ops} "
              "operator(s) with float32 tensors); tinyopt deploys int8 models only",
              _CONVERT_INT8 + " and int8 input/output", first_float)
    elif first_float is not None:
        c.add("error", "float-tensors", f"{float_ops} more operator(s) compute in float32",
              _CONVERT_INT8, first_float)
    if first_i16 is not None:
        c.add("warning", "int16-activations", "int16 activations (16x8 quantization): only some "
              "TFLM kernels support them", "use int8 activations unless accuracy needs 16 bits",
              first_i16)
        c.add("error", "backend-int16", "int16 activations are not supported by the aot backend",
              "use --backend tflm, or convert with int8 activations", first_i16, backend="aot")


def _consumers(model: TfliteModel, tensor: int) -> list[Operator]:
    return [op for op in model.operators if tensor in op.inputs]


def _check_shape_chains(model: TfliteModel, c: _Collector) -> None:
    """SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE: the converter's way of computing a
    dynamic batch size at run time, in int32. The fix is a static shape."""
    reported: set[int] = set()
    for op in model.operators:
        if op.opcode != "SHAPE":
            continue
        # Follow the int32 chain forward to the operator that consumes the shape.
        frontier, chain, target = list(op.outputs), [op.opcode], None
        for _ in range(16):
            nxt = [u for idx in frontier for u in _consumers(model, idx)]
            if not nxt:
                break
            user = nxt[0]
            if user.opcode in ("RESHAPE", "FILL", "BROADCAST_TO", "BROADCAST_ARGS"):
                target = user
                break
            chain.append(user.opcode)
            frontier = list(user.outputs)
        target = target or op
        chain_text = " -> ".join(dict.fromkeys(chain + [target.opcode]))
        reported.add(target.index)
        c.add("error", "shape-chain", f"int32 shape computation ({chain_text}) from a dynamic "
              "batch size", "give the model a fixed batch size: keras.Input(shape, batch_size=1), "
              "or a Reshape/Flatten whose target shape has no -1 batch, then convert again", target)
    for op in model.operators:
        if op.opcode == "RESHAPE" and op.index not in reported and len(op.inputs) > 1:
            shape_in = model.tensor(op.inputs[1])
            if shape_in is not None and not shape_in.is_constant and op.inputs[1] not in model.inputs:
                c.add("error", "shape-chain", "Reshape target shape is computed at run time",
                      "use a Reshape with a fixed target shape and a fixed batch size of 1", op)


def _check_io(model: TfliteModel, c: _Collector) -> None:
    for kind, indices in (("input", model.inputs), ("output", model.outputs)):
        for idx in indices:
            tensor = model.tensors[idx]
            if tensor.dtype == "FLOAT32":
                edge = [op for op in model.operators
                        if (kind == "input" and op.opcode == "QUANTIZE" and idx in op.inputs) or
                        (kind == "output" and op.opcode == "DEQUANTIZE" and idx in op.outputs)]
                if edge:
                    c.add("error", "float-io", f"the model {kind} '{tensor.name}' is float32 "
                          "(int8 inside, converted at the edge); tinyopt firmware exchanges int8",
                          "set converter.inference_input_type and inference_output_type to "
                          "tf.int8 (`tinyopt convert` does)", edge[0])
            if len(tensor.shape) and tensor.shape[0] > 1:
                c.add("warning", "batch", f"the model {kind} '{tensor.name}' has batch size "
                      f"{tensor.shape[0]}; the firmware runs {tensor.shape[0]} samples per inference",
                      "convert with batch size 1 for the lowest memory and latency")
