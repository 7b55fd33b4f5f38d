"""The aot backend's operator registry: the one list of what it compiles. Each lowering
function in ops/ registers itself with @lowers(OPCODE, kernels=FAMILY); FAMILY names its
kernel template firmware_templates/aot/kernels/FAMILY.c.j2 (None: the operator needs no
code). The audit's list of aot operators and the lowering's dispatch both come from here,
so adding an operator is one lowering function (in a family module) plus its macro."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Lowering:
    opcode: str
    fn: Callable             # fn(lowerer, op): appends steps, constants, aliases
    template: str | None     # firmware_templates path of the family's kernel macros
    doc: str                 # what is supported, in words (shown in SUPPORTED_OPS.md)


LOWERINGS: dict[str, Lowering] = {}


def lowers(opcode: str, kernels: str | None):
    def register(fn):
        if opcode in LOWERINGS:
            raise RuntimeError(f"aot operator {opcode} registered twice")
        template = f"aot/kernels/{kernels}.c.j2" if kernels else None
        LOWERINGS[opcode] = Lowering(opcode, fn, template, " ".join((fn.__doc__ or "").split()))
        return fn
    return register


_loaded = False


def _load_families() -> None:
    """Import every module of ops/ once: their decorators fill LOWERINGS."""
    global _loaded
    if not _loaded:
        from tinyopt.codegen.aot import ops
        for info in pkgutil.iter_modules(ops.__path__):
            importlib.import_module(f"{ops.__name__}.{info.name}")
        _loaded = True


def supported_ops() -> frozenset:
    _load_families()
    return frozenset(LOWERINGS)


def lowerings() -> dict[str, Lowering]:
    _load_families()
    return dict(LOWERINGS)
