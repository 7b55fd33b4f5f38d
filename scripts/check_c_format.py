#!/usr/bin/env python3
"""Check the C and C++ that tinyopt ships and writes against firmware_templates/.clang-format.

Checked: every plain C/C++ source under firmware_templates/ and tests/stubs/, and the files a
generated project gets from the templates (harness, platform interface, board glue, model
interface) for one board of each glue family. Not checked (said here so nobody assumes it):
the model code itself (aot kernels, TFLM model arrays, golden vectors), whose layout follows
the generator's data tables.

  python scripts/check_c_format.py          # exit 1 and the offending files when not clean
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STYLE = ROOT / "firmware_templates" / ".clang-format"
SUFFIXES = {".c", ".h", ".cc", ".cpp"}
# one board per glue family, and the project files that come from templates other than the model's
BOARDS = ("qemu-m4", "qemu-m0", "host", "esp32", "nano33ble", "pico")
MODEL_FILES = {"tinyopt_model_aot.c", "tinyopt_aot_math.h", "model_data.cc", "model_data.h", "tinyopt_golden.h"}


def clang_format() -> str:
    found = shutil.which("clang-format") or str(Path(sys.executable).with_name("clang-format"))
    if not Path(found).exists():
        sys.exit("check_c_format: clang-format not found (pip install clang-format)")
    return found


def offenders(tool: str, files: list[Path]) -> list[str]:
    bad = []
    for f in files:
        proc = subprocess.run([tool, f"--style=file:{STYLE}", "--dry-run", "--Werror", str(f)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            first = next((ln for ln in proc.stderr.splitlines() if "warning" in ln or "error" in ln), "")
            bad.append(f"{f}: {first}")
    return bad


def generated_files(work: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import tiny_cnn  # a small int8 model the tests build too

    from tinyopt.codegen.generate import generate
    model = tiny_cnn()
    files = []
    for board in BOARDS:
        project = generate(model, board, backend="aot", out=work / board, force=True).path
        files += [p for p in project.rglob("*") if p.suffix in SUFFIXES and p.name not in MODEL_FILES]
    return files


def main() -> int:
    tool = clang_format()
    plain = [p for d in ("firmware_templates", "tests/stubs") for p in sorted((ROOT / d).rglob("*"))
             if p.suffix in SUFFIXES]
    with tempfile.TemporaryDirectory() as tmp:
        rendered = generated_files(Path(tmp))
        bad = offenders(tool, plain) + offenders(tool, rendered)
        for line in bad:
            print(line.replace(tmp, "<generated>"))
    print(f"check_c_format: {len(plain)} template sources, {len(rendered)} generated files, "
          f"{len(bad)} not formatted")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
