#!/usr/bin/env bash
# Set up and run the test suite (tests marked slow are left out; add `-m slow` to run those).
set -euo pipefail
source "$(dirname "$0")/setup.sh"
apt_install chromium /usr/bin/chromium "the app's browser tests are skipped (outside CI) without it"
python -m pytest -q "$@"
