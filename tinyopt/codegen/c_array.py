"""The model as a C array: `alignas(16) const unsigned char` in model_data.cc/.h, so it
stays in flash and TFLM can read the flatbuffer in place."""
from __future__ import annotations

import hashlib

from tinyopt.codegen.names import c_identifier
from tinyopt.codegen.render import render

BYTES_PER_ROW = 16


def hex_rows(data: bytes, per_row: int = BYTES_PER_ROW) -> list[str]:
    return [", ".join(f"0x{b:02x}" for b in data[i:i + per_row])
            for i in range(0, len(data), per_row)]


def int_rows(values, per_row: int = 16) -> list[str]:
    values = [int(v) for v in values]
    return [", ".join(str(v) for v in values[i:i + per_row]) for i in range(0, len(values), per_row)]


def model_data_files(model_bytes: bytes, model_name: str, symbol: str = "tinyopt_model_data") -> dict[str, str]:
    """{"model_data.h": ..., "model_data.cc": ...} for MODEL_BYTES."""
    symbol = c_identifier(symbol)
    ctx = {"model_name": model_name, "size": len(model_bytes), "symbol": symbol,
           "sha256": hashlib.sha256(model_bytes).hexdigest(), "guard": "TINYOPT_MODEL_DATA_H",
           "rows": hex_rows(model_bytes)}
    return {"model_data.h": render("tflm/model_data.h.j2", ctx),
            "model_data.cc": render("tflm/model_data.cc.j2", ctx)}

