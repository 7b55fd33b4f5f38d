"""generate: every board x (tiny int8 CNN, MLPerf Tiny ResNet-8) gives a complete,
consistent PlatformIO project; bad input is refused with one line."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil

import numpy as np
import pytest
from c_arrays import parse_c_array
from conftest import assert_one_line_error, mlperf_model, run_tinyopt
from tiny_models import tiny_cnn

from tinyopt.analysis import analyze
from tinyopt.analysis.reader import read_tflite
from tinyopt.boards import board_names, load_board
from tinyopt.codegen.generate import generate
from tinyopt.errors import TinyoptError
from tinyopt.tflm_runtime import Runner

REAL_BOARDS = ["esp32", "esp32s3", "nano33ble", "pico", "nucleo_l4r5zi", "teensy41"]
# the emulated boards' projects are checked where they run (test_qemu_platform, test_emulated_cores)
BOARDS = [b for b in board_names() if not load_board(b).emulated]


def _model(which: str, request):
    if which == "demo":
        return request.getfixturevalue("demo_int8_tflite")
    return tiny_cnn() if which == "cnn" else mlperf_model("pretrainedResnet_quant.tflite")


def _ini(project):
    from platformio.project.config import ProjectConfig
    return ProjectConfig(str(project / "platformio.ini"), parse_extra=False)


@pytest.fixture(scope="module")
def generated(tmp_path_factory, request):
    """One project per (board, model), generated once for the module."""
    cache = {}

    def get(board, which):
        key = (board, which)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{board}-{which}") / "fw"
            cache[key] = generate(_model(which, request), board, out=out)
        return cache[key]
    return get


def test_all_listed_boards_exist():
    assert set(REAL_BOARDS) <= set(board_names())


@pytest.mark.parametrize("which", ["cnn", "demo", "resnet"])
@pytest.mark.parametrize("board", BOARDS)
def test_project_is_complete_and_consistent(generated, board, which, request):
    project = generated(board, which)
    root = project.path
    b = load_board(board)
    tflite = _model(which, request)
    raw = tflite.read_bytes()
    model = read_tflite(raw)

    # platformio.ini through PlatformIO's own reader
    cfg = _ini(root)
    env = f"env:{board}"
    assert cfg.envs() == [board]
    assert cfg.get(env, "platform") == b.platformio["platform"]
    if b.family != "host":
        assert "@" in b.platformio["platform"], "real boards pin their platform version"
        assert cfg.get(env, "board") == b.platformio["board"]
        assert cfg.get(env, "framework") == [b.platformio["framework"]]
    assert int(cfg.get(env, "monitor_speed")) == b.baud
    assert int(cfg.get(env, "monitor_dtr")) == int(b.upload.get("dtr", 0))
    if b.platformio.get("framework") == "espidf":
        cmake = (root / "lib/tinyopt_model/CMakeLists.txt").read_text()
        assert "-DNDEBUG" in cmake and "-DTF_LITE_STATIC_MEMORY" in cmake
        assert "espressif__esp-tflite-micro" in cmake
        assert "espressif/esp-tflite-micro" in (root / "src/idf_component.yml").read_text()
        assert cfg.get(env, "lib_ignore") == ["tinyopt_model"]
        assert "CONFIG_SPIRAM=y" not in (root / "sdkconfig.defaults").read_text()
    else:
        flags = cfg.get(env, "build_flags")
        assert "-DNDEBUG" in flags and "-DTF_LITE_STATIC_MEMORY" in flags
        if b.tflm.get("lib_deps"):
            assert cfg.get(env, "lib_deps") == list(b.tflm["lib_deps"])

    # the layout every backend shares
    for rel in ("src/tinyopt_harness.c", "src/tinyopt_platform.h", "src/tinyopt_golden.h",
                "src/tinyopt_quant.h", "lib/tinyopt_model/tinyopt_model.h",
                "lib/tinyopt_model/library.json", "tinyopt_project.json"):
        assert (root / rel).is_file(), rel
    assert any((root / "src").glob("main.c*")), "board entry point"
    json.loads((root / "lib/tinyopt_model/library.json").read_text())
    lib_text = "".join(p.read_text() for p in (root / "lib/tinyopt_model").glob("*.c*"))
    assert "platform" not in lib_text.lower().replace("tinyopt_platform", ""), "no board code in the model library"

    # the model array is the .tflite, byte for byte, aligned and const
    data_cc = (root / "lib/tinyopt_model/model_data.cc").read_text()
    assert "alignas(16) const unsigned char tinyopt_model_data[]" in data_cc
    assert parse_c_array(data_cc) == raw

    # the resolver holds exactly the model's operators, with the exact count
    cc = (root / "lib/tinyopt_model/tinyopt_model_tflm.cc").read_text()
    methods = re.findall(r"resolver->(Add\w+)\(\)", cc)
    expected = {"CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
                "MAX_POOL_2D": "AddMaxPool2D", "AVERAGE_POOL_2D": "AddAveragePool2D",
                "RESHAPE": "AddReshape", "FULLY_CONNECTED": "AddFullyConnected",
                "SOFTMAX": "AddSoftmax", "ADD": "AddAdd"}
    assert methods == [expected[op] for op in model.opcodes]
    assert f"#define TINYOPT_OP_COUNT {len(methods)}" in cc

    # arena: the analysis' firmware figure, at least what the runtime measured, aligned
    arena = int(re.search(r"#define TINYOPT_ARENA_BYTES (\d+)", cc).group(1))
    analysis = analyze(raw, b)
    assert arena == analysis.arena.firmware_bytes
    assert arena % 16 == 0 and arena >= Runner(raw).arena_usage().total
    assert "static uint8_t tensor_arena[TINYOPT_ARENA_BYTES]" in cc

    # golden vector: header, metadata and the runtime agree
    meta = json.loads((root / "tinyopt_project.json").read_text())
    assert meta["board"] == board and meta["backend"] == "tflm"
    assert meta["model"]["sha256"] == project.metadata["model"]["sha256"]
    golden_in = np.array(meta["golden"]["input"], np.int8)
    golden_out = np.array(meta["golden"]["output"], np.int8)
    assert np.array_equal(Runner(raw).run(golden_in).reshape(-1), golden_out)
    header = (root / "src/tinyopt_golden.h").read_text()
    arrays = re.findall(r"\] = \{(.*?)\};", header, re.S)
    assert [int(v) for v in arrays[0].replace("\n", " ").split(",") if v.strip()] == meta["golden"]["input"]
    assert [int(v) for v in arrays[1].replace("\n", " ").split(",") if v.strip()] == meta["golden"]["output"]
    t_in, t_out = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    assert meta["input"]["bytes"] == t_in.nbytes and meta["output"]["bytes"] == t_out.nbytes
    assert meta["output"]["zero_point"] == int(t_out.zero_points[0])
    quant = (root / "src/tinyopt_quant.h").read_text()
    assert f"#define TINYOPT_OUTPUT_ZERO_POINT ({int(t_out.zero_points[0])})" in quant
    scale = float(re.search(r"#define TINYOPT_OUTPUT_SCALE (\S+)f", quant).group(1))
    assert np.float32(scale) == np.float32(t_out.scales[0])


def test_esp32_glue_yields_to_the_watchdog(generated):
    root = generated("esp32", "cnn").path
    glue = (root / "src/platform_esp32.c").read_text()
    assert "esp_timer_get_time" in glue and "vTaskDelay" in glue
    assert "TINYOPT_PLATFORM_HAS_YIELD" in (root / "src/CMakeLists.txt").read_text()
    assert "xTaskCreatePinnedToCore" in (root / "src/main.c").read_text()


def test_cortex_m_glue_uses_dwt_with_fallback(generated):
    glue = (generated("teensy41", "cnn").path / "src/platform_arduino.cpp").read_text()
    assert "#define TINYOPT_TIMER_DWT 1" in glue and "micros64" in glue
    pico = (generated("pico", "cnn").path / "src/platform_arduino.cpp").read_text()
    assert "#define TINYOPT_TIMER_RP2040_TIMER 1" in pico and "0x40054024u" in pico
    # TFLM from a source tree (every Arduino board but the Nano 33 BLE): the glue prints DebugLog
    assert 'extern "C" void DebugLog(const char *format, va_list args)' in pico


def test_esp32_arena_placements(tmp_path):
    board = load_board("esp32")
    heap = generate(tiny_cnn(), board, out=tmp_path / "heap", options={"arena_placement": "heap"})
    cc = (heap.path / "lib/tinyopt_model/tinyopt_model_tflm.cc").read_text()
    assert "MALLOC_CAP_INTERNAL" in cc and "SPIRAM" not in cc
    with pytest.raises(TinyoptError, match="no PSRAM"):
        generate(tiny_cnn(), board, out=tmp_path / "psram", options={"arena_placement": "psram"})
    with_psram = dataclasses.replace(board, tflm={**board.tflm, "psram": True})
    ps = generate(tiny_cnn(), with_psram, out=tmp_path / "ps", options={"arena_placement": "psram"})
    assert "EXT_RAM_BSS_ATTR" in (ps.path / "lib/tinyopt_model/tinyopt_model_tflm.cc").read_text()
    assert "CONFIG_SPIRAM=y" in (ps.path / "sdkconfig.defaults").read_text()
    with pytest.raises(TinyoptError, match="only available on ESP32"):
        generate(tiny_cnn(), "pico", out=tmp_path / "p", options={"arena_placement": "heap"})


def test_names_from_files_are_sanitised(tmp_path):
    weird = tmp_path / 'my model"%];--x.tflite'
    shutil.copy(tiny_cnn(), weird)
    project = generate(weird, "nano33ble", out=tmp_path / "fw")
    header = (project.path / "src/tinyopt_golden.h").read_text()
    name = re.search(r'#define TINYOPT_MODEL_NAME "([^"]*)"', header).group(1)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name
    assert project.metadata["model"]["name"] == name


# ---- bad input ----

def test_unknown_board_lists_known_ones(tmp_path):
    proc = run_tinyopt("generate", tiny_cnn(), "--board", "nosuch", "-o", tmp_path / "fw")
    assert_one_line_error(proc, "unknown board", "esp32", "nucleo_l4r5zi")


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "fw"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    proc = run_tinyopt("generate", tiny_cnn(), "--board", "pico", "-o", out)
    assert_one_line_error(proc, "already exists", "--force")
    assert (out / "keep.txt").read_text() == "user file"
    proc = run_tinyopt("generate", tiny_cnn(), "--board", "pico", "-o", out, "--force")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "keep.txt").exists() and (out / "platformio.ini").is_file()


def test_float_model_is_refused_with_the_audit_error(tmp_path):
    proc = run_tinyopt("generate", tiny_cnn(int8=False), "--board", "esp32", "-o", tmp_path / "fw")
    assert_one_line_error(proc, "float")
    assert not (tmp_path / "fw").exists()


def test_hybrid_model_is_refused_with_the_audit_error(tmp_path):
    proc = run_tinyopt("generate", tiny_cnn(int8=False, hybrid=True), "--board", "pico", "-o", tmp_path / "fw")
    assert_one_line_error(proc, "float32", "int8")   # the audit names the float part
    assert not (tmp_path / "fw").exists()


def test_model_that_does_not_fit_is_refused_with_numbers(tmp_path):
    small = dataclasses.replace(load_board("pico"), name="tiny-board", flash_bytes=64 * 1024,
                                ram_bytes=32 * 1024, runtime_flash_bytes=16 * 1024,
                                runtime_ram_bytes=8 * 1024)
    resnet = mlperf_model("pretrainedResnet_quant.tflite")
    with pytest.raises(TinyoptError) as info:
        generate(resnet, small, out=tmp_path / "fw")
    message = info.value.one_line()
    assert "does not fit tiny-board" in message and "--force" in message
    assert re.search(r"flash \d+ of 65536 bytes", message) and re.search(r"RAM \d+ of 32768 bytes", message)
    assert not (tmp_path / "fw").exists()
    forced = generate(resnet, small, out=tmp_path / "fw", force=True)
    assert forced.metadata["fit"]["fits"] is False and (forced.path / "platformio.ini").is_file()


def test_generate_cli_json(tmp_path):
    proc = run_tinyopt("generate", tiny_cnn(), "--board", "teensy41", "-o", tmp_path / "fw", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["board"] == "teensy41" and data["library"]["op_count"] == 7
    assert "platformio.ini" in data["files"]
