"""The aot kernels' per-core paths byte for byte against the TFLM runtime on the emulated
cores: the DSP paths (SXTB16/SMLAD blocks) on the Cortex-M4/M7/M33/M55 and the portable C
path on the Cortex-M0, which the host build never takes. Each case of
tests/test_aot_ops.py::KERNEL_CASES is compiled for the core with arm-none-eabi-gcc and run in
QEMU with semihosting (tests/aot_qemu.py), no PlatformIO."""
from __future__ import annotations

import pytest
from aot_qemu import CORES, check_on_core, missing_tools
from test_aot_ops import CASES, KERNEL_CASES, case_options

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("name", KERNEL_CASES)
def test_kernel_byte_exact_on_core(name, core, tmp_path):
    check_on_core(CASES[name](), core, tmp_path, options=case_options(name))
