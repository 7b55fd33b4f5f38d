#!/usr/bin/env bash
# Set up tinyopt on a fresh Debian machine with Python 3.11: the Arm toolchain and QEMU
# (for the emulated board), a virtual environment in .venv, and tinyopt with its pinned
# Python dependencies. Safe to run again; it only installs what is missing.
# --tests adds what only the test suite needs: PostgreSQL's server (the distributed-search
# test starts a throw-away cluster of its own; no service is configured).
set -euo pipefail
cd "$(dirname "$0")/.."
TESTS=0
for arg in "$@"; do
  case "$arg" in
    --tests) TESTS=1 ;;
    *) echo "setup: unknown option $arg (known: --tests)" >&2; exit 2 ;;
  esac
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_PACKAGES="gcc g++ gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib binutils-arm-none-eabi qemu-system-arm valgrind python3-venv"
[ "$TESTS" -eq 0 ] || APT_PACKAGES="$APT_PACKAGES postgresql"
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
