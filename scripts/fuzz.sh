#!/usr/bin/env bash
# fuzz.sh [-t SECONDS | -n RUNS] [-j JOBS] [TARGET...]: builds the libFuzzer targets (clang,
# ASan+UBSan) into build-fuzz/ and runs each (default: all) for SECONDS (default 60) or RUNS
# executions, starting from the seeds in tests/fuzz/corpus/TARGET (and, for config, the test
# inventories in tests/testdata/valid and tests/testdata/invalid). New inputs are kept in
# build-fuzz/tests/fuzz/corpus-TARGET; crashes are written to build-fuzz/crash-TARGET-*.
# Targets are listed in tests/fuzz/CMakeLists.txt; docs/reliability.md has the results.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=(-max_total_time=60) jobs=1
while getopts "t:n:j:" o; do
  case $o in
    t) limit=(-max_total_time="$OPTARG") ;;
    n) limit=(-runs="$OPTARG") ;;
    j) jobs=$OPTARG ;;
    *) sed -n 2,6p "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DSITEPROBE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in build-fuzz/tests/fuzz/fuzz_*; do targets+=("${f##*/fuzz_}"); done
fi
par=()  # libFuzzer's -jobs forks workers that log to fuzz-N.log; only when asked for
[ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")
rc=0
for t in "${targets[@]}"; do
  dict=() seeds=("tests/fuzz/corpus/$t")
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  [ "$t" = config ] && seeds+=(tests/testdata/valid tests/testdata/invalid)
  mkdir -p "build-fuzz/tests/fuzz/corpus-$t"
  echo "=== fuzz_$t ${limit[*]}"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=64 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "build-fuzz/tests/fuzz/fuzz_$t" "${limit[@]}" "${par[@]}" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/crash-$t-" "${dict[@]}" \
    "build-fuzz/tests/fuzz/corpus-$t" "${seeds[@]}" || rc=1
done
exit $rc
