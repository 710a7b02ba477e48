#!/usr/bin/env bash
# lint.sh [BUILD_DIR]: the static checks; exits 1 on any finding. scripts/test.sh (CI) runs it.
#   ShellCheck    every tracked shell script (*.sh, or a sh/bash shebang); settings in .shellcheckrc
#   pyflakes3     every tracked Python file (*.py, or a python shebang)
#   clang-format  every tracked *.cpp and *.h (.clang-format)
#   clang-tidy    every translation unit of the build (.clang-tidy), from the compile database of
#                 BUILD_DIR (default build-lint, configured here: cmake only, no compiling)
# Debian packages: shellcheck pyflakes3 clang-format clang-tidy (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-lint}
rc=0

shell=() python=() cxx=()
while IFS= read -r f; do
  [ -f "$f" ] || continue
  case $f in
    *.cpp | *.h) cxx+=("$f") ;;
    *.py) python+=("$f") ;;
    *.sh) shell+=("$f") ;;
    *)
      first=""
      IFS= read -r -n 100 first <"$f" 2>/dev/null || true
      case $first in
        '#!'*python*) python+=("$f") ;;
        '#!'*/sh | '#!'*/sh\ * | '#!'*bash*) shell+=("$f") ;;
      esac
      ;;
  esac
done < <(git ls-files)

echo "=== shellcheck (${#shell[@]} scripts)"
shellcheck "${shell[@]}" || rc=1

echo "=== pyflakes3 (${#python[@]} files)"
pyflakes3 "${python[@]}" || rc=1

echo "=== clang-format (${#cxx[@]} files)"
clang-format --dry-run --Werror "${cxx[@]}" || rc=1

echo "=== clang-tidy ($build/compile_commands.json)"
cmake -S . -B "$build" >/dev/null
# The compiler's own warnings are the -Werror build's job (GCC): -Wno-error keeps clang's
# different set (its -Wconversion includes -Wsign-conversion) out of the result.
log=$build/clang-tidy.log
# Only the sources in the repository: a generated one (daemon/status_page.cpp, the embedded page)
# does not exist before a build, and is data.
if ! run-clang-tidy -p "$build" -j 2 -quiet -extra-arg=-Wno-error \
  "^$PWD/(util|metrics|inventory|probes|daemon|tests)/" >"$log" 2>&1; then
  sed -i 's/\x1b\[[0-9;]*m//g' "$log"  # run-clang-tidy always asks for colour
  # One line per finding (a header's come once per translation unit that includes it), paths
  # relative to the repository, a header seen through its layer's include root
  # (BUILD_DIR/include/util/util/x.h) as its source (util/x.h).
  grep -E '^/.*:[0-9]+:[0-9]+: (error|warning): ' "$log" |
    sed -E "s|^$PWD/||; s|^([^:]*/)?include/([^/:]+)/\2/|\2/|" | sort -u || tail -n 30 "$log"
  echo "clang-tidy: findings (all output in $log)"
  rc=1
fi

[ $rc = 0 ] && echo "lint: no findings"
exit $rc
