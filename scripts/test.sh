#!/usr/bin/env bash
# Runs every test: installs dependencies, runs the static checks (scripts/lint.sh), then builds
# twice (plain -Werror, and ASan+UBSan) and runs the unit and integration tests under ctest in
# both builds, then builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS
# (default 30). Needs root (raw ICMP, netns). Ends with one line per stage, so a failure is
# found without reading the whole log.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
rc=0
summary=()
stage() {  # stage NAME CMD...: runs CMD, records NAME's result
  local name=$1; shift
  if "$@"; then summary+=("ok      $name"); else summary+=("FAILED  $name"); rc=1; fi
}
echo "=== lint"
stage lint scripts/lint.sh
for variant in build build-asan; do
  args=()
  skip=()
  # Tests that wait on the clock (real Prometheus `for:` windows, a conference minute) run once.
  [ "$variant" = build-asan ] && args=(-DSITEPROBE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) && skip=(-LE slow_e2e)
  echo "=== $variant: build"
  stage "$variant: build" scripts/build.sh "$variant" "${args[@]}"
  echo "=== $variant: ctest"
  stage "$variant: ctest" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$variant" --output-on-failure --timeout 600 "${skip[@]}"
done
# libFuzzer targets (clang, ASan+UBSan): each runs for a bounded time from its seed corpus.
echo "=== build-fuzz: build, then ${FUZZ_SECONDS:=30} s per fuzz target"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DSITEPROBE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSITEPROBE_FUZZ_SECONDS="$FUZZ_SECONDS" >/dev/null
stage "build-fuzz: build" cmake --build build-fuzz -j"$(nproc)"
stage "build-fuzz: ctest" ctest --test-dir build-fuzz --output-on-failure
echo "=== summary"
printf '%s\n' "${summary[@]}"
exit $rc
