"""Child processes that build or benchmark run niced: the build machines are shared."""
from __future__ import annotations

import shutil


def nice(cmd: list[str]) -> list[str]:
    """CMD prefixed with `nice -n 10` where nice exists."""
    return ["nice", "-n", "10", *cmd] if shutil.which("nice") else list(cmd)
