"""PlatformIO dev-platform `qemu` (tinyopt: the emulated Cortex-M boards): no packages to download. The toolchain
(arm-none-eabi-gcc) and qemu-system-arm come from the system's PATH; builder/main.py
builds and "uploads" (starts the emulator)."""
from platformio.public import PlatformBase


class QemuPlatform(PlatformBase):
    def is_embedded(self):
        # Firmware for a device: PlatformIO then offers upload and reports sizes.
        return True
