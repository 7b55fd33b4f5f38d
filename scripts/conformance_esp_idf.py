"""Conformance check: ESP-IDF's own CMake configure on a generated ESP32 / ESP32-S3 project.

The boards pin espressif32@6.9.0, which builds `framework = espidf` with ESP-IDF 5.3.1. A real
`pio run` cannot happen here (no registry, no Xtensa toolchain), so this script runs the step
of PlatformIO's builder (platform-espressif32 v6.9.0, builder/frameworks/espidf.py) that
decides whether the project is a valid ESP-IDF project: the CMake configure + generate of
ESP-IDF itself, with the arguments that builder passes, and then the checks the builder makes
on the result:

    cmake -S PROJECT -B PROJECT/.pio/build/ENV -G Ninja
          -DIDF_TARGET=<esp32|esp32s3> -DPYTHON_DEPS_CHECKED=1
          -DEXTRA_COMPONENT_DIRS:PATH=PROJECT/src -DPYTHON=<IDF python>
          -DSDKCONFIG=PROJECT/sdkconfig.ENV
    (environment: IDF_PATH=<ESP-IDF tree>, the IDF python's bin/ first on PATH, and a
    CMake File API query codemodel-v2, which the builder reads instead of ninja files)

"configured" means: configure and generate succeeded; the code model has the target
`__idf_src` (the builder's "main target of the project"; without it the build stops with
"Couldn't find the main target of the project!"), `__idf_tinyopt_model`, `__pio_env` and, for
the tflm backend, `__idf_espressif__esp-tflite-micro`; the written sdkconfig has the board's
CPU clock (CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ), the board's flash size
(CONFIG_ESPTOOLPY_FLASHSIZE, which the builder compares with the board's flash size) and the
partition table of board_build.partitions (CONFIG_PARTITION_TABLE_FILENAME), and every other
setting of sdkconfig.defaults (Kconfig drops misspelt options silently); every quoted
#include of src/ and lib/tinyopt_model/ is found on the include path the code model gives
that component (so its REQUIRES name the right ESP-IDF 5.3 components); esp-tflite-micro is
compiled with NDEBUG (tflm backend); and
src/idf_component.yml passes the component manager's own validator.

What stands in for what (everything is written into WORKDIR; the trees are only read):

- Xtensa cross compiler -> WORKDIR/bin/xtensa-<chip>-elf-gcc and -g++: shell scripts around
  the host gcc/g++. They answer `-dumpmachine` with `xtensa-<chip>-elf` (ESP-IDF's xtensa
  component stops the configure unless the triple says xtensa) and pass every other argument
  to the host compiler minus `-m...` machine options (-mlongcalls and the other Xtensa-only
  flags the host compiler rejects), so CMake's compiler identification and ESP-IDF's compiler
  flag checks run. `--version` reports the host compiler, so ESP-IDF warns that the toolchain
  version is not the expected one: expected, harmless. Nothing is compiled for the chip.
- Xtensa binutils -> WORKDIR/bin/xtensa-<chip>-elf-{ar,ranlib,objcopy,...}: symlinks to the
  host's.
- The component manager's download -> IDF_COMPONENT_MANAGER=0 and the trees in
  TINYOPT_TFLM_DIR / TINYOPT_ESP_NN_DIR linked into PROJECT/components/ under the names the
  manager gives them in managed_components/ (espressif__esp-tflite-micro,
  espressif__esp-nn), only for dependencies src/idf_component.yml declares (esp-nn is
  esp-tflite-micro's own dependency). Each tree's version must satisfy the manifest's
  version spec.
- PlatformIO's dummy component `__pio_env` (the builder writes it into the framework's
  components/ folder) -> PROJECT/components/__pio_env, the same three empty sources and
  CMakeLists.txt, so the ESP-IDF tree stays untouched.
- PlatformIO's IDF python venv -> TINYOPT_IDF_PYTHON (a venv with ESP-IDF's core
  requirements; see scripts/conformance_trees.md).

Environment: TINYOPT_IDF_DIR (ESP-IDF v5.3.1 tree), TINYOPT_IDF_PYTHON, TINYOPT_TFLM_DIR
(esp-tflite-micro component tree), TINYOPT_ESP_NN_DIR (esp-nn tree). Missing -> "skipped".

CLI: python scripts/conformance_esp_idf.py MODEL.tflite [--board esp32] [--backend tflm]
[--workdir DIR]; prints "STATUS: REASON"; exit 0 configured, 1 failed, 2 skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

IDF_VERSION = "5.3.1"
# IDF_TARGET per PlatformIO board: `build.mcu` of platform-espressif32 v6.9.0's boards/*.json.
TARGETS = {"esp32dev": "esp32", "esp32-s3-devkitc-1": "esp32s3"}
BINUTILS = ("ar", "ranlib", "objcopy", "objdump", "nm", "strip", "readelf", "size", "ld", "as",
            "c++filt", "addr2line", "gcc-ar", "gcc-ranlib", "gcc-nm")
# Where the component manager's dependencies come from here (env var per registry name).
COMPONENT_TREES = {"espressif/esp-tflite-micro": "TINYOPT_TFLM_DIR",
                   "espressif/esp-nn": "TINYOPT_ESP_NN_DIR"}
CONFIGURE_TIMEOUT_S = 900

# Run by TINYOPT_IDF_PYTHON: the component manager's validator and version matching.
_MANIFEST_CHECK = r"""
import json, sys
from idf_component_tools.manifest import ManifestManager
from idf_component_tools.semver import SimpleSpec, Version
m = ManifestManager(sys.argv[1], name=sys.argv[2]).validate()
out = {"errors": [str(e) for e in m.validation_errors], "deps": {}}
if not out["errors"]:
    out["deps"] = {k: (v.get("version", "*") if isinstance(v, dict) else str(v))
                   for k, v in (m.normalized_manifest_tree.get("dependencies") or {}).items()}
def match(spec, version):
    return spec == "*" or version == "*" or SimpleSpec(spec).match(Version(version.split("~")[0]))
out["mismatch"] = [f"{k} {v} does not satisfy {out['deps'][k]!r}"
                   for k, v in json.loads(sys.argv[3]).items()
                   if k in out["deps"] and not match(out["deps"][k], v)]
print(json.dumps(out))
"""

_COMPILER_SCRIPT = """#!/bin/bash
# Stand-in for {name}, written by tinyopt's scripts/conformance_esp_idf.py for ESP-IDF's CMake
# configure only: answers -dumpmachine with {triple}, drops -m... (Xtensa machine options)
# and runs the host compiler {host} with the rest. It compiles nothing for the chip.
args=()
for a in "$@"; do
  case "$a" in
    -dumpmachine) echo "{triple}"; exit 0 ;;
    -m*) ;;
    *) args+=("$a") ;;
  esac
done
exec {host} "${{args[@]}}"
"""

_PIO_ENV_CMAKE = """# PlatformIO's default component (its espidf builder writes this into the framework).
file(GLOB component_sources *.c* *.S)
idf_component_register(SRCS ${component_sources})
"""


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _env_dir(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _idf_version(idf: Path) -> str:
    text = (idf / "tools/cmake/version.cmake").read_text()
    parts = [re.search(rf"IDF_VERSION_{k}\s+(\d+)", text) for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(m.group(1) if m else "?" for m in parts)


def write_standins(bin_dir: Path, target: str) -> None:
    """The stand-in cross compiler and binutils for TARGET (see the module docstring)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    triple = f"xtensa-{target}-elf"
    for suffix, host in (("gcc", "gcc"), ("g++", "g++"), ("cc", "gcc"), ("c++", "g++")):
        host_path = shutil.which(host)
        path = bin_dir / f"{triple}-{suffix}"
        path.write_text(_COMPILER_SCRIPT.format(name=path.name, triple=triple, host=host_path))
        path.chmod(0o755)
    for tool in BINUTILS:
        host_path = shutil.which(tool)
        link = bin_dir / f"{triple}-{tool}"
        if host_path and not link.exists():
            link.symlink_to(host_path)


def _component_version(tree: Path) -> str:
    manifest = tree / "idf_component.yml"
    if not manifest.is_file():
        return "*"
    m = re.search(r'^version:\s*"?([^"\s]+)"?', manifest.read_text(), re.M)
    return m.group(1) if m else "*"


def _component_deps(tree: Path) -> list[str]:
    """Registry dependencies (owner/name) a component tree's idf_component.yml declares."""
    manifest = tree / "idf_component.yml"
    if not manifest.is_file():
        return []
    return re.findall(r"^\s+([\w.-]+/[\w.-]+):", manifest.read_text(), re.M)


def _check_manifest(python: Path, manifest_dir: Path, name: str, versions: dict) -> dict:
    proc = subprocess.run([str(python), "-c", _MANIFEST_CHECK, str(manifest_dir), name,
                           json.dumps(versions)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return {"errors": [f"component manager validator did not run: "
                           f"{_one_line(proc.stderr.strip().splitlines()[-1:] or proc.stderr)}"]}
    return json.loads(proc.stdout)


def _sdkconfig(path: Path) -> dict:
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value.strip('"')
    return values


def _codemodel_targets(build: Path) -> set[str]:
    reply = build / ".cmake/api/v1/reply"
    names = set()
    for index in reply.glob("codemodel-v2-*.json"):
        data = json.loads(index.read_text())
        for config in data.get("configurations", []):
            names.update(t["name"] for t in config.get("targets", []))
    return names


def _target_json(build: Path, prefix: str) -> dict:
    for path in (build / ".cmake/api/v1/reply").glob(f"target-{prefix}-*.json"):
        return json.loads(path.read_text())
    return {}


def _unresolved_includes(build: Path, target: str, folder: Path) -> list[str]:
    """Quoted #includes of FOLDER's sources that no include directory of TARGET (as the code
    model gives them to PlatformIO) nor the file's own folder provides."""
    groups = _target_json(build, target).get("compileGroups", [])
    dirs = {Path(i["path"]) for g in groups for i in g.get("includes", [])}
    missing = []
    for src in sorted(folder.rglob("*")):
        if src.suffix not in (".c", ".cc", ".cpp", ".h"):
            continue
        for name in re.findall(r'^\s*#\s*include\s+"([^"]+)"', src.read_text(errors="replace"), re.M):
            if not any((d / name).is_file() for d in dirs | {src.parent}):
                missing.append(f"{src.name}: {name}")
    return missing


def _defines(build: Path, target: str) -> set[str]:
    groups = _target_json(build, target).get("compileGroups", [])
    return {d["define"] for g in groups for d in g.get("defines", [])}


def missing_trees(backend: str) -> str | None:
    """Why the check cannot run here (an unset or wrong tree, a missing tool), or None."""
    needed = ["TINYOPT_IDF_DIR", "TINYOPT_IDF_PYTHON"]
    if backend == "tflm":
        needed += ["TINYOPT_TFLM_DIR", "TINYOPT_ESP_NN_DIR"]
    for name in needed:
        path = _env_dir(name)
        if path is None:
            return f"{name} not set (see scripts/conformance_trees.md for the trees)"
        if not path.exists():
            return f"{name}={path} does not exist"
    for tool in ("cmake", "ninja", "gcc", "g++"):
        if not shutil.which(tool):
            return f"{tool} not found on PATH"
    idf = _env_dir("TINYOPT_IDF_DIR")
    if not (idf / "tools/cmake/project.cmake").is_file():
        return f"TINYOPT_IDF_DIR={idf} is no ESP-IDF tree (no tools/cmake/project.cmake)"
    version = _idf_version(idf)
    if version != IDF_VERSION:
        return f"TINYOPT_IDF_DIR is ESP-IDF {version}; espressif32@6.9.0 uses {IDF_VERSION}"
    return None


def check(board_name: str, backend: str, model: Path, workdir: Path) -> tuple[str, str]:
    """Generate BOARD_NAME/BACKEND for MODEL under WORKDIR and run ESP-IDF's configure on it
    as platform-espressif32 6.9.0 does. Returns (status, reason): status is "configured",
    "failed" or "skipped" (trees or tools absent); reason is one line."""
    from tinyopt.boards import load_board
    from tinyopt.codegen.generate import generate
    from tinyopt.errors import TinyoptError

    missing = missing_trees(backend)
    if missing:
        return "skipped", missing
    board = load_board(board_name)
    if board.platformio.get("framework") != "espidf":
        return "skipped", f"board {board_name} does not build with ESP-IDF"
    target = TARGETS.get(board.platformio["board"])
    if target is None:
        return "failed", f"no IDF_TARGET known for PlatformIO board {board.platformio['board']}"
    idf = _env_dir("TINYOPT_IDF_DIR").resolve()
    python = _env_dir("TINYOPT_IDF_PYTHON")

    workdir = Path(workdir).resolve()
    project = workdir / f"{board_name}-{backend}"
    try:
        generate(model, board, backend=backend, out=project, force=True)
    except TinyoptError as err:
        return "failed", _one_line(f"generate: {err}")
    env_name = re.search(r"^\[env:(.+)\]$", (project / "platformio.ini").read_text(), re.M).group(1)

    # The component manager's part: validate the manifest, place the dependencies.
    deps_needed: dict[str, Path] = {}
    manifest_text = (project / "src/idf_component.yml").read_text()
    queue = re.findall(r"^\s+([\w.-]+/[\w.-]+):", manifest_text, re.M)
    while queue:
        dep = queue.pop(0)
        if dep in deps_needed:
            continue
        var = COMPONENT_TREES.get(dep)
        if var is None or _env_dir(var) is None:
            return "skipped", f"no local tree for the dependency {dep} (set {var or 'a tree'})"
        deps_needed[dep] = _env_dir(var).resolve()
        queue += _component_deps(deps_needed[dep])
    direct = set(re.findall(r"^\s+([\w.-]+/[\w.-]+):", manifest_text, re.M))
    versions = {d: _component_version(p) for d, p in deps_needed.items() if d in direct}
    versions["idf"] = IDF_VERSION
    result = _check_manifest(python, project / "src", "src", versions)
    problems = list(result["errors"]) + list(result.get("mismatch", []))
    if problems:
        return "failed", _one_line("src/idf_component.yml: " + "; ".join(problems))
    components = project / "components"
    for dep, tree in deps_needed.items():
        link = components / dep.replace("/", "__")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(tree, target_is_directory=True)
    pio_env = components / "__pio_env"
    pio_env.mkdir(parents=True, exist_ok=True)
    for ext in (".cpp", ".c", ".S"):
        (pio_env / f"__dummy{ext}").write_text("")
    (pio_env / "CMakeLists.txt").write_text(_PIO_ENV_CMAKE)

    bin_dir = workdir / "bin"
    write_standins(bin_dir, target)
    build = project / ".pio" / "build" / env_name
    query = build / ".cmake/api/v1/query/codemodel-v2"
    query.parent.mkdir(parents=True, exist_ok=True)
    query.touch()
    sdkconfig = project / f"sdkconfig.{env_name}"
    env = dict(os.environ, IDF_PATH=str(idf), IDF_COMPONENT_MANAGER="0",
               PATH=os.pathsep.join([str(bin_dir), str(Path(python).parent), os.environ["PATH"]]))
    env.pop("IDF_TOOLS_PATH", None)   # as the builder does
    cmd = ["cmake", "-S", str(project), "-B", str(build), "-G", "Ninja",
           f"-DIDF_TARGET={target}", "-DPYTHON_DEPS_CHECKED=1",
           f"-DEXTRA_COMPONENT_DIRS:PATH={project / 'src'}", f"-DPYTHON={python}",
           f"-DSDKCONFIG={sdkconfig}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=CONFIGURE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "failed", f"ESP-IDF configure did not finish in {CONFIGURE_TIMEOUT_S} s"
    log = proc.stdout + proc.stderr
    (workdir / f"{board_name}-{backend}.cmake.log").write_text(" ".join(cmd) + "\n" + log)
    if proc.returncode != 0 or "Configuring done" not in log or "Generating done" not in log:
        errors = [ln for ln in log.splitlines() if "Error" in ln or "error:" in ln]
        detail = errors[0] if errors else (log.strip().splitlines() or ["no output"])[-1]
        return "failed", _one_line(f"ESP-IDF configure failed (exit {proc.returncode}): {detail}")

    m = re.search(r"^-- Components: (.*)$", log, re.M)
    listed = set(m.group(1).split()) if m else set()
    targets = _codemodel_targets(build)
    want = ["__idf_src", "__idf_tinyopt_model", "__pio_env"]
    if backend == "tflm":
        want.append("__idf_espressif__esp-tflite-micro")
    # The builder finds its default component by substring ("__pio_env" in the target name).
    lost = [t for t in want if not any(t in name for name in targets)]
    if lost:
        return "failed", _one_line(f"CMake code model lacks {', '.join(lost)} "
                                   f"(components: {' '.join(sorted(listed)) or '?'})")
    for tgt, folder in (("__idf_src", project / "src"), ("__idf_tinyopt_model", project / "lib/tinyopt_model")):
        unresolved = _unresolved_includes(build, tgt, folder)
        if unresolved:
            return "failed", _one_line(f"{tgt}: headers not on its include path: {', '.join(unresolved)}")
    if backend == "tflm" and "NDEBUG" not in _defines(build, "__idf_espressif__esp-tflite-micro"):
        return "failed", "esp-tflite-micro is compiled without NDEBUG (TFLITE_DCHECKs stay in its kernels)"
    if not sdkconfig.is_file() or not (build / "config/sdkconfig.json").is_file():
        return "failed", "ESP-IDF wrote no sdkconfig / config/sdkconfig.json"
    cfg = _sdkconfig(sdkconfig)
    # Every setting of sdkconfig.defaults must survive Kconfig (a misspelt or dependent
    # option is dropped without an error).
    dropped = [f"{k}={v}" for k, v in _sdkconfig(project / "sdkconfig.defaults").items() if cfg.get(k) != v]
    if dropped:
        return "failed", _one_line(f"sdkconfig.defaults settings ESP-IDF did not take: {', '.join(dropped)}")
    cpu = cfg.get("CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ")
    if cpu != str(board.clock_mhz):
        return "failed", f"sdkconfig has CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ={cpu}, board says {board.clock_mhz}"
    flash = cfg.get("CONFIG_ESPTOOLPY_FLASHSIZE")
    board_flash = board.platformio.get("board_upload.flash_size")
    if flash != board_flash:
        return "failed", f"sdkconfig has CONFIG_ESPTOOLPY_FLASHSIZE={flash}, board says {board_flash}"
    partitions = cfg.get("CONFIG_PARTITION_TABLE_FILENAME")
    board_partitions = board.platformio.get("board_build.partitions", "partitions_singleapp.csv")
    if partitions != board_partitions:
        return "failed", (f"sdkconfig has CONFIG_PARTITION_TABLE_FILENAME={partitions}, "
                          f"platformio.ini has board_build.partitions = {board_partitions}")
    return "configured", _one_line(
        f"ESP-IDF {IDF_VERSION} configure ({target}): {len(listed)} components incl. "
        f"{', '.join(t.removeprefix('__idf_') for t in want)}; CPU {cpu} MHz, flash {flash}, "
        f"{partitions}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="int8 .tflite")
    ap.add_argument("--board", default="esp32")
    ap.add_argument("--backend", default="tflm")
    ap.add_argument("--workdir", type=Path, help="kept after the run (default: a temporary folder)")
    args = ap.parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        status, reason = check(args.board, args.backend, args.model, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="tinyopt-idf-") as tmp:
            status, reason = check(args.board, args.backend, args.model, Path(tmp))
    print(f"{status}: {reason}")
    return {"configured": 0, "failed": 1}.get(status, 2)


if __name__ == "__main__":
    sys.exit(main())
