#!/usr/bin/env python3
"""Make `pio run` work where the PlatformIO registry cannot be reached: provide PlatformIO's
core package tool-scons from PyPI's scons. The logic is tinyopt.pio_offline (an installed
tinyopt runs it as `python -m tinyopt.pio_offline`); run this with the project's .venv."""
import sys

try:
    from tinyopt.pio_offline import main
except ImportError:
    print(f"pio_offline: tinyopt is not installed in this Python ({sys.executable}); "
          "run it with the project's .venv/bin/python", file=sys.stderr)
    sys.exit(1)

if __name__ == "__main__":
    sys.exit(main())
