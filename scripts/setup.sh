#!/usr/bin/env bash
# Set up tinyopt on a fresh Debian machine with Python 3.11: the Arm toolchain and QEMU
# (for the emulated board), a virtual environment in .venv, and tinyopt with its pinned
# Python dependencies. Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_PACKAGES="gcc g++ gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib binutils-arm-none-eabi qemu-system-arm valgrind python3-venv"
missing=""
for p in $APT_PACKAGES; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
echo "setup: installing tinyopt and its pinned dependencies into .venv"
# (the editable build prints setuptools deprecation notices that are not ours to act on)
PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e ".[test]"
# PlatformIO needs its core package tool-scons before it builds anything; where its
# registry does not answer, make it from PyPI's scons (a no-op when already present).
.venv/bin/python scripts/pio_offline.py
echo "setup: done. Activate with: . .venv/bin/activate"
