"""PlatformIO dev-platform `qemu-m4` (tinyopt): no packages to download. The toolchain
(arm-none-eabi-gcc) and qemu-system-arm come from the system's PATH; builder/main.py
builds and "uploads" (starts the emulator)."""
from platformio.public import PlatformBase


class Qemum4Platform(PlatformBase):
    def is_embedded(self):
        # Firmware for a device: PlatformIO then offers upload and reports sizes.
        return True
