"""Make `pio run` work where the PlatformIO registry cannot be reached.

PlatformIO Core needs its core package `tool-scons` before it can build anything. This
module builds that package from PyPI's `scons` (package.json + scons.py templates in
scripts/pio-offline/tool-scons/, the SCons engine copied from the installed distribution),
installs it with `pio pkg install -g -t file://...` and records it under owner `platformio`,
so that PlatformIO Core takes it for its own. scripts/setup.sh runs it (through
scripts/pio_offline.py) right after installing tinyopt; tinyopt runs it before its first
build as `python -m tinyopt.pio_offline`.
Exit status: 0 ready (or left to PlatformIO because the registry answers), 1 failure."""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tinyopt.paths import PIO_OFFLINE_DIR

TEMPLATES = PIO_OFFLINE_DIR / "tool-scons"


def installed_scons_dir() -> str | None:
    """Where PlatformIO Core finds tool-scons now, without trying to download it."""
    from platformio.package.manager.core import get_core_package_dir
    return get_core_package_dir("tool-scons", auto_install=False)


def build_package(dest: Path) -> Path:
    import SCons  # PyPI's scons: a tinyopt dependency
    pkg = dest / "tool-scons"
    shutil.copytree(TEMPLATES, pkg)
    shutil.copytree(Path(SCons.__file__).resolve().parent, pkg / "SCons",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return pkg


def mark_owner(pkg_dir: Path) -> None:
    """Record the package as platformio/tool-scons (what get_core_package_dir asks for)."""
    meta_path = pkg_dir / ".piopm"
    meta = json.loads(meta_path.read_text())
    meta.setdefault("spec", {})["owner"] = "platformio"
    meta_path.write_text(json.dumps(meta))


def install_offline() -> str:
    with tempfile.TemporaryDirectory(prefix="tinyopt-tool-scons-") as tmp:
        pkg = build_package(Path(tmp))
        proc = subprocess.run(
            [sys.executable, "-m", "platformio", "pkg", "install", "-g", "-t", f"file://{pkg}"],
            capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"pio pkg install failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    from platformio.package.manager.tool import ToolPackageManager
    for item in ToolPackageManager().get_installed():
        if item.metadata and item.metadata.name == "tool-scons":
            mark_owner(Path(item.path))
    found = installed_scons_dir()
    if not found:
        raise RuntimeError("tool-scons was installed but PlatformIO Core does not find it")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true",
                        help="install the local package even if the registry answers")
    parser.add_argument("--check", action="store_true", help="report only, change nothing")
    args = parser.parse_args(argv)
    try:
        from tinyopt.platformio import registry_reachable  # the one offline test tinyopt uses too
        found = installed_scons_dir()
    except ImportError:
        print("pio_offline: platformio is not installed in this Python "
              f"({sys.executable}); run it with the project's .venv/bin/python", file=sys.stderr)
        return 1
    if found:
        print(f"pio_offline: tool-scons present at {found}")
        return 0
    if args.check:
        print("pio_offline: tool-scons missing")
        return 1
    if not args.force and registry_reachable():
        print("pio_offline: PlatformIO registry reachable; PlatformIO installs tool-scons itself")
        return 0
    try:
        path = install_offline()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        print(f"pio_offline: {err}", file=sys.stderr)
        return 1
    print(f"pio_offline: installed tool-scons from PyPI's scons at {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
