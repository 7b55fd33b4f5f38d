"""Read a .tflite flatbuffer through the maintained TFLite schema (the generated Python
module that ships with the tflite_micro package) into plain Python values."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tinyopt.errors import DamagedModel, TinyoptError


def _enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


BUILTIN_NAMES = _enum_names(schema.BuiltinOperator)
TENSOR_TYPE_NAMES = _enum_names(schema.TensorType)
PADDING_NAMES = _enum_names(schema.Padding)
ACTIVATION_NAMES = _enum_names(schema.ActivationFunctionType)

NUMPY_DTYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "UINT8": np.uint8,
    "INT64": np.int64, "INT16": np.int16, "INT8": np.int8, "BOOL": np.bool_,
    "UINT32": np.uint32, "UINT16": np.uint16, "FLOAT64": np.float64,
}


@dataclass
class Tensor:
    index: int
    name: str
    dtype: str                      # schema name: "INT8", "INT32", "FLOAT32", ...
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]  # -1 marks a dynamic dimension
    data: np.ndarray | None         # constant contents, reshaped, or None for activations
    scales: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    zero_points: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    quantized_dimension: int = 0
    is_variable: bool = False

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def per_channel(self) -> bool:
        return self.scales.size > 1

    @property
    def quant_kind(self) -> str:
        if self.scales.size == 0:
            return "none"
        return "per-channel" if self.per_channel else "per-tensor"

    @property
    def itemsize(self) -> int:
        dt = NUMPY_DTYPES.get(self.dtype)
        return np.dtype(dt).itemsize if dt is not None else 1

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        if self.dtype == "INT4":          # two values per byte
            return (self.elements + 1) // 2
        return self.elements * self.itemsize


@dataclass
class Operator:
    index: int
    opcode: str                 # "CONV_2D", ... or "CUSTOM"
    inputs: list[int]           # tensor indices, -1 for an omitted optional input
    outputs: list[int]
    options: dict               # builtin options as plain values (enums by name)
    custom_code: str | None = None
    version: int = 1


@dataclass
class TfliteModel:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    subgraph_count: int
    size_bytes: int
    description: str
    raw: bytes = field(repr=False, default=b"")
    # opcodes used by every subgraph (index 0 = the main graph); control flow (WHILE, IF)
    # keeps loop bodies in further subgraphs, which the audit has to see too.
    subgraph_opcodes: list[list[str]] = field(default_factory=list)

    def tensor(self, index: int) -> Tensor | None:
        return None if index < 0 else self.tensors[index]

    @property
    def opcodes(self) -> list[str]:
        seen = []
        for op in self.operators:
            if op.opcode not in seen:
                seen.append(op.opcode)
        return seen


def _options_dict(obj) -> dict:
    if obj is None:
        return {}
    out = {}
    for key, value in vars(obj).items():
        if key == "padding":
            value = PADDING_NAMES.get(value, value)
        elif key == "fusedActivationFunction":
            value = ACTIVATION_NAMES.get(value, value)
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        out[key] = value
    return out


def _decode(name) -> str:
    if name is None:
        return ""
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


def read_tflite(source: str | Path | bytes) -> TfliteModel:
    """Parse a .tflite model. Raises TinyoptError for anything that is not a valid model."""
    if isinstance(source, (bytes, bytearray)):
        raw, label = bytes(source), "model data"
    else:
        path = Path(source)
        if not path.is_file():
            raise TinyoptError(f"{path} does not exist or is not a file",
                               "check the path to the .tflite model")
        raw, label = path.read_bytes(), str(path)
    if len(raw) < 8:
        raise TinyoptError(f"{label} is empty or too short to be a TFLite model ({len(raw)} bytes)",
                           "re-run `tinyopt convert` to produce the .tflite")
    if raw[4:8] != b"TFL3":
        raise TinyoptError(f"{label} is not a TFLite flatbuffer (no TFL3 identifier)",
                           "pass a .tflite file written by the TFLiteConverter or `tinyopt convert`")
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(raw), 0)
        _verify(model, raw, label)
        return _convert(model, raw)
    except TinyoptError:
        raise
    except Exception as err:  # flatbuffers raises assorted errors on truncated data
        import struct
        detail = (f"{len(raw)} bytes, its tables point past the end"
                  if isinstance(err, (struct.error, IndexError)) else type(err).__name__)
        raise DamagedModel(f"{label} is a damaged or truncated TFLite flatbuffer ({detail})",
                           "the file is probably cut short; copy or convert the model again") from None


# TFLM sizes tensors in int32 bytes; nothing bigger is a microcontroller model.
MAX_TENSOR_BYTES = 1 << 31


def _damaged(label: str, what: str) -> DamagedModel:
    return DamagedModel(f"{label} is a damaged TFLite flatbuffer: {what}",
                        "copy or convert the model again (re-run `tinyopt convert`)")


def _verify(model, raw: bytes, label: str) -> None:
    """What the flatbuffer's tables must satisfy before anything indexes with them, in every
    subgraph (TFLM's C++ loader trusts them all): indices in range, sizes that add up, sane
    quantization. The Python parse already refused offsets that point outside the file."""
    buffers = model.buffers or []
    n_codes = len(model.operatorCodes or [])
    n_sub = len(model.subgraphs or [])
    for b, buf in enumerate(buffers):
        if buf.offset or buf.size:
            if buf.offset < 0 or buf.size < 0 or buf.offset + buf.size > len(raw):
                raise _damaged(label, f"buffer {b} points past the end of the file")
    for g, sub in enumerate(model.subgraphs or []):
        tensors = sub.tensors or []
        n_t = len(tensors)
        where = f"subgraph {g}" if g else "the main subgraph"
        for name in ("inputs", "outputs"):
            for i in getattr(sub, name) if getattr(sub, name) is not None else []:
                if not 0 <= int(i) < n_t:
                    raise _damaged(label, f"{where} lists {name[:-1]} tensor {int(i)} of {n_t}")
        for t_i, t in enumerate(tensors):
            _verify_tensor(t, t_i, where, len(buffers), buffers, label)
        for o_i, op in enumerate(sub.operators or []):
            if not 0 <= op.opcodeIndex < n_codes:
                raise _damaged(label, f"operator {o_i} of {where} has opcode {op.opcodeIndex} of {n_codes}")
            for i in op.inputs if op.inputs is not None else []:
                if not -1 <= int(i) < n_t:
                    raise _damaged(label, f"operator {o_i} of {where} reads tensor {int(i)} of {n_t}")
            for i in op.outputs if op.outputs is not None else []:
                if not 0 <= int(i) < n_t:
                    raise _damaged(label, f"operator {o_i} of {where} writes tensor {int(i)} of {n_t}")
            opts = op.builtinOptions
            for key, value in (vars(opts).items() if opts is not None else []):
                if key.endswith("SubgraphIndex") and isinstance(value, int) and not 0 <= value < n_sub:
                    raise _damaged(label, f"operator {o_i} of {where} calls subgraph {value} of {n_sub}")


def _verify_tensor(t, index: int, where: str, n_buffers: int, buffers, label: str) -> None:
    name = f"tensor {index} of {where}"
    dtype = TENSOR_TYPE_NAMES.get(t.type)
    if dtype is None:
        raise _damaged(label, f"{name} has unknown type {t.type}")
    shape = [int(d) for d in (t.shape if t.shape is not None else [])]
    if len(shape) > 8 or any(d < 0 for d in shape):
        raise _damaged(label, f"{name} has shape {shape}")
    itemsize = np.dtype(NUMPY_DTYPES[dtype]).itemsize if dtype in NUMPY_DTYPES else 1
    elements = 1
    for d in shape:
        elements *= d
    if elements * itemsize >= MAX_TENSOR_BYTES:
        raise _damaged(label, f"{name} would need {elements * itemsize} bytes (shape {shape})")
    if not 0 <= t.buffer < max(n_buffers, 1):
        raise _damaged(label, f"{name} uses buffer {t.buffer} of {n_buffers}")
    buf = buffers[t.buffer] if t.buffer < n_buffers else None
    stored = len(buf.data) if buf is not None and buf.data is not None else (buf.size if buf is not None else 0)
    if t.buffer > 0 and stored and dtype in NUMPY_DTYPES and stored != elements * itemsize:
        raise _damaged(label, f"{name} holds {stored} bytes, its shape {shape} of {dtype} needs "
                              f"{elements * itemsize}")
    q = t.quantization
    if q is None:
        return
    scales = np.asarray(q.scale if q.scale is not None else [], np.float64)
    zps = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], np.int64)
    if scales.size == 0 and zps.size == 0:
        return
    if not np.all(np.isfinite(scales)) or np.any(scales < 0):
        raise _damaged(label, f"{name} has a scale that is not a finite positive number")
    if zps.size not in (0, scales.size) or np.any(np.abs(zps) > 1 << 16):
        raise _damaged(label, f"{name} has {zps.size} zero points for {scales.size} scales")
    if scales.size > 1:
        qdim = int(q.quantizedDimension)
        if not 0 <= qdim < len(shape) or shape[qdim] != scales.size:
            raise _damaged(label, f"{name} has {scales.size} per-channel scales along dimension "
                                  f"{qdim} of shape {shape}")


def _convert(model, raw: bytes) -> TfliteModel:
    if not model.subgraphs:
        raise TinyoptError("the model has no subgraph", "convert the model again")
    sub = model.subgraphs[0]
    buffers = model.buffers or []
    opcodes = []
    for oc in model.operatorCodes or []:
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        opcodes.append((BUILTIN_NAMES.get(code, f"OP_{code}"), _decode(oc.customCode) or None,
                        oc.version))
    tensors = []
    for i, t in enumerate(sub.tensors or []):
        dtype = TENSOR_TYPE_NAMES.get(t.type, f"TYPE_{t.type}")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        sig = tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None else shape
        data = None
        buf = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
        if buf is not None:
            if buf.data is not None and len(buf.data):
                blob = np.asarray(buf.data, dtype=np.uint8).tobytes()
            elif buf.size:  # data stored outside the flatbuffer (models > 2 GB)
                blob = raw[buf.offset:buf.offset + buf.size]
            else:
                blob = None
            if blob is not None and dtype in NUMPY_DTYPES:
                itemsize = np.dtype(NUMPY_DTYPES[dtype]).itemsize   # sizes already verified
                arr = np.frombuffer(blob[:len(blob) // itemsize * itemsize],
                                    dtype=NUMPY_DTYPES[dtype]).copy()
                if shape and arr.size == int(np.prod(shape)):
                    arr = arr.reshape(shape)
                data = arr
            elif blob is not None:
                # A type numpy has no dtype for (INT4 packs two values per byte): keep the raw
                # bytes, so the tensor still counts as a constant.
                data = np.frombuffer(blob, dtype=np.uint8).copy()
        q = t.quantization
        scales = np.asarray(q.scale if q is not None and q.scale is not None else [], np.float32)
        zps = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], np.int64)
        qdim = int(q.quantizedDimension) if q is not None else 0
        tensors.append(Tensor(i, _decode(t.name), dtype, shape, sig, data, scales, zps, qdim,
                              bool(t.isVariable)))
    operators = []
    for i, op in enumerate(sub.operators or []):
        name, custom, version = opcodes[op.opcodeIndex]
        inputs = [int(x) for x in (op.inputs if op.inputs is not None else [])]
        outputs = [int(x) for x in (op.outputs if op.outputs is not None else [])]
        operators.append(Operator(i, name, inputs, outputs, _options_dict(op.builtinOptions),
                                  custom, version))
    subgraph_opcodes = [[opcodes[op.opcodeIndex][0] if opcodes[op.opcodeIndex][1] is None
                         else f"CUSTOM:{opcodes[op.opcodeIndex][1]}" for op in (sg.operators or [])]
                        for sg in model.subgraphs]
    if sub.inputs is None or sub.outputs is None:
        raise TinyoptError("the model's main subgraph declares no inputs or outputs",
                           "convert the model again")
    return TfliteModel(tensors=tensors, operators=operators,
                       inputs=[int(x) for x in sub.inputs], outputs=[int(x) for x in sub.outputs],
                       subgraph_count=len(model.subgraphs), size_bytes=len(raw),
                       description=_decode(model.description), raw=raw,
                       subgraph_opcodes=subgraph_opcodes)
