#!/usr/bin/env bash
# Runs every test: installs dependencies, runs the static checks (scripts/lint.sh), then builds
# twice (plain -Werror, and ASan+UBSan) and runs the unit and integration tests under ctest in
# both builds, then builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS
# (default 30). Needs root (raw ICMP, netns). Ends with one line per stage, so a failure is
# found without reading the whole log.
#
# The plain build's tests mostly wait on clocks (Prometheus `for:` windows, probe rounds), so the
# CPU-bound stages that do not depend on them (lint, the sanitizer and fuzz builds) run meanwhile
# in the background at idle priority (SCHED_IDLE, nice 19): they get only the CPU the tests leave,
# and the tests' timing is what it would be on an idle machine. Their output follows the plain
# tests' in the log.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
: "${FUZZ_SECONDS:=30}"
rc=0
summary=()
stage() {  # stage NAME CMD...: runs CMD, records NAME's result
  local name=$1; shift
  if "$@"; then summary+=("ok      $name"); else summary+=("FAILED  $name"); rc=1; fi
}
sanitizers=(env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)

bg=$(mktemp -d /tmp/siteprobe-test.XXXXXX)
background() {  # the CPU-bound stages; each writes its exit status to $bg/NAME.rc
  run() { local name=$1; shift; echo "=== $name"; "$@"; echo $? >"$bg/$name.rc"; }
  chrt -i -p 0 "$BASHPID" >/dev/null 2>&1 || true  # children inherit both
  renice -n 19 -p "$BASHPID" >/dev/null
  set +e
  run lint scripts/lint.sh
  run "build-asan: build" scripts/build.sh build-asan -DSITEPROBE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  echo "=== build-fuzz: configure"
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DSITEPROBE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSITEPROBE_FUZZ_SECONDS="$FUZZ_SECONDS" >/dev/null
  run "build-fuzz: build" cmake --build build-fuzz -j"$(nproc)"
}
echo "=== lint, build-asan and build-fuzz: in the background at idle priority (output after the plain tests)"
background >"$bg/log" 2>&1 &
bg_pid=$!

echo "=== build: build"
stage "build: build" scripts/build.sh build
echo "=== build: ctest"
# Unit tests run two at a time; integration tests are RUN_SERIAL (ports, namespaces, timing).
stage "build: ctest" "${sanitizers[@]}" ctest --test-dir build --output-on-failure --timeout 600 -j2

wait "$bg_pid" || true
cat "$bg/log"
for name in lint "build-asan: build" "build-fuzz: build"; do
  stage "$name" test "$(cat "$bg/$name.rc" 2>/dev/null)" = 0
done

echo "=== build-asan: ctest"
# Tests that wait on the clock (real Prometheus `for:` windows, a conference minute) or that do not
# run the binary at all (rules, templates, the unit file) run once, in the plain build.
stage "build-asan: ctest" "${sanitizers[@]}" ctest --test-dir build-asan --output-on-failure --timeout 600 -j2 \
  -LE 'slow_e2e|no_binary'
echo "=== build-fuzz: ${FUZZ_SECONDS} s per fuzz target"
stage "build-fuzz: ctest" ctest --test-dir build-fuzz --output-on-failure
rm -rf "$bg"
echo "=== summary"
printf '%s\n' "${summary[@]}"
exit $rc
