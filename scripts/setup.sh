#!/usr/bin/env bash
# Set up vaelab from nothing: Debian's Fashion-MNIST package (when apt is there), a virtualenv, the package.
# Sourced by main.sh and test.sh; safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# apt_install PACKAGE PATH WHY: install a Debian package when PATH is missing and apt is there.
apt_install() {
    [ -e "$2" ] && return 0
    command -v apt-get >/dev/null || { echo "note: no apt-get for $1; $3"; return 0; }
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    if { [ -n "${APT_UPDATED:-}" ] || $sudo apt-get update -qq; } >/dev/null 2>&1 &&
       $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null 2>&1; then
        APT_UPDATED=1; echo "installed Debian's $1"
    else
        echo "note: could not apt-get install $1; $3"
    fi
}
apt_install dataset-fashion-mnist /usr/share/datasets/fashion-mnist "vaelab will download Fashion-MNIST when online"

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"

# The shared real datasets (MNIST, binarized MNIST, ...) when this checkout sits beside them.
if [ -z "${VAELAB_DATA:-}" ] && [ -d ../shared/data ]; then
    export VAELAB_DATA="$(cd ../shared/data && pwd)"
fi
export PATH="$PWD/.venv/bin:$PATH"

# train_steps DIR STEPS ARGS...: a new run in DIR, or the run there continued to STEPS (or found complete); for the
# study scripts (anomaly.sh, impute.sh)
train_steps() {
    local dir=$1 steps=$2; shift 2
    if [ -f "$dir/config.yaml" ]; then vaelab train --resume "$dir" --steps "$steps"; else
        vaelab train --out "$dir" --steps "$steps" --set train.progress=false "$@"; fi
}
