#!/usr/bin/env bash
# SIP OPTIONS prober cost on loopback: N endpoints (127.20.x.y) each probed once a second over UDP,
# answered 200 OK by scripts/demo-endpoints.py (one Python process, one socket per address).
# Reports siteprobe's CPU per 1000 SIP requests (utime+stime from /proc over WINDOW seconds after
# a warm-up), the requests, answers and errors in the window, and the p99 of the response time
# over the window. ICMP runs at a 60 s interval with one packet, so SIP dominates.
# Usage: bench/sip/run.sh [N=1000] [WINDOW=30]   (root; build/ must be built)
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/integration/lib.sh --free-port-only
N=${1:-1000}
WINDOW=${2:-30}
ulimit -n "$(ulimit -Hn)"  # the responder opens two sockets per endpoint
T=$(mktemp -d /tmp/siteprobe-bench-sip.XXXXXX)
trap 'kill $SP $EP 2>/dev/null || true; wait 2>/dev/null || true; rm -rf $T' EXIT
{
  echo "defaults:"
  echo "  icmp: {interval: 60s, timeout: 2s, packets: 1}"
  echo "  sip: {interval: 1s, timeout: 900ms}"
  echo "  h323: {enabled: false}"
  echo "sites:"
  echo "  - {id: p, name: P, level: province, devices: ["
  for ((i = 0; i < N; i++)); do echo "      {name: vc$i, address: 127.20.$((i / 250)).$((i % 250 + 1)), role: vc_endpoint},"; done
  echo "    ]}"
} >"$T/inv.yml"
build/daemon/siteprobe check "$T/inv.yml"
python3 scripts/demo-endpoints.py "$T/inv.yml" & EP=$!
PORT=$(free_port)
build/daemon/siteprobe --config "$T/inv.yml" --web.listen-address "127.0.0.1:$PORT" --log.level warn & SP=$!
sleep 5
snap() {
  read -r -a st </proc/$SP/stat
  curl -s "127.0.0.1:$PORT/metrics" >"$T/m$1"
  echo $((st[13] + st[14])) >"$T/cpu$1"
}
sum() { awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { printf "%d\n", s }' "$T/m$2"; }
snap 0
if [ -n "${PERF:-}" ]; then perf record -g -o "$T/perf.data" -p $SP -- sleep "$WINDOW" 2>/dev/null; perf report -i "$T/perf.data" --no-children --percent-limit 2 --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -25; else sleep "$WINDOW"; fi
snap 1
hz=$(getconf CLK_TCK)
req=$(( $(sum 'siteprobe_sip_requests_total{' 1) - $(sum 'siteprobe_sip_requests_total{' 0) ))
ok=$(( $(sum 'siteprobe_sip_responses_total{' 1) - $(sum 'siteprobe_sip_responses_total{' 0) ))
err=$(( $(sum 'siteprobe_sip_errors_total{' 1) - $(sum 'siteprobe_sip_errors_total{' 0) ))
cpu=$(( $(cat "$T/cpu1") - $(cat "$T/cpu0") ))
p99=$(python3 - "$T/m0" "$T/m1" <<'PY'
import re, sys
def buckets(f):
    b = {}
    for l in open(f):
        m = re.match(r'siteprobe_sip_rtt_seconds_bucket\{.*le="([^"]+)"\} (\d+)', l)
        if m: b[m.group(1)] = b.get(m.group(1), 0) + int(m.group(2))
    return b
a, b = buckets(sys.argv[1]), buckets(sys.argv[2])
d = sorted(((float(k), b[k] - a.get(k, 0)) for k in b), key=lambda x: x[0])
total = d[-1][1]
print(next((k for k, v in d if v >= 0.99 * total), "n/a") if total else "n/a")
PY
)
awk -v n="$N" -v w="$WINDOW" -v req="$req" -v ok="$ok" -v err="$err" -v cpu="$cpu" -v hz="$hz" -v p99="$p99" 'BEGIN {
  printf "endpoints=%d window=%ds requests=%d answers=%d errors=%d cpu=%.2fs (%.1f%% of a core) cpu_per_1000_requests=%.1fms sip_rtt_p99<=%ss\n",
    n, w, req, ok, err, cpu / hz, 100 * cpu / hz / w, req ? 1000 * 1000 * cpu / hz / req : 0, p99 }'
