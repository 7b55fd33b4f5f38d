"""`tinyopt doctor`: what is installed, whether the versions agree, and the fix for each problem."""
from __future__ import annotations

import importlib.metadata as md
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

PYTHON_PACKAGES = ["tensorflow", "tf-keras", "tensorflow-model-optimization", "tflite-micro",
                   "platformio", "scons", "pyserial", "jinja2", "click", "rich", "numpy"]
TOOLS = {  # command -> (version flag, what it is for, Debian package)
    "arm-none-eabi-gcc": ("--version", "builds Cortex-M firmware for the emulated board", "gcc-arm-none-eabi"),
    "qemu-system-arm": ("--version", "runs the emulated board qemu-m4", "qemu-system-arm"),
    "gcc": ("--version", "host builds of generated C (aot tests)", "gcc"),
    "g++": ("--version", "host builds of TFLM firmware", "g++"),
    "valgrind": ("--version", "instruction counts in benchmarks", "valgrind"),
}


@dataclass(frozen=True)
class Check:
    name: str
    version: str | None
    ok: bool
    detail: str = ""
    fix: str = ""


def _pkg_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _minor(version: str | None) -> str | None:
    m = re.match(r"(\d+)\.(\d+)", version or "")
    return f"{m.group(1)}.{m.group(2)}" if m else None


def python_checks() -> list[Check]:
    out = []
    for name in PYTHON_PACKAGES:
        v = _pkg_version(name)
        out.append(Check(name, v, v is not None, "" if v else "not installed",
                         "" if v else f"pip install -e . (installs {name})"))
    tf, tk = _pkg_version("tensorflow"), _pkg_version("tf-keras")
    if tf and tk and _minor(tf) != _minor(tk):
        out.append(Check("tensorflow/tf-keras", f"{tf} / {tk}", False,
                         "tf-keras must have the same minor version as tensorflow",
                         f"pip install 'tf-keras=={_minor(tf)}.*'"))
    elif tf and tk:
        out.append(Check("tensorflow/tf-keras", f"{tf} / {tk}", True, "minor versions agree"))
    return out


def tool_checks() -> list[Check]:
    out = []
    for cmd, (flag, why, pkg) in TOOLS.items():
        path = shutil.which(cmd)
        if not path:
            out.append(Check(cmd, None, False, f"not found ({why})", f"sudo apt-get install {pkg}"))
            continue
        try:
            text = subprocess.run([cmd, flag], capture_output=True, text=True, timeout=20).stdout
            first = (text.strip().splitlines() or [""])[0]
        except (OSError, subprocess.TimeoutExpired):
            first = "?"
        out.append(Check(cmd, first[:80], True, why))
    return out


def keras_flavour_check() -> Check:
    """tfmot needs Keras 2: TF must pick tf_keras when tinyopt imports it."""
    import tinyopt  # noqa: F401
    ok = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    return Check("TF_USE_LEGACY_KERAS", os.environ.get("TF_USE_LEGACY_KERAS"), ok,
                 "set by tinyopt before TensorFlow loads" if ok else "overridden in the environment",
                 "" if ok else "unset TF_USE_LEGACY_KERAS or set it to 1")


def run_checks() -> list[Check]:
    checks = python_checks() + [keras_flavour_check()] + tool_checks()
    try:
        from tinyopt import platformio
        extra = getattr(platformio, "doctor_checks", None)
        if extra:
            checks += [Check(**c) if isinstance(c, dict) else c for c in extra()]
    except ImportError:
        pass
    tflm = os.environ.get("TINYOPT_TFLM_DIR")
    checks.append(Check("TINYOPT_TFLM_DIR", tflm or None, True,
                        "TFLM source tree for TFLM firmware builds" if tflm else
                        "unset: TFLM firmware cannot be compiled here (the aot backend needs no sources)"))
    return checks
