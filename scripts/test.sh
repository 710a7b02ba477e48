#!/usr/bin/env bash
# Runs every test: installs dependencies, runs the static checks (scripts/lint.sh), then builds
# twice (plain -Werror, and ASan+UBSan) and runs the unit and integration tests under ctest in
# both builds, then builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS
# (default 30). Needs root (raw ICMP, netns).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
rc=0
echo "=== lint"
scripts/lint.sh || rc=1
for variant in build build-asan; do
  args=()
  [ "$variant" = build-asan ] && args=(-DSITEPROBE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
  echo "=== $variant: build"
  scripts/build.sh "$variant" "${args[@]}"
  echo "=== $variant: ctest"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$variant" --output-on-failure --timeout 600 || rc=1
done
# libFuzzer targets (clang, ASan+UBSan): each runs for a bounded time from its seed corpus.
echo "=== build-fuzz: build, then ${FUZZ_SECONDS:=30} s per fuzz target"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DSITEPROBE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSITEPROBE_FUZZ_SECONDS="$FUZZ_SECONDS" >/dev/null
{ cmake --build build-fuzz -j"$(nproc)" && ctest --test-dir build-fuzz --output-on-failure; } || rc=1
exit $rc
