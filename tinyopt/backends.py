"""The deployment backends, one registry: name -> the module that writes the model library
(lib/tinyopt_model/) and what it is, for --help. A board lists the backends it offers; its
first one is its default, the only default there is."""
from __future__ import annotations

import importlib

BACKENDS = {
    "tflm": ("tinyopt.codegen.tflm", "C array + TFLM interpreter, a resolver with exactly the model's ops"),
    "aot": ("tinyopt.codegen.aot", "the model compiled to plain C: no interpreter, one planned buffer"),
}

CHOICE_HELP = ("aot: the model compiled to plain C; tflm: C array + TFLM interpreter. "
               "Default: the board's first backend (`tinyopt boards` lists them).")


def names() -> list[str]:
    return list(BACKENDS)


def default_for(board) -> str:
    return board.backends[0]


def require(board, name: str) -> None:
    """Refuse a backend the board does not list (one message for every command)."""
    from tinyopt.errors import TinyoptError
    if name not in board.backends:
        raise TinyoptError(f"board {board.name} does not support the {name} backend",
                           f"use --backend {' or '.join(board.backends)}")


def module(name: str):
    from tinyopt.errors import TinyoptError
    if name not in BACKENDS:
        raise TinyoptError(f"unknown backend {name!r}", f"use one of {', '.join(BACKENDS)}")
    try:
        return importlib.import_module(BACKENDS[name][0])
    except ImportError as err:
        other = next(n for n in BACKENDS if n != name)
        raise TinyoptError(f"the {name} backend is not available in this installation ({err})",
                           f"use --backend {other}") from None
