"""Rendering firmware_templates/ with Jinja2, one environment for every backend and board
(StrictUndefined: a missing value is a bug, never an empty string in the firmware)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from tinyopt.paths import TEMPLATES_DIR


def c_values(values, per_line: int = 24) -> str:
    """Integer array contents as C initialiser lines (data layout, not code)."""
    arr = np.asarray(values).reshape(-1)
    items = [str(int(v)) if int(v) != -(1 << 31) else "(-2147483647 - 1)" for v in arr]
    return "\n".join("    " + ", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line))


@lru_cache(maxsize=1)
def _env():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["c_values"] = c_values
    return env


def render(name: str, context: dict | None = None, **values) -> str:
    """Render firmware_templates/NAME with CONTEXT and/or keyword VALUES."""
    return _env().get_template(name).render(**(context or {}), **values)
