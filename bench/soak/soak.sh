#!/usr/bin/env bash
# Accelerated soak: siteprobe probing N loopback targets at a fast interval for a long time, with
# RSS, open fds and threads sampled every SAMPLE seconds and /metrics scraped every SCRAPE seconds.
# At the end it reports the growth of RSS and fds from the end of the warm-up to the end, and
# fails (exit 1) if either grew by GOAL % or more, or the daemon died.
#
#   sudo bench/soak/soak.sh                                  # 10000 targets, 1 h, 1 s interval
#   sudo DURATION=1800 nice bench/soak/soak.sh               # 30 minutes
#
# Env: N (targets, default 10000), DURATION (s, 3600), INTERVAL (1s), PACKETS (1), SAMPLE (s, 60),
#      SCRAPE (s, 15), WARMUP (s, a third of DURATION, at most 600), GOAL (%, 5),
#      RELOAD (s, 0 = never: SIGHUP with the same inventory every RELOAD s),
#      SITEPROBE (binary, build/daemon/siteprobe), OUT (CSV, default soak-<date>.csv in the cwd).
# siteprobe runs in a network namespace of its own with only loopback, so it probes nothing else
# and other ICMP users on the host never see its packets. Results: docs/reliability.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/tests/integration/lib.sh" --free-port-only
N=${N:-10000} DURATION=${DURATION:-3600} INTERVAL=${INTERVAL:-1s} PACKETS=${PACKETS:-1}
SAMPLE=${SAMPLE:-60} SCRAPE=${SCRAPE:-15} GOAL=${GOAL:-5} RELOAD=${RELOAD:-0}
WARMUP=${WARMUP:-$((DURATION / 3 < 600 ? DURATION / 3 : 600))}
SITEPROBE=$(readlink -f "${SITEPROBE:-$ROOT/build/daemon/siteprobe}")
OUT=${OUT:-$PWD/soak-$(date -u +%Y%m%dT%H%M%SZ).csv}
[ "$(id -u)" = 0 ] || { echo "soak.sh: run as root (network namespace, raw ICMP)" >&2; exit 2; }
[ -x "$SITEPROBE" ] || { echo "soak.sh: no binary at $SITEPROBE" >&2; exit 2; }

NS=spsoak$$ WORK=$(mktemp -d /tmp/siteprobe-soak.XXXXXX) PID=""
cleanup() {
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$NS"
ip -n "$NS" link set lo up

# 1 province, 20 districts, then communes; 10 devices a site, one 127.20.0.0/14 address each.
python3 - "$N" "$INTERVAL" "$PACKETS" >"$WORK/inv.yml" <<'PY'
import sys
n, interval, packets = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
out = ["global: {icmp_max_packets_per_second: 50000}",
       f"defaults:\n  icmp: {{interval: {interval}, timeout: 500ms, packets: {packets}, spacing: 50ms}}",
       "sites:"]
for s in range((n + 9) // 10):
    level, parent = ("province", "") if s == 0 else ("district", "s0") if s <= 20 else ("commune", f"s{1 + s % 20}")
    out.append(f"  - id: s{s}\n    name: Site {s}\n    level: {level}" + (f"\n    parent: {parent}" if parent else ""))
    out.append("    devices:")
    for d in range(min(10, n - 10 * s)):
        a = 10 * s + d + 1
        out.append(f"      - {{name: d{d}, address: 127.{20 + a // 65536}.{a // 256 % 256}.{a % 256}, "
                   f"role: {'router' if d == 0 else 'server'}}}")
print("\n".join(out))
PY
"$SITEPROBE" check "$WORK/inv.yml"
PORT=$(free_port)
ip netns exec "$NS" "$SITEPROBE" --config "$WORK/inv.yml" --web.listen-address "127.0.0.1:$PORT" \
  --log.level info >"$WORK/siteprobe.log" 2>&1 &
PID=$!
scrape() { ip netns exec "$NS" curl -fsS --max-time 20 "http://127.0.0.1:$PORT/metrics"; }
for _ in $(seq 100); do scrape >/dev/null 2>&1 && break; sleep 0.2; done

# One CSV row per sample: from the process (/proc) and from a scrape taken right then.
echo "elapsed_s,rss_kb,fds,threads,cpu_s,scrape_s,scrape_bytes,sent,received,late,invalid,loop_lag_s,reload_failures" >"$OUT"
HZ=$(getconf CLK_TCK)
sample() {
  local el=$1 t0 t1 st f rss fds thr cpu
  rss=$(awk '$1 == "VmRSS:" {print $2}' /proc/$PID/status)
  thr=$(awk '$1 == "Threads:" {print $2}' /proc/$PID/status)
  fds=$(find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
  st=$(<"/proc/$PID/stat"); read -r -a f <<<"${st##*) }"; cpu=$(( f[11] + f[12] ))
  t0=$(date +%s.%N); scrape >"$WORK/m"; t1=$(date +%s.%N)
  python3 - "$el" "$rss" "$fds" "$thr" "$cpu" "$HZ" "$t0" "$t1" "$WORK/m" <<'PY' >>"$OUT"
import sys, os
el, rss, fds, thr, cpu, hz, t0, t1, path = sys.argv[1:]
tot = {}
for line in open(path):
    if line.startswith("#"): continue
    name = line.split("{")[0].split(" ")[0]
    if name in ("siteprobe_icmp_packets_sent_total", "siteprobe_icmp_packets_received_total",
                "siteprobe_icmp_late_replies_total", "siteprobe_icmp_invalid_replies_total",
                "siteprobe_loop_lag_seconds", "siteprobe_config_reload_failures_total"):
        tot[name] = tot.get(name, 0) + float(line.rsplit(" ", 1)[1])
g = lambda k: tot.get("siteprobe_" + k, 0)
print(f"{el},{rss},{fds},{thr},{int(cpu) / int(hz):.1f},{float(t1) - float(t0):.3f},{os.path.getsize(path)},"
      f"{g('icmp_packets_sent_total'):.0f},{g('icmp_packets_received_total'):.0f},{g('icmp_late_replies_total'):.0f},"
      f"{g('icmp_invalid_replies_total'):.0f},{g('loop_lag_seconds'):.4f},{g('config_reload_failures_total'):.0f}")
PY
  tail -n 1 "$OUT"
}

echo "soak: N=$N interval=$INTERVAL packets=$PACKETS for ${DURATION}s, warm-up ${WARMUP}s, samples every ${SAMPLE}s -> $OUT"
head -n 1 "$OUT"
start=$(date +%s) next_sample=$start next_scrape=$start next_reload=$((start + RELOAD))
while :; do
  now=$(date +%s); el=$((now - start))
  kill -0 $PID || { echo "soak: siteprobe died after ${el}s"; tail -n 20 "$WORK/siteprobe.log"; exit 1; }
  if [ "$now" -ge "$next_sample" ]; then sample "$el"; next_sample=$((next_sample + SAMPLE)); next_scrape=$((now + SCRAPE)); fi
  [ $el -ge "$DURATION" ] && break
  if [ "$now" -ge "$next_scrape" ]; then scrape >/dev/null || echo "soak: scrape failed at ${el}s"; next_scrape=$((now + SCRAPE)); fi
  if [ "$RELOAD" -gt 0 ] && [ "$now" -ge "$next_reload" ]; then kill -HUP "$PID"; next_reload=$((now + RELOAD)); fi
  sleep 1
done

python3 - "$OUT" "$WARMUP" "$GOAL" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
warm, goal = float(sys.argv[2]), float(sys.argv[3])
base = next((r for r in rows if float(r["elapsed_s"]) >= warm), rows[-1])
last = rows[-1]
ok = True
for k, label in (("rss_kb", "RSS"), ("fds", "open fds")):
    b, e = float(base[k]), float(last[k])
    g = 100 * (e - b) / b
    peak = max(float(r[k]) for r in rows if float(r["elapsed_s"]) >= warm)
    print(f"{label}: {b:.0f} at {base['elapsed_s']} s (end of warm-up) -> {e:.0f} at {last['elapsed_s']} s: "
          f"{g:+.2f} % (peak after warm-up {peak:.0f}; goal < {goal} %)")
    ok &= g < goal
sent = float(last["sent"]) - float(base["sent"]); recv = float(last["received"]) - float(base["received"])
span = float(last["elapsed_s"]) - float(base["elapsed_s"])
print(f"after warm-up: {sent / span:.0f} requests/s sent, {100 * recv / sent if sent else 0:.3f} % answered; "
      f"CPU {100 * (float(last['cpu_s']) - float(base['cpu_s'])) / span:.1f} % of a core; "
      f"scrape {last['scrape_s']} s for {int(last['scrape_bytes']) // 1024} KiB")
print("soak: PASS" if ok else "soak: FAIL (growth over goal)")
sys.exit(0 if ok else 1)
PY
