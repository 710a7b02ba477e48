#!/usr/bin/env bash
# SIGHUP storm: 100 reloads in about 10 s, every other one an invalid inventory (a syntax error, an
# unknown key, a bad address, in turn), while /metrics is scraped every 100 ms. Five devices never
# change; a sixth comes and goes with the valid reloads. The daemon must stay up, handle every
# signal, count exactly the 50 failures, keep the unchanged devices' counters monotonic
# (never reset by a reload) and consistent (received <= sent, give or take the packet answered while the scrape is read), and keep them probing.
source "$(dirname "$0")/lib.sh"
need_root

write_inv() {  # write_inv VARIANT: 0 valid with x, 1 valid without x, 2/3/4 invalid in three ways
  local f="$TMP/inv.next" d devs=()
  for d in 1 2 3 4 5; do devs+=("{name: r$d, address: 127.0.0.$d, role: router}"); done
  case $1 in
    0) devs+=("{name: x, address: 127.0.0.9, role: server}") ;;
    1) ;;
    2) devs+=("{name: x, address: 127.0.0.9, role: server") ;;
    3) devs+=("{name: x, address: 127.0.0.9, role: server, colour: red}") ;;
    4) devs+=("{name: x, address: 127.0.0.300, role: server}") ;;
  esac
  small_inventory "$f" "${devs[@]}"
  mv "$f" "$TMP/inv.yml"  # atomic: a reload never reads half a file
}
reloads_seen() { grep -cE 'msg="(inventory reloaded|reload rejected)' "$TMP/siteprobe.log" || true; }

write_inv 0
start_siteprobe "$TMP/inv.yml"
wait_for 'v >= 2' siteprobe_icmp_packets_received_total 'device="r5"' 10

# Scrape every 100 ms in the background, one file per scrape.
mkdir "$TMP/scrapes"
( i=0; while [ ! -e "$TMP/stop" ]; do curl -fsS "$SP_URL/metrics" >"$TMP/scrapes/$(printf %05d $i)" || true; i=$((i + 1)); sleep 0.1; done ) &
SCRAPER=$!
CLEANUPS+=("touch $TMP/stop; wait $SCRAPER")

t0=$(date +%s.%N)
for i in $(seq 1 100); do
  if [ $((i % 2)) = 1 ]; then write_inv $(( (i / 2) % 2 )); else write_inv $((2 + (i / 2) % 3)); fi
  kill -HUP "$SP_PID"
  # Wait until this reload was handled (logged), so no two signals merge into one.
  for _ in $(seq 200); do [ "$(reloads_seen)" -ge "$i" ] && break; sleep 0.01; done
  [ "$(reloads_seen)" -ge "$i" ] || { cat "$TMP/siteprobe.log"; fail "reload $i not handled within 2 s"; }
  sleep 0.05
done
t1=$(date +%s.%N)
kill -0 "$SP_PID" || fail "daemon died in the storm"
secs=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$t0" "$t1")
pass "100 reloads (50 invalid) in $secs s, daemon up"

[ "$(metric siteprobe_config_reload_failures_total)" = 50 ] ||
  fail "reload failures $(metric siteprobe_config_reload_failures_total), want 50"
[ "$(metric siteprobe_config_last_reload_successful)" = 0 ] || fail "last reload (invalid) reported successful"
[ "$(grep -c 'msg="inventory reloaded' "$TMP/siteprobe.log")" = 50 ] || fail "not 50 successful reloads logged"
pass "reload metrics: 50 failures counted, last_reload_successful 0"

# The last valid inventory (reload 99: variant (49 % 2) = 1) has no x.
[ "$(metric siteprobe_device_up 'device="x"')" = absent ] || fail "device x exported, the last valid inventory has none"
write_inv 0
kill -HUP "$SP_PID"
wait_for 'v == 1' siteprobe_config_last_reload_successful '' 5
wait_for 'v == 1' siteprobe_device_up 'device="x"' 5
touch "$TMP/stop"; wait $SCRAPER

# Every scrape: received <= sent per device; across scrapes: the counters of r1..r5 never go back.
python3 - "$TMP/scrapes" <<'PY' || fail "counters not monotonic or inconsistent (see above)"
import os, re, sys
d = sys.argv[1]
files = sorted(os.listdir(d))
prev, bad, n = {}, 0, 0
for f in files:
    text = open(os.path.join(d, f)).read()
    if not text.endswith("\n") or "siteprobe_build_info" not in text:
        continue  # a scrape cut short by the scraper stopping
    n += 1
    cur = {}
    for m in re.finditer(r'^(siteprobe_icmp_packets_(?:sent|received)_total|siteprobe_icmp_rtt_seconds_count)\{[^}]*device="(r\d)"[^}]*\} (\S+)$', text, re.M):
        cur[(m.group(1), m.group(2))] = float(m.group(3))
    for dev in ("r1", "r2", "r3", "r4", "r5"):
        s, r = cur.get(("siteprobe_icmp_packets_sent_total", dev)), cur.get(("siteprobe_icmp_packets_received_total", dev))
        if s is None or r is None:
            print(f"{f}: {dev} missing"); bad += 1; continue
        # The scrape reads sent, then received, while probing goes on: one packet sent and answered
        # in between is allowed.
        if r > s + 1:
            print(f"{f}: {dev} received {r} > sent {s}"); bad += 1
    for k, v in cur.items():
        if v < prev.get(k, 0):
            print(f"{f}: {k} went back from {prev[k]} to {v}"); bad += 1
    prev.update(cur)
print(f"{n} scrapes checked; r1 sent {prev.get(('siteprobe_icmp_packets_sent_total', 'r1'))}")
sys.exit(1 if bad or n < 50 else 0)
PY
pass "unchanged devices: counters monotonic and received <= sent in every scrape"

# Still probing: every unchanged device answered in the seconds after the storm.
snapshot; before=$(metric siteprobe_icmp_packets_received_total 'device="r3"'); unsnap
wait_for "v >= $before + 4" siteprobe_icmp_packets_received_total 'device="r3"' 5
for i in 1 2 3 4 5; do [ "$(metric siteprobe_device_up "device=\"r$i\"")" = 1 ] || fail "r$i down after the storm"; done
lag=$(metric siteprobe_loop_lag_seconds)
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.5 else 1)" "$lag" || fail "loop lag $lag s"
pass "probing continues, all unchanged devices up, loop lag $lag s"
