"""Rendering firmware_templates/ with Jinja2 (StrictUndefined: a missing value is a bug,
never an empty string in the firmware)."""
from __future__ import annotations

from functools import lru_cache

from tinyopt.paths import TEMPLATES_DIR


@lru_cache(maxsize=1)
def _env():
    import jinja2
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False)


def render(name: str, context: dict) -> str:
    """Render firmware_templates/NAME with CONTEXT."""
    return _env().get_template(name).render(**context)
