#!/usr/bin/env bash
# build.sh [DIR] [extra cmake args...]: configures and builds siteprobe (warnings are errors).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}; shift || true
# The prefix is explicit so build trees configured before it became /usr are fixed too.
cmake -S . -B "$dir" -DSITEPROBE_WERROR=ON -DCMAKE_INSTALL_PREFIX=/usr "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
