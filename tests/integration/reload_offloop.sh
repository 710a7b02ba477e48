#!/usr/bin/env bash
# A reload parses the inventory off the loop (issue #12 item 4): while a large inventory is read
# and validated in libuv's thread pool, probing goes on, the loop never stalls, and /metrics
# answers; a rejected one changes nothing, a good one is swapped in on the loop. Also: every
# POST /-/reload and SIGHUP asked during a reload gets an answer.
source "$(dirname "$0")/lib.sh"
need_root
cd "$TMP"

small_inventory inv.yml
cp inv.yml good.yml
start_siteprobe inv.yml
wait_for 'v >= 2' siteprobe_icmp_packets_sent_total 'device="r1"' 10

# A large inventory with one error at its very end: the whole file is parsed, then rejected.
python3 - <<'PY'
with open("inv.yml", "w") as f:
    f.write("sites:\n  - {id: bk, name: Bắc Kạn, level: province, devices: [{name: r1, address: 127.0.0.1, role: router}]}\n")
    for d in range(300):
        f.write(f"  - id: d{d}\n    name: District {d}\n    level: district\n    parent: bk\n    devices:\n")
        for i in range(250):
            f.write(f"      - {{name: r{i}, address: 127.{1 + d // 250}.{d % 250}.{1 + i % 250}, role: router}}\n")
    f.write("  - {id: bad, name: Bad, level: district, parent: bk, colour: red}\n")
PY
echo "inventory: $(du -h inv.yml | cut -f1)"
stalls0=$(metric siteprobe_loop_stalls_total)
sent0=$(metric siteprobe_icmp_packets_sent_total 'device="r1"')
t0=$(date +%s.%N)
kill -HUP "$SP_PID"
scrapes=0
for _ in $(seq 1 1200); do
  grep -q 'reload rejected' "$TMP/siteprobe.log" && break
  scrape >/dev/null && scrapes=$((scrapes + 1))
  sleep 0.1
done
t1=$(date +%s.%N)
grep -q 'reload rejected' "$TMP/siteprobe.log" || fail "the large reload never ended"
grep -q 'colour' "$TMP/siteprobe.log" || fail "the error at the end was not reported"
took=$(python3 -c "print(round($t1 - $t0, 1))")
python3 -c "import sys; sys.exit(0 if $t1 - $t0 >= 1.5 else 1)" || fail "the parse took ${took} s: too short to show anything"
stalls1=$(metric siteprobe_loop_stalls_total)
sent1=$(metric siteprobe_icmp_packets_sent_total 'device="r1"')
[ "$stalls1" = "$stalls0" ] || fail "the loop stalled during the parse ($stalls0 -> $stalls1 stalls in ${took} s)"
python3 -c "import sys; sys.exit(0 if $sent1 - $sent0 >= 2 * int($t1 - $t0) - 2 else 1)" \
  || fail "probing paused during the parse: $sent0 -> $sent1 echo requests in ${took} s"
[ "$(metric siteprobe_config_last_reload_successful)" = 0 ] || fail "a rejected reload counted as good"
pass "a ${took} s parse ran off the loop: no stall, $((${sent1%.*} - ${sent0%.*})) echo requests sent meanwhile, $scrapes scrapes answered"

# Reloads asked for during a reload: each SIGHUP and each POST is answered, the last state wins.
cp good.yml inv.yml
for _ in 1 2 3 4 5; do kill -HUP "$SP_PID"; done
wait_for 'v == 1' siteprobe_config_last_reload_successful '' 30
# The gauge is set just before the log line is written: wait for the line too.
for _ in $(seq 1 50); do grep -q 'inventory reloaded' "$TMP/siteprobe.log" && break; sleep 0.1; done
n=$(grep -c 'inventory reloaded' "$TMP/siteprobe.log" || true)
{ [ "$n" -ge 1 ] && [ "$n" -le 5 ]; } || fail "$n reloads for 5 SIGHUPs"
pass "SIGHUPs during a reload coalesce ($n reloads for 5 signals), and the good inventory is in"

# A rejected inventory with many errors logs the first 100 and says how to see the rest.
python3 - <<'PY'
with open("inv.yml", "w") as f:
    f.write("sites:\n  - {id: bk, name: Bắc Kạn, level: province, devices: [{name: r1, address: 127.0.0.1, role: router}]}\n")
    for d in range(500):
        f.write(f"  - {{id: d{d}, name: D{d}, level: district, parent: bk, colour: red}}\n")
PY
lines0=$(wc -l < "$TMP/siteprobe.log")
rejected0=$(grep -c 'reload rejected' "$TMP/siteprobe.log" || true)
kill -HUP "$SP_PID"
for _ in $(seq 1 100); do
  [ "$(grep -c 'reload rejected' "$TMP/siteprobe.log" || true)" -gt "$rejected0" ] && break
  sleep 0.1
done
tail -n +"$((lines0 + 1))" "$TMP/siteprobe.log" > errors.log
logged=$(grep -c 'invalid inventory' errors.log || true)
[ "$logged" = 100 ] || fail "$logged error lines logged for 500 errors (want 100)"
grep -q 'more inventory errors not logged.*not_logged=400' errors.log || fail "no line saying 400 more were not logged"
"$SP_BIN" check inv.yml 2> check.err && fail "check accepted the bad inventory"
[ "$(grep -c colour check.err)" = 500 ] || fail "check does not list all 500 errors"
pass "500 errors: 100 logged by the daemon, 400 counted, all 500 listed by siteprobe check"
