#!/usr/bin/env bash
# SIGHUP: a broken inventory keeps the old one probing with its counters and sets
# siteprobe_config_last_reload_successful 0; a valid changed one adds and removes devices while
# unchanged devices keep their counters.
source "$(dirname "$0")/lib.sh"
need_root

write_inv() { small_inventory "$TMP/inv.yml" "$@"; }
write_inv '{name: r1, address: 127.0.0.1, role: router}' '{name: r2, address: 127.0.0.2, role: router}'
start_siteprobe "$TMP/inv.yml"
wait_for 'v >= 4' siteprobe_icmp_packets_received_total 'device="r1"' 10
[ "$(metric siteprobe_config_last_reload_successful)" = 1 ] || fail "first load not successful"

# A broken file: syntax error on line 9.
write_inv '{name: r1, address: 127.0.0.1, role: router}' '{name: r2, address: 127.0.0.2, role: router'
before=$(metric siteprobe_icmp_packets_received_total 'device="r1"')
kill -HUP "$SP_PID"
wait_for 'v == 0' siteprobe_config_last_reload_successful '' 5
grep -q "error=\"$TMP/inv.yml:[0-9]*:[0-9]*: " "$TMP/siteprobe.log" || fail "no file:line:col in the log"
kill -0 "$SP_PID" || fail "daemon died on a bad reload"
wait_for "v >= $before + 4" siteprobe_icmp_packets_received_total 'device="r1"' 10
[ "$(metric siteprobe_device_up 'device="r2"')" = 1 ] || fail "old device r2 gone after a failed reload"
[ "$(metric siteprobe_config_reload_failures_total)" = 1 ] || fail "reload failure not counted"
pass "bad reload: old inventory keeps probing, counters kept, reload_successful 0"

# A valid change: r2 removed, r3 added, r1 unchanged.
write_inv '{name: r1, address: 127.0.0.1, role: router}' '{name: r3, address: 127.0.0.3, role: router}'
before=$(metric siteprobe_icmp_packets_received_total 'device="r1"')
kill -HUP "$SP_PID"
wait_for 'v == 1' siteprobe_config_last_reload_successful '' 5
[ "$(metric siteprobe_device_up 'device="r2"')" = absent ] || fail "removed device r2 still exported"
[ "$(metric siteprobe_icmp_packets_sent_total 'device="r3"')" != absent ] || fail "new device r3 missing"
after=$(metric siteprobe_icmp_packets_received_total 'device="r1"')
ge "$after" "$before" || fail "r1 counter went back from $before to $after"
wait_for 'v == 1' siteprobe_device_up 'device="r3"' 5
wait_for "v >= $before + 4" siteprobe_icmp_packets_received_total 'device="r1"' 10
pass "good reload: r2 removed, r3 added, r1 kept its counters ($before -> $after)"
