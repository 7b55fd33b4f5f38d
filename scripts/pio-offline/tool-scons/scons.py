"""Entry point PlatformIO runs as `python scons.py ...` (tinyopt offline bootstrap).

The SCons engine comes from PyPI's `scons` package: the bootstrap copies it next to this
file (folder SCons/), and the interpreter's own installation is the fallback."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.isdir(os.path.join(HERE, "SCons")):
    sys.path.insert(0, HERE)

import SCons.Script.Main  # noqa: E402

if __name__ == "__main__":
    SCons.Script.Main.main()
