#!/usr/bin/env bash
# POST /-/reload: 403 without --web.enable-lifecycle; with it, 405 for GET, 200 for a good
# inventory, 500 listing every error for a rejected one (old inventory and counters kept), and
# concurrent requests all answered.
source "$(dirname "$0")/lib.sh"
need_root

write_inv() { small_inventory "$TMP/inv.yml" "$@"; }
code() { curl -s -o "$TMP/body" -w '%{http_code}' "$@"; }

write_inv '{name: r1, address: 127.0.0.1, role: router}'
start_siteprobe "$TMP/inv.yml"
[ "$(code -X POST "$SP_URL/-/reload")" = 403 ] || fail "reload allowed without --web.enable-lifecycle"
grep -q "web.enable-lifecycle" "$TMP/body" || fail "403 body does not name the flag"
grep -q "reloading inventory" "$TMP/siteprobe.log" && fail "a refused request reloaded"
kill -TERM "$SP_PID"; wait "$SP_PID"; SP_PID=""
pass "POST /-/reload is 403 by default"

# start_siteprobe with the flag: lib.sh's helper takes no extra flags, so start by hand.
SP_PORT=$(free_port); SP_URL="http://127.0.0.1:$SP_PORT"
"$SP_BIN" --config "$TMP/inv.yml" --web.listen-address "127.0.0.1:$SP_PORT" --web.enable-lifecycle \
  >>"$TMP/siteprobe.log" 2>&1 &
SP_PID=$!
for _ in $(seq 100); do curl -fsS "$SP_URL/-/ready" >/dev/null 2>&1 && break; sleep 0.1; done
wait_for 'v >= 2' siteprobe_icmp_packets_received_total 'device="r1"' 10

[ "$(code "$SP_URL/-/reload")" = 405 ] || fail "GET /-/reload not 405"
write_inv '{name: r1, address: 127.0.0.1, role: router}' '{name: r2, address: 127.0.0.2, role: router}'
[ "$(code -X POST "$SP_URL/-/reload")" = 200 ] || fail "good reload not 200: $(cat "$TMP/body")"
[ "$(metric siteprobe_icmp_packets_sent_total 'device="r2"')" != absent ] || fail "r2 not added by the reload"
pass "POST /-/reload with a good inventory: 200, device added"

# Two errors, both listed with FILE:LINE:COL.
write_inv '{name: r1, address: 127.0.0.1, role: router}' '{name: r2, address: 127.0.0.300, role: router}' \
  '{name: r3, address: 127.0.0.3, role: routr}'
before=$(metric siteprobe_icmp_packets_received_total 'device="r1"')
[ "$(code -X POST "$SP_URL/-/reload")" = 500 ] || fail "bad reload not 500"
cat "$TMP/body"
[ "$(grep -c "^$TMP/inv.yml:[0-9]*:[0-9]*: " "$TMP/body")" = 2 ] || fail "500 body does not list both errors"
[ "$(metric siteprobe_config_last_reload_successful)" = 0 ] || fail "reload_successful not 0"
wait_for "v >= $before + 2" siteprobe_icmp_packets_received_total 'device="r1"' 10
[ "$(metric siteprobe_device_up 'device="r2"')" != absent ] || fail "old inventory dropped"
pass "POST /-/reload with a broken inventory: 500 with every error, old inventory keeps probing"

# Concurrent requests: all answered, none hangs.
write_inv '{name: r1, address: 127.0.0.1, role: router}'
mkdir "$TMP/c"; pids=()
for i in $(seq 10); do
  curl -s -o /dev/null -w '%{http_code}\n' -m 10 -X POST "$SP_URL/-/reload" >"$TMP/c/$i" & pids+=($!)
done
wait "${pids[@]}"
codes=$(cat "$TMP"/c/* | sort | uniq -c | tr -s ' ')
[ "$(cat "$TMP"/c/* | grep -c '^200$')" = 10 ] || fail "concurrent reloads answered: $codes"
[ "$(metric siteprobe_config_last_reload_successful)" = 1 ] || fail "reload_successful not back to 1"
pass "10 concurrent POST /-/reload: all 200"
