#!/usr/bin/env bash
# Path-test (STAMP) cost on loopback: `siteprobe path-test` (the sender, the same StampStream the
# daemon runs) against `siteprobe reflect --stateful`, at several bitrates of 1,200-byte packets.
# For each: packets sent and answered, skipped (our own loop late), the bitrate reached, and CPU
# (utime+stime) per 1,000 packets of the sender and of the reflector. The anchor, interleaved
# (A/B/A/B): fping's CPU per 1,000 echo requests to 127.0.0.1 at 1 ms spacing (fping -c -p 1),
# the cheapest Debian prober of one packet stream. Prints the load average: the host is shared.
# Usage: bench/stamp/run.sh [SECONDS=10 (>= 4)] [REPEAT=2] [RATES="2M 20M 100M 400M"]   (build/ must be built)
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/integration/lib.sh --free-port-only
SECS=${1:-10}
REPEAT=${2:-2}
RATES=${3:-"2M 20M 100M 400M"}
BIN=${SITEPROBE:-build/daemon/siteprobe}
T=$(mktemp -d /tmp/siteprobe-bench-stamp.XXXXXX)
PORT=$(free_port udp)
"$BIN" reflect --listen 127.0.0.1:"$PORT" --stateful --max-pps 10000000 2>"$T/reflector.log" & RP=$!
trap 'kill $RP 2>/dev/null || true; wait 2>/dev/null || true; rm -rf $T' EXIT
sleep 0.5
hz=$(getconf CLK_TCK)
cpu_of() { read -r -a st </proc/"$1"/stat; echo $((st[13] + st[14])); }
# child_cpu CMD...: runs CMD, prints its stdout, then "CPU SECONDS" (its utime+stime).
child_cpu() {
  python3 -c 'import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.write(p.stdout.decode())
print("CPU", r.ru_utime + r.ru_stime)' "$@"
}
echo "# bench/stamp: $SECS s per run, REPEAT=$REPEAT, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-6s %-10s %9s %9s %7s %12s %14s %14s\n" run rate sent received skipped "reached" "sender ms/1k" "reflector ms/1k"
for ((rep = 1; rep <= REPEAT; rep++)); do
  for rate in $RATES; do
    # Steady state: CPU of both from 1 s after the start to 1 s before the end of the stream.
    "$BIN" path-test --format json --bitrate "$rate" --size 1200 --duration "${SECS}s" --max-loss 100 \
      127.0.0.1:"$PORT" >"$T/out" & SP=$!
    sleep 1
    s0=$(cpu_of $SP) r0=$(cpu_of $RP)
    sleep $((SECS - 2))
    s1=$(cpu_of $SP) r1=$(cpu_of $RP)
    wait $SP || true
    python3 - "$(cat "$T/out")" "$s0" "$s1" "$r0" "$r1" "$hz" "$SECS" "$rep" "$rate" <<'PY'
import json, sys
out, s0, s1, r0, r1, hz, secs, rep, rate = sys.argv[1:]
j = json.loads(out)
secs = float(secs)
window = j["sent"] / secs * (secs - 2)  # packets sent in the window
snd = (int(s1) - int(s0)) / int(hz)
refl = (int(r1) - int(r0)) / int(hz)
reached = j["sent"] * (1200 + 28) * 8 / secs
print(f"{'A'+rep:<6} {rate:<10} {j['sent']:>9} {j['received']:>9} {j['skipped']:>7} {reached/1e6:>9.1f} Mb/s "
      f"{snd*1e6/window:>11.1f} {refl*1e6/window:>14.1f}")
PY
  done
  # The anchor: fping, one stream of echo requests at 1 ms spacing, as many packets as 20 Mbit/s sends.
  n=$((SECS * 2035))
  out=$(child_cpu fping -q -c "$n" -p 1 127.0.0.1 || true)
  cpu=$(echo "$out" | awk '/^CPU/ {print $2}')
  python3 -c "import sys; n=int(sys.argv[1]); c=float(sys.argv[2]); print(f'B{sys.argv[3]:<5} {\"fping 1ms\":<10} {n:>9} {\"\":>9} {\"\":>7} {\"\":>12} {c*1e3/n*1e3:>11.1f}   (fping: ICMP echo, anchor)')" "$n" "$cpu" "$rep"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# sender ms/1k and reflector ms/1k: CPU milliseconds per 1,000 packets in the steady state (1 s after"
echo "# the start to 1 s before the end; fping: its whole run). 'reached': IP-level bitrate of the packets"
echo "# sent; skipped > 0: the sender's loop could not keep up (never sent, never counted as loss)."
