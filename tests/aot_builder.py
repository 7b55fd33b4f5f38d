"""Tiny int8 .tflite models written directly with the TFLite schema (no converter), so
each test can pin exactly the operator, shapes and quantization it exercises."""
from __future__ import annotations

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

_TYPES = {"INT8": schema.TensorType.INT8, "INT32": schema.TensorType.INT32,
          "FLOAT32": schema.TensorType.FLOAT32, "INT16": schema.TensorType.INT16}
_NP = {"INT8": np.int8, "INT32": np.int32, "FLOAT32": np.float32, "INT16": np.int16}


class GraphBuilder:
    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.tensors, self.buffers, self.ops, self.opcodes = [], [schema.BufferT()], [], []

    def tensor(self, shape, dtype="INT8", scale=None, zero_point=0, data=None, qdim=0) -> int:
        t = schema.TensorT()
        t.shape = np.asarray(shape, np.int32)
        t.type = _TYPES[dtype]
        t.name = f"t{len(self.tensors)}".encode()
        t.buffer = 0
        if data is not None:
            buf = schema.BufferT()
            buf.data = np.frombuffer(np.asarray(data, _NP[dtype]).tobytes(), np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = schema.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(scale)]
            zps = np.atleast_1d(zero_point)
            q.zeroPoint = [int(z) for z in (zps if zps.size == len(q.scale) else np.repeat(zps, len(q.scale)))]
            q.quantizedDimension = qdim
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def act(self, shape, scale=None, zero_point=None) -> int:
        """An int8 activation with random (or given) quantization."""
        scale = float(self.rng.uniform(0.01, 0.1)) if scale is None else scale
        zero_point = int(self.rng.integers(-20, 20)) if zero_point is None else zero_point
        return self.tensor(shape, "INT8", scale, zero_point)

    def weights(self, shape, channels_dim=0, per_channel=True, sparsity=0.0) -> int:
        w = self.rng.integers(-127, 128, shape).astype(np.int8)
        if sparsity:
            w[self.rng.random(shape) < sparsity] = 0
        n = shape[channels_dim] if per_channel else 1
        scales = self.rng.uniform(0.002, 0.02, n)
        return self.tensor(shape, "INT8", scales, np.zeros(n, np.int64), data=w, qdim=channels_dim)

    def bias(self, n, x_scale, w_index) -> int:
        ws = np.asarray(self.tensors[w_index].quantization.scale)
        return self.tensor([n], "INT32", x_scale * ws, np.zeros(ws.size, np.int64),
                           data=self.rng.integers(-3000, 3000, n).astype(np.int32))

    def scale_of(self, idx: int) -> float:
        return float(self.tensors[idx].quantization.scale[0])

    def const_i32(self, values) -> int:
        v = np.asarray(values, np.int32)
        return self.tensor(v.shape, "INT32", data=v)

    def op(self, name: str, inputs, outputs, options: str | None = None, **fields) -> None:
        code = getattr(schema.BuiltinOperator, name)
        key = (code, 1)
        if key not in self.opcodes:
            self.opcodes.append(key)
        o = schema.OperatorT()
        o.opcodeIndex = self.opcodes.index(key)
        o.inputs = np.asarray(inputs, np.int32)
        o.outputs = np.asarray(outputs, np.int32)
        if options:
            opt = getattr(schema, options + "T")()
            for k, v in fields.items():
                if k == "padding":
                    v = getattr(schema.Padding, v)
                elif k == "fusedActivationFunction":
                    v = getattr(schema.ActivationFunctionType, v)
                setattr(opt, k, v)
            o.builtinOptionsType = getattr(schema.BuiltinOptions, options)
            o.builtinOptions = opt
        self.ops.append(o)

    def build(self, inputs, outputs) -> bytes:
        import flatbuffers
        sub = schema.SubGraphT()
        sub.tensors, sub.operators = self.tensors, self.ops
        sub.inputs, sub.outputs = np.asarray(inputs, np.int32), np.asarray(outputs, np.int32)
        sub.name = b"main"
        model = schema.ModelT()
        model.version = 3
        model.description = b"tinyopt aot test"
        codes = []
        for code, version in self.opcodes:
            c = schema.OperatorCodeT()
            c.builtinCode = code
            c.deprecatedBuiltinCode = min(code, 127)
            c.version = version
            codes.append(c)
        model.operatorCodes, model.subgraphs, model.buffers = codes, [sub], self.buffers
        b = flatbuffers.Builder(1024)
        b.Finish(model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())
