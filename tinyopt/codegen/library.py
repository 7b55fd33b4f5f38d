"""What a backend hands to the project generator: the files of lib/tinyopt_model/."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ModelLibrary:
    files: dict            # relative path under lib/tinyopt_model/ -> str (text) or bytes
    build_flags: list = field(default_factory=list)
    lib_deps: list = field(default_factory=list)
    activation_bytes: int = 0   # RAM the model's activations take (arena or static buffer)
    summary: dict = field(default_factory=dict)
    # the steps the backend runs, in order, for per-layer timing: (operator index, opcode)
    layers: tuple = ()
    # where each activation tensor lives over the steps (aot: the planner's placement), for
    # the memory picture; None where the backend does not plan memory itself
    memory_plan: dict | None = None


def write_files(root: Path, files: dict) -> None:
    """Write {relative path: str (text) or bytes} under ROOT, making folders as needed."""
    for rel, content in files.items():
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
