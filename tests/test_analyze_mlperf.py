"""`tinyopt analyze` on the MLPerf Tiny reference models (read from ../shared/models):
MACs against hand-computed counts, the arena against the TFLM runtime, board fit."""
from __future__ import annotations

import pytest
from conftest import mlperf_model

import tinyopt  # noqa: F401
from tinyopt.analysis import analyze
from tinyopt.boards import load_board
from tinyopt.paths import BOARDS_DIR

# --- hand-computed MAC counts -------------------------------------------------------
# ad01: dense autoencoder 640-128-128-128-128-8-128-128-128-128-640
AD01_MACS = 640 * 128 + 3 * 128 * 128 + 128 * 8 + 8 * 128 + 3 * 128 * 128 + 128 * 640
# kws DS-CNN: conv 10x4 stride 2 on 49x10x1 -> 25x5x64, then 4 x (depthwise 3x3 + pointwise 64),
# average pool, dense 64 -> 12
KWS_MACS = 25 * 5 * 64 * 10 * 4 * 1 + 4 * (25 * 5 * 64 * 3 * 3 + 25 * 5 * 64 * 64) + 64 * 12
# ResNet-8 on 32x32x3: stem conv 3x3x3->16, three stacks (16, 32, 64 channels), each
# with two 3x3 convs and (for stacks 2 and 3) a strided 1x1 shortcut conv; dense 64 -> 10
RESNET_MACS = (32 * 32 * 16 * 9 * 3
               + 2 * 32 * 32 * 16 * 9 * 16
               + 16 * 16 * 32 * 9 * 16 + 16 * 16 * 32 * 9 * 32 + 16 * 16 * 32 * 16
               + 8 * 8 * 64 * 9 * 32 + 8 * 8 * 64 * 9 * 64 + 8 * 8 * 64 * 32
               + 64 * 10)

MODELS = {
    "ad01_int8.tflite": AD01_MACS,
    "kws_ref_model.tflite": KWS_MACS,
    "pretrainedResnet_quant.tflite": RESNET_MACS,
}

_cache: dict = {}


def analysis_of(name, board=None):
    key = (name, board.name if board else None)
    if key not in _cache:
        _cache[key] = analyze(mlperf_model(name), board, other_boards=[])
    return _cache[key]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_macs_match_hand_count(name):
    a = analysis_of(name)
    assert a.audit_ok, a.audit.to_json()
    assert a.totals.macs == MODELS[name]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_arena_equals_tflm_runtime(name):
    from tinyopt.tflm_runtime import Runner
    a = analysis_of(name)
    usage = Runner(mlperf_model(name).read_bytes()).arena_usage()
    assert (a.arena.tflm_bytes, a.arena.head_bytes, a.arena.tail_bytes) == \
        (usage.total, usage.head, usage.tail)
    assert a.arena.firmware_bytes % 16 == 0 and a.arena.firmware_bytes > usage.total
    assert a.arena.peak_activation_bytes <= a.arena.head_bytes


def test_kws_details():
    a = analysis_of("kws_ref_model.tflite")
    kinds = [op.name for op in a.ops]
    assert kinds.count("DEPTHWISE_CONV_2D") == 4 and kinds.count("CONV_2D") == 5
    reshape = next(op for op in a.ops if op.name == "RESHAPE")
    assert reshape.params == 0 and reshape.weight_bytes == 0   # int32 target shape: no parameter
    pool = next(op for op in a.ops if op.name == "AVERAGE_POOL_2D")
    assert pool.other_ops == 25 * 5 * 64                          # one 25x5 window per channel
    fc = next(op for op in a.ops if op.name == "FULLY_CONNECTED")
    assert fc.params == 64 * 12 + 12 and fc.layer == "dense"
    assert a.arena.head_bytes == a.arena.peak_activation_bytes == 2 * 25 * 5 * 64


def test_ad01_weights_and_model_bytes():
    a = analysis_of("ad01_int8.tflite")
    dense_params = sum(i * o + o for i, o in [(640, 128), (128, 128), (128, 128), (128, 128),
                                              (128, 8), (8, 128), (128, 128), (128, 128),
                                              (128, 128), (128, 640)])
    assert a.totals.params == dense_params
    assert a.totals.weight_bytes == dense_params + 3 * sum(o for o in
                                                          [128, 128, 128, 128, 8, 128, 128, 128, 128, 640])
    assert 260_000 < a.totals.weight_bytes < 280_000
    assert a.totals.model_bytes == mlperf_model("ad01_int8.tflite").stat().st_size


BOARD_TOML = """description = "{desc}"
family = "{family}"
cpu = "{cpu}"
clock_mhz = {clock}
flash_bytes = {flash}
ram_bytes = {ram}
timer = "{timer}"
baud = 115200
backends = ["tflm"]
runtime_flash_bytes = {rt_flash}
runtime_ram_bytes = {rt_ram}
[platformio]
platform = "test"
board = "test"
"""


@pytest.fixture(scope="module")
def boards_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("boards")
    (d / "m256.toml").write_text(BOARD_TOML.format(
        desc="Cortex-M board with 256 kB flash", family="cortex-m", cpu="cortex-m4", clock=64,
        flash=256 * 1024, ram=64 * 1024, timer="dwt", rt_flash=70_000, rt_ram=8_192))
    (d / "esp32.toml").write_text(BOARD_TOML.format(
        desc="ESP32 DevKit", family="esp32", cpu="xtensa-lx6", clock=240,
        flash=4 * 1024 * 1024, ram=320 * 1024, timer="esp_timer", rt_flash=300_000,
        rt_ram=60_000))
    return d


def test_ad01_does_not_fit_256k_flash(boards_dir):
    board = load_board("m256", directory=boards_dir)
    a = analyze(mlperf_model("ad01_int8.tflite"), board,
                other_boards=[load_board("esp32", directory=boards_dir), board])
    fit = a.fit
    assert not fit.fits and not fit.fits_flash and fit.fits_ram
    assert fit.flash_used == a.totals.model_bytes + 70_000 and fit.flash_budget == 256 * 1024
    assert fit.verdict.startswith("does not fit on m256")
    assert "flash needs 338.8 kB > 256.0 kB" in fit.verdict
    assert any("prune" in s for s in fit.suggestions)
    assert any("esp32" in s for s in fit.suggestions)      # the board it would fit
    data = a.to_json()["fit"]
    assert data["fits"] is False and data["flash"]["used"] > data["flash"]["budget"]


def test_ad01_fits_esp32(boards_dir):
    board = load_board("esp32", directory=boards_dir)
    a = analyze(mlperf_model("ad01_int8.tflite"), board, other_boards=[])
    assert a.fit.fits and a.fit.verdict.startswith("fits on esp32")
    assert a.fit.ram_used == a.arena.firmware_bytes + 60_000


def test_ad01_on_repo_esp32_board():
    if not (BOARDS_DIR / "esp32.toml").is_file():
        pytest.skip("boards/esp32.toml not written yet")
    a = analyze(mlperf_model("ad01_int8.tflite"), load_board("esp32"), other_boards=[])
    assert a.fit.fits, a.fit.verdict


def test_ram_shortfall_names_the_heavy_layer(boards_dir):
    small = BOARD_TOML.format(desc="tiny", family="cortex-m", cpu="cortex-m0", clock=48,
                              flash=1024 * 1024, ram=32 * 1024, timer="systick",
                              rt_flash=70_000, rt_ram=8_192)
    (boards_dir / "tiny.toml").write_text(small)
    a = analyze(mlperf_model("pretrainedResnet_quant.tflite"), load_board("tiny", directory=boards_dir),
                other_boards=[])
    assert a.fit.fits_flash and not a.fit.fits_ram
    assert "RAM needs" in a.fit.verdict
    assert any("conv2d" in s and "16.0 kB" in s for s in a.fit.suggestions)


def test_firmware_margin_follows_the_board_kernels():
    from tinyopt.analysis.arena import firmware_margin
    from tinyopt.analysis.reader import read_tflite
    model = read_tflite(mlperf_model("pretrainedResnet_quant.tflite"))
    reference = firmware_margin(model, "reference")
    cmsis = firmware_margin(model, "cmsis-nn (plain C paths on M0+)")
    esp = firmware_margin(model, "esp-nn")
    assert reference == 1024
    assert cmsis == 1024 + 2 * 3 * 3 * 64 * 2          # im2col of the 3x3x64 convs, int16
    assert esp > 2 * 3 * 3 * 64 * 64                    # ESP-NN copies the largest filter
    assert firmware_margin(model) == cmsis              # no board: CMSIS-NN


def test_board_kernels_reach_the_arena(boards_dir):
    (boards_dir / "esp_nn.toml").write_text(
        (boards_dir / "esp32.toml").read_text() + '[tflm]\nkernels = "esp-nn"\n')
    a = analyze(mlperf_model("kws_ref_model.tflite"), load_board("esp_nn", directory=boards_dir),
                other_boards=[])
    assert a.arena.margin_kernels == "esp-nn"
    assert a.arena.margin_bytes > 10_000                  # the 10x4 conv's filter copies
    assert a.arena.firmware_bytes == -(-(a.arena.tflm_bytes + a.arena.margin_bytes) // 16) * 16
    assert a.fit.ram_parts["arena"] == a.arena.firmware_bytes
