#!/usr/bin/env bash
# 50 concurrent /metrics scrapes, three times over, of a daemon probing 1000 loopback devices at a
# 1 s interval: every scrape succeeds and is complete (every device's series present, each ending
# in a newline), received <= sent for every device in every scrape (the order in which they are
# rendered guarantees it), and probing does not stall meanwhile (loop lag, devices still up).
source "$(dirname "$0")/lib.sh"
need_root

python3 - >"$TMP/inv.yml" <<'PY'
print("defaults:\n  icmp: {interval: 1s, timeout: 500ms, packets: 2, spacing: 50ms}\nsites:")
for s in range(100):
    print(f"  - {{id: s{s}, name: Site {s}, level: province}}".replace("}", ", devices: [") )
    print(",\n".join(f"      {{name: d{d}, address: 127.30.{s}.{d + 1}, role: router}}" for d in range(10)) + "]}")
PY
"$SP_BIN" check "$TMP/inv.yml" >/dev/null || fail "generated inventory invalid: $("$SP_BIN" check "$TMP/inv.yml")"
start_siteprobe "$TMP/inv.yml"
wait_for 'v >= 2' siteprobe_icmp_packets_received_total 'site="s99",device="d9"' 10

mkdir "$TMP/s"
for round in 1 2 3; do
  pids=()
  for i in $(seq 1 50); do
    curl -fsS --max-time 30 -o "$TMP/s/$round-$i" -w '%{http_code} %{time_total}\n' "$SP_URL/metrics" >"$TMP/s/$round-$i.code" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || fail "a scrape in round $round failed"; done
done
python3 - "$TMP/s" <<'PY' || fail "incomplete or inconsistent scrapes (see above)"
import os, re, sys
d = sys.argv[1]
bad, times = 0, []
for f in sorted(x for x in os.listdir(d) if not x.endswith(".code")):
    code, t = open(os.path.join(d, f + ".code")).read().split()
    times.append(float(t))
    text = open(os.path.join(d, f)).read()
    sent = dict(re.findall(r'^siteprobe_icmp_packets_sent_total\{([^}]*)\} (\S+)$', text, re.M))
    recv = dict(re.findall(r'^siteprobe_icmp_packets_received_total\{([^}]*)\} (\S+)$', text, re.M))
    if code != "200" or not text.endswith("\n") or len(sent) != 1000 or len(recv) != 1000 or "siteprobe_build_info" not in text:
        print(f"{f}: code {code}, {len(sent)} sent series, {len(recv)} received series"); bad += 1; continue
    over = [k for k in sent if float(recv[k]) > float(sent[k])]
    if over:
        print(f"{f}: received > sent for {over[:3]}"); bad += 1
times.sort()
print(f"150 scrapes: median {times[len(times) // 2]:.3f} s, max {times[-1]:.3f} s")
sys.exit(1 if bad else 0)
PY
pass "150 scrapes (50 at a time) complete and consistent"
kill -0 "$SP_PID" || fail "daemon died"
lag=$(metric siteprobe_loop_lag_seconds)
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.5 else 1)" "$lag" || fail "loop lag $lag s"
snapshot
down=$(grep -c '^siteprobe_device_up{.*} 0$' "$SNAPSHOT" || true)
[ "$down" = 0 ] || fail "$down devices down after the scrapes"
unsnap
pass "probing unaffected: loop lag $lag s, all 1000 devices up"
