#!/usr/bin/env bash
# Set up vaelab from nothing: Debian's Fashion-MNIST package (when apt is there), a virtualenv, the package.
# Sourced by main.sh and test.sh; safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    if { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist; } >/dev/null 2>&1; then
        echo "installed Debian's dataset-fashion-mnist"
    else
        echo "note: could not apt-get install dataset-fashion-mnist; vaelab will download Fashion-MNIST when online"
    fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"

# The shared real datasets (MNIST, binarized MNIST, ...) when this checkout sits beside them.
if [ -z "${VAELAB_DATA:-}" ] && [ -d ../shared/data ]; then
    export VAELAB_DATA="$(cd ../shared/data && pwd)"
fi
export PATH="$PWD/.venv/bin:$PATH"
