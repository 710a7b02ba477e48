#!/usr/bin/env bash
# build.sh [DIR] [extra cmake args...]: configures and builds siteprobe (warnings are errors).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}; shift || true
cmake -S . -B "$dir" -DSITEPROBE_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
