"""Where tinyopt finds its data folders (boards, firmware templates) and its cache."""
import os
from pathlib import Path

# The package lives next to boards/ and firmware_templates/ in the project tree;
# TINYOPT_HOME points elsewhere for unusual installs.
PROJECT_ROOT = Path(os.environ.get("TINYOPT_HOME", Path(__file__).resolve().parent.parent))
BOARDS_DIR = PROJECT_ROOT / "boards"
TEMPLATES_DIR = PROJECT_ROOT / "firmware_templates"


def cache_dir() -> Path:
    """Per-user cache (demo model, offline PlatformIO packages)."""
    base = os.environ.get("TINYOPT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tinyopt")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path
