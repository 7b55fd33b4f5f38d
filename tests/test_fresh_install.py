"""What a newcomer runs first: the demo trained into an empty cache with a live progress
display, and tinyopt installed from its wheel (not the source tree) into a fresh virtual
environment, run from an unrelated directory."""
from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import run_tinyopt

from tinyopt.paths import PROJECT_ROOT


def test_demo_trains_into_an_empty_cache_with_a_progress_display(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYOPT_CACHE", str(tmp_path / "cache"))
    from tinyopt.keras_io import demo_model_path
    from tinyopt.progress import make_progress
    with make_progress() as progress:
        path = demo_model_path(progress)
    assert path.is_file() and path.parent.parent == tmp_path / "cache"
    assert (path.parent / "demo.npz").is_file()
    assert not list(path.parent.glob("*.tmp.*"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(PROJECT_ROOT), "--no-deps", "-q", "-w", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (whl,) = out.glob("tinyopt-*.whl")
    return whl


def test_pyproject_lists_every_package_of_the_source_tree():
    """The package list is explicit (the data folders are mapped into it); a new subpackage
    missing from it would install without its code."""
    import tomllib
    listed = set(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(PROJECT_ROOT).parts)
             for p in (PROJECT_ROOT / "tinyopt").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)


def test_wheel_carries_boards_templates_and_the_offline_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for must in ("tinyopt/data/boards/qemu-m4.toml",
                 "tinyopt/data/boards/platform-qemu/builder/main.py",
                 "tinyopt/data/firmware_templates/common/tinyopt_harness.c",
                 "tinyopt/data/firmware_templates/aot/kernels/common.c.j2",
                 "tinyopt/data/pio_offline/tool-scons/scons.py",
                 "tinyopt/analysis/tflm_ops.txt"):
        assert must in names, must
    boards_in_tree = {p.name for p in (PROJECT_ROOT / "boards").glob("*.toml")}
    assert {Path(n).name for n in names if n.startswith("tinyopt/data/boards/") and n.endswith(".toml")
            and n.count("/") == 3} == boards_in_tree


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheel) -> Path:
    """A fresh venv with the wheel installed. Its dependencies come from this environment's
    site-packages through a .pth line (no second 1 GB TensorFlow install); tinyopt itself is
    only the wheel's copy, since this environment has it as an editable install, whose
    finder a .pth line does not load."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                           str(wheel)], capture_output=True, text=True, timeout=300, env=_outside_env())
    if proc.returncode != 0 and "no such option: --python" in proc.stderr:
        pytest.skip("this pip cannot install into another environment (pip >= 22.3 needed)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def _outside_env() -> dict:
    """The environment without what points Python at the source tree (a PYTHONPATH would make
    pip see tinyopt as installed already, and the venv import the tree instead of the wheel)."""
    return {k: v for k, v in os.environ.items() if k not in ("TINYOPT_HOME", "PYTHONPATH")}


def _tinyopt(venv: Path, *args, cwd: Path, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "tinyopt"), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=_outside_env())


def test_installed_wheel_runs_from_another_directory(installed, tmp_path):
    where = subprocess.run([installed / "bin" / "python", "-c",
                            "import tinyopt.paths as p; print(p.BOARDS_DIR)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path, env=_outside_env()).stdout.strip()
    assert "site-packages" in where and str(PROJECT_ROOT) not in where
    proc = _tinyopt(installed, "boards", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "qemu-m4" in proc.stdout and "esp32" in proc.stdout


@pytest.mark.slow
def test_installed_wheel_generates_and_builds_on_the_emulated_board(installed, tmp_path, demo_int8_tflite):
    from qemu_fixtures import require_emulator
    proc = _tinyopt(installed, "generate", demo_int8_tflite, "--board", "qemu-m4", "--backend", "aot",
                    "-o", tmp_path / "gen", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "gen" / "platformio.ini").is_file()
    require_emulator()
    proc = _tinyopt(installed, "build", "--board", "qemu-m4", "--backend", "aot", "-o", tmp_path / "b",
                    cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "byte-exact" in proc.stderr
    assert (tmp_path / "b" / "report.json").is_file()


def test_source_tree_cli_still_finds_its_boards(tmp_path):
    proc = run_tinyopt("boards", "--json", cwd=tmp_path)
    assert proc.returncode == 0 and "qemu-m4" in proc.stdout
