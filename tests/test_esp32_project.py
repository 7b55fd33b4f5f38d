"""ESP32 / ESP32-S3 projects against what platform-espressif32 6.9.0 and ESP-IDF 5.3.1 expect:
PlatformIO's espidf builder passes -DEXTRA_COMPONENT_DIRS:PATH=<project>/src, ESP-IDF's Kconfig
defaults (160 MHz, 2MB flash, the 1 MB single-app partition table) are overridden from the
board file, the glue's REQUIRES name ESP-IDF 5.3 components. ESP-IDF's own configure on these
projects is tests/test_conformance_esp_idf.py."""
from __future__ import annotations

import dataclasses
import re

import pytest
import yaml
from tiny_models import tiny_cnn

from tinyopt.boards import load_board
from tinyopt.codegen.generate import generate
from tinyopt.errors import TinyoptError

ESP_BOARDS = ["esp32", "esp32s3"]
# platform-espressif32 v6.9.0 boards/<board>.json: upload.flash_size, build.f_cpu.
PIO_BOARD_FACTS = {"esp32dev": ("4MB", 240), "esp32-s3-devkitc-1": ("8MB", 240)}
# ESP-IDF v5.3.1 Kconfig choices (esp_system/port/soc/<target>/Kconfig.cpu,
# esptool_py/Kconfig.projbuild).
IDF_CPU_CHOICES = {80, 160, 240}
IDF_FLASH_CHOICES = {"1MB", "2MB", "4MB", "8MB", "16MB", "32MB", "64MB", "128MB"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    cache = {}

    def get(board, backend="tflm"):
        if (board, backend) not in cache:
            out = tmp_path_factory.mktemp(f"{board}-{backend}") / "fw"
            cache[board, backend] = generate(tiny_cnn(), board, backend=backend, out=out).path
        return cache[board, backend]
    return get


def _ini(root):
    from platformio.project.config import ProjectConfig
    cfg = ProjectConfig(str(root / "platformio.ini"), parse_extra=False)
    return cfg, f"env:{cfg.envs()[0]}"


def _defaults(root) -> dict:
    lines = (root / "sdkconfig.defaults").read_text().splitlines()
    return dict(ln.split("=", 1) for ln in lines if ln.startswith("CONFIG_"))


def _code(text: str) -> str:
    return "\n".join(ln.split("#", 1)[0] for ln in text.splitlines())


@pytest.mark.parametrize("backend", ["tflm", "aot"])
@pytest.mark.parametrize("board", ESP_BOARDS)
def test_root_cmakelists_appends_to_platformios_component_dirs(project, board, backend):
    text = _code((project(board, backend) / "CMakeLists.txt").read_text())
    assert not re.search(r"\bset\s*\(\s*EXTRA_COMPONENT_DIRS\b", text), \
        "set() drops PlatformIO's -DEXTRA_COMPONENT_DIRS:PATH=<project>/src (src/ is the main component)"
    appended = re.search(r"list\s*\(\s*APPEND\s+EXTRA_COMPONENT_DIRS\s+([^)]*)\)", text)
    assert appended and appended.group(1).split() == ["${CMAKE_CURRENT_LIST_DIR}/lib"]
    assert text.index("list(APPEND EXTRA_COMPONENT_DIRS") < text.index("tools/cmake/project.cmake")


@pytest.mark.parametrize("board", ESP_BOARDS)
def test_sdkconfig_defaults_take_clock_flash_and_partitions_from_the_board(project, board):
    root = project(board)
    b = load_board(board)
    cfg, env = _ini(root)
    values = _defaults(root)
    flash, f_cpu = PIO_BOARD_FACTS[b.platformio["board"]]
    assert b.clock_mhz == f_cpu and b.clock_mhz in IDF_CPU_CHOICES
    # ESP-IDF's default is 160 MHz; the board file says 240
    assert values.get(f"CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_{b.clock_mhz}") == "y"
    assert not [k for k in values if k.startswith("CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_")
                and k != f"CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_{b.clock_mhz}"]
    # PlatformIO compares the board's upload.flash_size with CONFIG_ESPTOOLPY_FLASHSIZE
    assert cfg.get(env, "board_upload.flash_size") == flash and flash in IDF_FLASH_CHOICES
    assert values.get(f"CONFIG_ESPTOOLPY_FLASHSIZE_{flash}") == "y"
    # ESP-IDF's view of the partition table is the one platformio.ini flashes
    assert cfg.get(env, "board_build.partitions") == "partitions_singleapp_large.csv"
    assert values.get("CONFIG_PARTITION_TABLE_SINGLE_APP_LARGE") == "y"
    assert "CONFIG_PARTITION_TABLE_SINGLE_APP" not in values


def test_sdkconfig_values_follow_a_changed_board_file(tmp_path):
    board = load_board("esp32")
    other = dataclasses.replace(board, clock_mhz=160, platformio={
        **board.platformio, "board_upload.flash_size": "16MB", "board_build.partitions": "my_parts.csv"})
    root = generate(tiny_cnn(), other, out=tmp_path / "fw").path
    values = _defaults(root)
    assert values["CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_160"] == "y"
    assert "CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_240" not in values
    assert values["CONFIG_ESPTOOLPY_FLASHSIZE_16MB"] == "y"
    assert values["CONFIG_PARTITION_TABLE_CUSTOM"] == "y"
    assert values["CONFIG_PARTITION_TABLE_CUSTOM_FILENAME"] == '"my_parts.csv"'


@pytest.mark.parametrize("change, message", [
    ({"clock_mhz": 200}, "cannot run the CPU at 200 MHz"),
    ({"flash": None}, "board_upload.flash_size"),
    ({"flash": "3MB"}, "board_upload.flash_size"),
])
def test_board_values_esp_idf_cannot_take_are_refused(tmp_path, change, message):
    board = load_board("esp32")
    pio = dict(board.platformio)
    if "flash" in change:
        pio.pop("board_upload.flash_size")
        if change["flash"]:
            pio["board_upload.flash_size"] = change["flash"]
    bad = dataclasses.replace(board, clock_mhz=change.get("clock_mhz", board.clock_mhz), platformio=pio)
    with pytest.raises(TinyoptError, match=re.escape(message)):
        generate(tiny_cnn(), bad, out=tmp_path / "fw")


@pytest.mark.parametrize("backend", ["tflm", "aot"])
@pytest.mark.parametrize("board", ESP_BOARDS)
def test_main_component_requires_esp_idf_5_3_components(project, board, backend):
    root = project(board, backend)
    text = _code((root / "src/CMakeLists.txt").read_text())
    requires = re.search(r"\bREQUIRES\s+([^)]*)\)", text).group(1).split()
    # driver/uart.h is in esp_driver_uart in ESP-IDF 5.3 (driver only re-exports every driver)
    assert requires == ["tinyopt_model", "esp_driver_uart", "esp_timer"]
    glue = (root / "src/platform_esp32.c").read_text()
    assert '#include "driver/uart.h"' in glue and '#include "esp_timer.h"' in glue


@pytest.mark.parametrize("backend", ["tflm", "aot"])
@pytest.mark.parametrize("board", ESP_BOARDS)
def test_component_manifest(project, board, backend):
    root = project(board, backend)
    manifest = yaml.safe_load((root / "src/idf_component.yml").read_text())
    assert set(manifest) == {"dependencies"}
    deps = manifest["dependencies"]
    assert deps["idf"] == ">=5.3"   # esp_driver_uart; espressif32@6.9.0 has 5.3.1
    model_cmake = _code((root / "lib/tinyopt_model/CMakeLists.txt").read_text())
    model_requires = re.search(r"\bREQUIRES\s+([^)]*)\)", model_cmake).group(1).split()
    if backend == "tflm":
        assert deps == {"idf": ">=5.3", "espressif/esp-tflite-micro": "1.4.0"}
        # the component manager names the managed component namespace__name
        assert model_requires == ["espressif__esp-tflite-micro"]
    else:
        assert deps == {"idf": ">=5.3"}
        assert model_requires == ["esp_common"]


@pytest.mark.parametrize("board", ESP_BOARDS)
def test_tflm_component_is_built_with_ndebug(project, board):
    text = _code((project(board, "tflm") / "CMakeLists.txt").read_text())
    after_project = text[text.index("project("):]
    assert "idf_component_get_property(tinyopt_lib espressif__esp-tflite-micro COMPONENT_LIB)" in after_project
    assert "target_compile_definitions(${tinyopt_lib} PRIVATE NDEBUG)" in after_project
    assert "NDEBUG" not in _code((project(board, "aot") / "CMakeLists.txt").read_text())
