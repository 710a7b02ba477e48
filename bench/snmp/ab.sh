#!/usr/bin/env bash
# Two siteprobe builds side by side, polling the same snmpd at the same time, so both see the same
# noise from the rest of a shared machine: CPU ms per device poll of each, and their ratio.
# Loopback only.
#
#   sudo bench/snmp/ab.sh NEW_BINARY OLD_BINARY            # ROUNDS=3 N=300 WINDOW=40
#
# Each round starts both (the launch order swaps every round), waits 12 s, then reads their CPU
# (utime+stime from /proc) and siteprobe_snmp_polls_total over WINDOW seconds. N devices at 10 s,
# v2c, the system group and the IF-MIB columns of this host's interfaces, as in bench/snmp/run.sh.
set -euo pipefail
[ $# = 2 ] || { echo "usage: $0 BINARY_A BINARY_B" >&2; exit 2; }
command -v snmpd >/dev/null || { echo "ab.sh: snmpd missing: apt-get install -y snmpd" >&2; exit 1; }
A=$(realpath "$1") B=$(realpath "$2")
ROUNDS=${ROUNDS:-3} N=${N:-300} WINDOW=${WINDOW:-40}
WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

AGENT=$(port)
echo "rocommunity public 127.0.0.0/8" >"$WORK/snmpd.conf"
snmpd -f -C -c "$WORK/snmpd.conf" -M /nonexistent -Lf "$WORK/snmpd.log" "udp:127.0.0.1:$AGENT" &
PIDS+=($!)
{
  echo "auth: {v2: {version: 2c, community: public}}"
  echo "defaults:"
  echo "  icmp: {interval: 1h, timeout: 1s, packets: 1}"
  echo "  snmp: {auth: v2, port: $AGENT, interval: 10s, timeout: 2s, retries: 1, max_repetitions: 10}"
  printf 'sites:\n  - id: p\n    name: P\n    level: province\n    devices:\n'
  for ((i = 0; i < N; i++)); do echo "      - {name: d$i, address: 127.0.0.1, role: router}"; done
} >"$WORK/inv.yml"

polls() { curl -s "127.0.0.1:$1/metrics" | awk '/^siteprobe_snmp_polls_total\{/ {s += $NF} END {print s + 0}'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
start() {
  "$1" --config "$WORK/inv.yml" --web.listen-address "127.0.0.1:$2" --log.level warn >"$WORK/$2.log" 2>&1 &
  PIDS+=($!)
  echo $!
}

echo "A: $A"
echo "B: $B"
echo "| round | A ms/poll | B ms/poll | A / B | load avg |"
echo "|---|---|---|---|---|"
for ((r = 1; r <= ROUNDS; r++)); do
  pa=$(port) pb=$(port)
  if ((r % 2)); then ia=$(start "$A" "$pa"); ib=$(start "$B" "$pb"); else ib=$(start "$B" "$pb"); ia=$(start "$A" "$pa"); fi
  sleep 12
  la=$(cut -d' ' -f1 /proc/loadavg)
  a0=$(polls "$pa") b0=$(polls "$pb") ca0=$(ticks "$ia") cb0=$(ticks "$ib")
  sleep "$WINDOW"
  ca1=$(ticks "$ia") cb1=$(ticks "$ib") a1=$(polls "$pa") b1=$(polls "$pb")
  kill "$ia" "$ib"
  wait "$ia" "$ib" 2>/dev/null || true
  python3 - "$r" "$((ca1 - ca0))" "$((a1 - a0))" "$((cb1 - cb0))" "$((b1 - b0))" "$la $(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import os, sys
r, ta, pa, tb, pb, la = sys.argv[1:]
hz = os.sysconf("SC_CLK_TCK")
a, b = int(ta) * 1000 / hz / max(int(pa), 1), int(tb) * 1000 / hz / max(int(pb), 1)
print(f"| {r} | {a:.3f} | {b:.3f} | {a / b:.3f} | {la.replace(' ', ' -> ')} |")
PY
done
