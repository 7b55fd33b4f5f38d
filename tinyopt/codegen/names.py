"""Names that come from files or models, made safe before they reach C, JSON or the
serial protocol (where ']' and '%' would break the framing)."""
from __future__ import annotations

import re

_C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed sizeof static struct
switch typedef union unsigned void volatile while alignas alignof bool class delete false friend
namespace new nullptr operator private protected public template this throw true try typename
using virtual""".split())


def c_identifier(text: str, fallback: str = "model") -> str:
    """A valid, non-reserved C/C++ identifier derived from TEXT."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_")
    ident = re.sub(r"_+", "_", ident) or fallback
    if ident[0].isdigit():
        ident = f"{fallback}_{ident}"
    if ident in _C_KEYWORDS or ident.startswith("__"):
        ident = f"{fallback}_{ident}"
    return ident


def safe_label(text: str, max_len: int = 48, fallback: str = "model") -> str:
    """A short label for C string literals and protocol lines: letters, digits, . _ - only."""
    label = re.sub(r"[^A-Za-z0-9._-]", "_", text)[:max_len].strip("._-")
    return label or fallback
