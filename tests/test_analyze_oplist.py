"""The operator sets the audit uses: TFLM's (a data file derived from the TFLM op resolver)
and the aot backend's."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tinyopt.analysis.op_support import aot_ops, tflm_builtin_ops, tflm_custom_ops
from tinyopt.paths import TEMPLATES_DIR


def test_tflm_set_is_plausible():
    ops = tflm_builtin_ops()
    assert len(ops) > 80
    for name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX", "WHILE"):
        assert name in ops
    assert "CUSTOM" not in ops and "GELU" not in ops
    assert "TFLite_Detection_PostProcess" in tflm_custom_ops()


def test_aot_ops_are_a_subset_of_tflm_and_come_from_the_registry():
    from tinyopt.codegen.aot.registry import lowerings
    assert aot_ops() <= tflm_builtin_ops()
    table = lowerings()
    assert aot_ops() == frozenset(table)
    for opcode, low in table.items():
        assert low.doc, f"{opcode}: its lowering needs a docstring (it is the user-facing description)"
        if low.template is not None:       # RESHAPE needs no code
            assert (TEMPLATES_DIR / low.template).is_file(), low.template


def test_data_file_matches_the_tflm_resolver():
    tflm = os.environ.get("TINYOPT_TFLM_DIR")
    if not tflm:
        pytest.skip("TINYOPT_TFLM_DIR not set: cannot compare with the TFLM op resolver")
    header = Path(tflm) / "tensorflow/lite/micro/micro_mutable_op_resolver.h"
    if not header.is_file():
        pytest.skip(f"{header} not found in TINYOPT_TFLM_DIR")
    text = header.read_text()
    builtins = set(re.findall(r"AddBuiltin\(BuiltinOperator_([A-Z0-9_]+)", text))
    customs = set(re.findall(r'AddCustom\("([A-Za-z_]+)"', text))
    assert builtins == tflm_builtin_ops()
    assert customs == tflm_custom_ops()


def test_supported_ops_document_is_generated_from_the_registry():
    import subprocess
    import sys

    from tinyopt.paths import PROJECT_ROOT
    proc = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "supported_ops.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
