"""Where tinyopt finds its data folders (boards, firmware templates, the offline PlatformIO
package) and its cache.

In the source tree they are top-level folders next to the package; a wheel carries the same
folders inside the package as tinyopt/data/ (see pyproject.toml). TINYOPT_HOME points at
another tree holding boards/ and firmware_templates/."""
import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_SOURCE_TREE = _PACKAGE.parent


def _is_source_tree(root: Path) -> bool:
    # A file only this project has: site-packages/ may well hold some other boards/ folder.
    return (root / "firmware_templates" / "common" / "tinyopt_harness.c").is_file()


if os.environ.get("TINYOPT_HOME"):
    PROJECT_ROOT = Path(os.environ["TINYOPT_HOME"])
    BOARDS_DIR = PROJECT_ROOT / "boards"
    TEMPLATES_DIR = PROJECT_ROOT / "firmware_templates"
    PIO_OFFLINE_DIR = PROJECT_ROOT / "scripts" / "pio-offline"
elif _is_source_tree(_SOURCE_TREE):
    PROJECT_ROOT = _SOURCE_TREE
    BOARDS_DIR = PROJECT_ROOT / "boards"
    TEMPLATES_DIR = PROJECT_ROOT / "firmware_templates"
    PIO_OFFLINE_DIR = PROJECT_ROOT / "scripts" / "pio-offline"
else:  # an installed wheel
    PROJECT_ROOT = _PACKAGE / "data"
    BOARDS_DIR = PROJECT_ROOT / "boards"
    TEMPLATES_DIR = PROJECT_ROOT / "firmware_templates"
    PIO_OFFLINE_DIR = PROJECT_ROOT / "pio_offline"


def cache_dir() -> Path:
    """Per-user cache (demo model, offline PlatformIO packages)."""
    base = os.environ.get("TINYOPT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tinyopt")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path
