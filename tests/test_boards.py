"""Board files: complete, pinned, consistent with the glue; `tinyopt boards` lists them."""
from __future__ import annotations

import json
import re

import pytest
from conftest import run_tinyopt
from host_build import tflm_tree_from_env

from tinyopt.analysis.op_support import tflm_builtin_ops
from tinyopt.boards import board_names, glue_folders, load_board
from tinyopt.codegen.tflm import PLACEMENTS, resolver_method
from tinyopt.paths import BOARDS_DIR, TEMPLATES_DIR

# every board file that is neither emulated nor the host itself
REAL = [n for n in board_names() if not load_board(n).emulated and load_board(n).platformio["platform"] != "native"]


@pytest.mark.parametrize("name", REAL)
def test_real_board_files(name):
    b = load_board(name)
    assert not b.emulated
    assert re.fullmatch(r"[a-z0-9_]+@\d+\.\d+\.\d+", b.platformio["platform"]), "pinned platform version"
    assert b.platformio["framework"] in ("arduino", "espidf")
    assert b.flash_bytes > b.runtime_flash_bytes > 0 and b.ram_bytes > b.runtime_ram_bytes > 0
    assert b.usb_ids and all(re.fullmatch(r"[0-9A-F]{4}:[0-9A-F]{4}", u) for u in b.usb_ids)
    assert b.baud == 115200
    assert {"dtr", "rts", "boot_hint"} <= set(b.upload)
    assert b.tflm["library"] and b.tflm["kernels"]
    # the TFLM library this board builds against, or the TFLM tree its project compiles
    assert b.tflm.get("lib_deps") or b.tflm.get("source") == "tree"
    assert b.tflm["arena_placement"] in PLACEMENTS
    assert (TEMPLATES_DIR / b.glue["folder"]).is_dir() and b.glue["folder"] in glue_folders()
    if b.family == "esp32":
        assert b.timer == "esp_timer" and b.tflm["kernels"] == "esp-nn"
        assert b.tflm["lib_deps"][0].startswith("idf:espressif/esp-tflite-micro@")
        # never silently in PSRAM
        assert b.tflm["arena_placement"] != "psram" and b.tflm["psram"] is False
    elif b.tflm.get("source") == "tree":
        # TFLM's Arduino library does not build off the Nano 33 BLE: TFLM from TINYOPT_TFLM_DIR
        assert b.tflm["platformio"]["custom_tflm_dir"] == "${sysenv.TINYOPT_TFLM_DIR}"
        assert b.tflm["kernels"] in ("cmsis-nn", "reference")
        assert not b.tflm.get("lib_deps")
    else:
        assert "cmsis-nn" in b.tflm["kernels"]
        # pinned by commit: the library is not versioned in a registry
        assert re.search(r"#[0-9a-f]{40}$", b.tflm["lib_deps"][0])
    if b.family != "esp32":
        assert b.timer == ("rp2040_timer" if b.family == "rp2040" else "dwt")


def test_the_real_boards_are_all_there():
    assert {"esp32", "esp32s3", "nano33ble", "pico", "nucleo_l4r5zi", "teensy41"} <= set(REAL)


def test_a_board_whose_glue_folder_does_not_exist_is_refused(tmp_path):
    from tinyopt.errors import TinyoptError
    text = (BOARDS_DIR / "pico.toml").read_text().replace(
        'folder = "common/arduino"', 'folder = "common/nosuch"')
    (tmp_path / "mine.toml").write_text(text)
    with pytest.raises(TinyoptError, match="not a folder of firmware_templates") as err:
        load_board("mine", tmp_path)
    assert "common/arduino" in err.value.hint and "qemu" in err.value.hint


def test_a_board_without_glue_still_analyzes_but_generates_nothing(tmp_path):
    import re as _re

    from tinyopt.codegen.generate import generate
    from tinyopt.errors import TinyoptError
    text = _re.sub(r"\[glue\][^\[]*", "", (BOARDS_DIR / "pico.toml").read_text())
    (tmp_path / "fitonly.toml").write_text(text)
    b = load_board("fitonly", tmp_path)
    assert b.glue == {}
    with pytest.raises(TinyoptError, match="no \\[glue\\] folder") as err:
        generate(tmp_path / "unused.tflite", b, out=tmp_path / "p")
    assert "common/arduino" in err.value.hint and not (tmp_path / "p").exists()


def test_boards_cli_table_and_json():
    proc = run_tinyopt("boards", env={"COLUMNS": "160"})
    assert proc.returncode == 0, proc.stderr
    for name in REAL:
        assert name in proc.stderr
    assert "cmsis-nn" in proc.stderr and "esp-nn" in proc.stderr
    data = json.loads(run_tinyopt("boards", "--json", check=True).stdout)
    by_name = {b["name"]: b for b in data}
    assert set(REAL) <= set(by_name)
    assert by_name["nucleo_l4r5zi"]["flash_bytes"] == 2 * 1024 * 1024
    assert by_name["teensy41"]["clock_mhz"] == 600
    assert set(board_names()) == set(by_name)


def test_resolver_methods_exist_in_tflm():
    tree = tflm_tree_from_env()
    if tree is None:
        pytest.skip("TINYOPT_TFLM_DIR not set: cannot read micro_mutable_op_resolver.h")
    header = (tree / "tensorflow/lite/micro/micro_mutable_op_resolver.h").read_text()
    methods = set(re.findall(r"TfLiteStatus (Add\w+)\(", header))
    missing = {op: resolver_method(op) for op in tflm_builtin_ops() if resolver_method(op) not in methods}
    assert not missing


def test_resolver_method_names():
    assert resolver_method("CONV_2D") == "AddConv2D"
    assert resolver_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert resolver_method("RELU6") == "AddRelu6"
    assert resolver_method("BATCH_TO_SPACE_ND") == "AddBatchToSpaceNd"
    assert resolver_method("L2_POOL_2D") == "AddL2Pool2D"


def test_dsp_flag_must_be_a_boolean(tmp_path):
    from tinyopt.errors import TinyoptError
    text = (BOARDS_DIR / "pico.toml").read_text().replace("dsp = false", 'dsp = "no"')
    (tmp_path / "mine.toml").write_text(text)
    with pytest.raises(TinyoptError, match="dsp = 'no' is not true or false"):
        load_board("mine", tmp_path)


def test_boards_without_the_dsp_extension_get_portable_aot_kernels_and_no_scratch():
    """On a core without SMLAD/SXTB16 the DSP kernels' scratch would be RAM for nothing: the aot
    library for such a board has neither the DSP paths nor their scratch."""
    from conftest import mlperf_model

    from tinyopt.codegen.aot import model_library
    assert [b for b in ("qemu-m0", "pico", "esp32", "esp32s3", "host") if load_board(b).dsp] == []
    assert all(load_board(b).dsp for b in ("qemu-m4", "qemu-m7", "qemu-m33", "qemu-m55", "nano33ble", "teensy41"))
    kws = mlperf_model("kws_ref_model.tflite").read_bytes()
    with_dsp = model_library(kws, board=load_board("qemu-m4"))
    portable = model_library(kws, board=load_board("qemu-m0"))
    assert with_dsp.memory_plan["scratch_bytes"] > 0 and portable.memory_plan["scratch_bytes"] == 0
    assert portable.activation_bytes < with_dsp.activation_bytes
    code = portable.files["tinyopt_model_aot.c"]
    assert "#if TO_HAVE_DSP" not in code and "to_mac4_ext" not in code and "TO_G2X2" not in code
