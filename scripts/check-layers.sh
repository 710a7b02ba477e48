#!/usr/bin/env bash
# Fails on an include that points up or across the layers (docs/architecture.md):
#   util <- metrics <- inventory <- probes <- daemon
# A file in one layer may include its own layer's headers and those of the layers left of it,
# nothing else. The build enforces the same through per-library include roots; this names the file
# and line, and also covers headers no translation unit includes yet.
set -euo pipefail
cd "$(dirname "$0")/.."
layers=(util metrics inventory probes daemon)
bad=0
for i in "${!layers[@]}"; do
  allowed=("${layers[@]:0:i+1}")
  pattern="^($(IFS='|'; echo "${allowed[*]}"))/"
  while IFS=: read -r file line text; do
    inc=$(sed -E 's/^#include "([^"]+)".*/\1/' <<<"$text")
    if [[ ! $inc =~ $pattern ]]; then
      echo "$file:$line: ${layers[i]} may not include \"$inc\" (allowed: ${allowed[*]})"
      bad=1
    fi
  done < <(grep -n -E '^#include "' "${layers[i]}"/*.cpp "${layers[i]}"/*.h 2>/dev/null || true)
done
[ "$bad" = 0 ] && echo "layers: every include points down (${layers[*]})"
exit "$bad"
