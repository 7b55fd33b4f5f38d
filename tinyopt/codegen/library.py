"""What a backend hands to the project generator: the files of lib/tinyopt_model/."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelLibrary:
    files: dict            # relative path under lib/tinyopt_model/ -> str (text) or bytes
    build_flags: list = field(default_factory=list)
    lib_deps: list = field(default_factory=list)
    activation_bytes: int = 0   # RAM the model's activations take (arena or static buffer)
    summary: dict = field(default_factory=dict)
