#!/usr/bin/env bash
# systemd's notify protocol, against a real AF_UNIX datagram socket standing in for systemd's:
# READY=1 after start, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around good and bad SIGHUP
# reloads, WATCHDOG=1 every WATCHDOG_USEC/2 and none while the loop is stopped, STOPPING=1 at the end.
source "$(dirname "$0")/lib.sh"
need_root

small_inventory "$TMP/good.yml"
cp "$TMP/good.yml" "$TMP/inv.yml"
msgs=$TMP/notify.log
python3 "$(dirname "$0")/notify_listener.py" "$TMP/notify.sock" "$msgs" &
listener=$!
CLEANUPS+=("kill $listener")
for _ in $(seq 50); do [ -S "$TMP/notify.sock" ] && break; sleep 0.1; done
now() { python3 -c 'import time; print("%.3f" % time.monotonic())'; }
# count_since T REGEX: messages received after monotonic time T that match.
count_since() { awk -v t="$1" '$1 > t' "$msgs" | grep -cE "$2" || true; }
wait_msg() {  # wait_msg T REGEX: until a message after T matches, 10 s at most
  for _ in $(seq 100); do [ "$(count_since "$1" "$2")" -gt 0 ] && return 0; sleep 0.1; done
  cat "$msgs"; fail "no notify message matching '$2' after $1"
}

t0=$(now)
NOTIFY_SOCKET=$TMP/notify.sock WATCHDOG_USEC=1000000 start_siteprobe "$TMP/inv.yml"
wait_msg "$t0" '^[0-9.]+ READY=1\|STATUS=1 sites'
pass "READY=1 with STATUS after start"

t1=$(now)
sleep 2.2
n=$(count_since "$t1" ' WATCHDOG=1$')
{ [ "$n" -ge 3 ] && [ "$n" -le 6 ]; } || fail "$n WATCHDOG=1 in 2.2 s with WATCHDOG_USEC=1s (want 4 or 5)"
pass "WATCHDOG=1 every 0.5 s while probing ($n in 2.2 s)"

# A stopped loop sends nothing: the watchdog would fire.
kill -STOP "$SP_PID"
t2=$(now); sleep 2; t3=$(now)
kill -CONT "$SP_PID"
n=$(awk -v a="$t2" -v b="$t3" '$1 > a + 0.2 && $1 < b' "$msgs" | grep -c WATCHDOG || true)
[ "$n" = 0 ] || fail "$n WATCHDOG=1 while the process was stopped"
wait_msg "$t3" ' WATCHDOG=1$'
pass "no WATCHDOG=1 while the loop is stopped, pings again after"

t4=$(now)
kill -HUP "$SP_PID"
wait_msg "$t4" 'READY=1\|STATUS='
seq=$(awk -v t="$t4" '$1 > t {print $2}' "$msgs" | grep -v WATCHDOG | tr '\n' ' ')
[[ "$seq" =~ ^RELOADING=1\|MONOTONIC_USEC=[0-9]+\ READY=1\|STATUS= ]] || fail "good reload sent: $seq"
pass "good SIGHUP: RELOADING=1|MONOTONIC_USEC then READY=1"

echo 'sites: [' >"$TMP/inv.yml"
t5=$(now)
kill -HUP "$SP_PID"
wait_for 'v == 0' siteprobe_config_last_reload_successful '' 5
wait_msg "$t5" ' READY=1$'
seq=$(awk -v t="$t5" '$1 > t {print $2}' "$msgs" | grep -v WATCHDOG | tr '\n' ' ')
[[ "$seq" =~ ^RELOADING=1\|MONOTONIC_USEC=[0-9]+\ READY=1\ $ ]] || fail "bad reload sent: $seq"
pass "rejected SIGHUP: RELOADING=1 then READY=1 (still serving the old inventory)"

t6=$(now)
kill -TERM "$SP_PID"
wait "$SP_PID" || fail "siteprobe exited non-zero"
SP_PID=""
wait_msg "$t6" ' STOPPING=1$'
pass "STOPPING=1 at SIGTERM"

# WATCHDOG_PID names another process: not ours to ping for.
t7=$(now)
cp "$TMP/good.yml" "$TMP/inv.yml"
NOTIFY_SOCKET=$TMP/notify.sock WATCHDOG_USEC=200000 WATCHDOG_PID=1 start_siteprobe "$TMP/inv.yml"
sleep 1
[ "$(count_since "$t7" WATCHDOG)" = 0 ] || fail "pinged for WATCHDOG_PID=1"
pass "no WATCHDOG=1 when WATCHDOG_PID is another process"
