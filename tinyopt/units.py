"""How sizes and fractions are written for people, in one place (tables, reports, errors)."""
from __future__ import annotations


def kb(n: int) -> str:
    """12.3 kB"""
    return f"{n / 1024:.1f} kB"


def bytes_kb(n: int | None) -> str:
    """12,345 B (12.1 kB), or n/a"""
    return "n/a" if n is None else f"{n:,} B ({n / 1024:.1f} kB)"


def size(n: int) -> str:
    """A memory size in its largest unit: 4.0 MB, 512 kB (board tables)."""
    for unit, step in (("GB", 1 << 30), ("MB", 1 << 20)):
        if n >= step:
            return f"{n / step:,.1f} {unit}"
    return f"{n / 1024:,.0f} kB"


def percent(v, digits: int = 1) -> str:
    """0.9694 -> 96.9 %, or – when there is no figure."""
    return f"{100 * v:.{digits}f} %" if isinstance(v, (int, float)) and not isinstance(v, bool) else "–"
