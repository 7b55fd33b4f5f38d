"""Jinja2 environment for the aot templates (StrictUndefined: a missing value is a bug)."""
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
def environment():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["c_values"] = c_values
    return env


def render(name: str, **values) -> str:
    return environment().get_template(name).render(**values)
