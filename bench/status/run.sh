#!/usr/bin/env bash
# The status page under load (issue #18): CLIENTS browsers-worth of pollers against one daemon.
#
#   sudo bench/status/run.sh                      # the reference inventory, 100 clients, 3 minutes
#   sudo N=10000 MINUTES=5 bench/status/run.sh    # 10k loopback ICMP targets (bench/icmp/report.py gen)
#
# Env: CLIENTS (default 100), MINUTES (default 3), N (0: config/bac-kan.yml; else N generated
#      loopback targets at 10 s rounds), BIN (default build/daemon/siteprobe), KEEP=1.
# Each client is what one open page does: the page and tree.json once, then live.json every second
# and one site.json every 5 s, on a keep-alive connection from its own source address 127.0.1.K
# (the daemon caps connections per client address). Reported: loop lag (siteprobe_loop_lag_seconds
# sampled every second: max; siteprobe_loop_lateness_seconds over the run: share over 10 ms), the
# daemon's RSS before and after, its CPU over the run, and the clients' answers and errors.
# Only 127.0.0.0/8 is ever probed or served.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLIENTS=${CLIENTS:-100}
MINUTES=${MINUTES:-3}
N=${N:-0}
BIN=${BIN:-$ROOT/build/daemon/siteprobe}
# shellcheck source=../../tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh" --free-port-only
WORK=$(mktemp -d /tmp/siteprobe-bench-status.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"' EXIT
INV=$ROOT/config/bac-kan.yml
if [ "$N" != 0 ]; then python3 "$ROOT/bench/icmp/report.py" gen "$N" 10 "$WORK"; INV=$WORK/inventory.yml; fi
PORT=$(free_port)
"$BIN" --config "$INV" --web.listen-address "127.0.0.1:$PORT" --log.level warn >"$WORK/siteprobe.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done
sleep 15  # first rounds
/usr/bin/python3 "$HERE/load.py" --url "http://127.0.0.1:$PORT" --pid "$PID" --clients "$CLIENTS" \
  --seconds $((MINUTES * 60))
