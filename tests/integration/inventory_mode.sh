#!/usr/bin/env bash
# `siteprobe check`, daemon start and reload warn when SNMP secrets are written inline in an
# inventory every local user can read (issue #20, item 9), naming the fix and never the secret;
# no warning for mode 0640, nor for secrets read from *_file.
source "$(dirname "$0")/lib.sh"
SECRET=planted-community-5e6f
small_inventory "$TMP/inv.yml" '{name: r1, address: 127.0.0.1, role: router, snmp: {auth: ro, port: 1161}}'
sed -i "1i auth:\n  ro: {version: 2c, community: $SECRET}" "$TMP/inv.yml"
echo "$SECRET" >"$TMP/community"
sed "s/community: $SECRET/community_file: community/" "$TMP/inv.yml" >"$TMP/from-file.yml"

# check_warns MODE FILE yes|no
check_warns() {
  chmod "$1" "$2"
  "$SP_BIN" check "$2" >"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err"; fail "check failed on $2"; }
  ! grep -q "$SECRET" "$TMP/out" "$TMP/err" || fail "check printed the secret"
  if [ "$3" = yes ]; then
    grep -q "warning: SNMP secrets written inline (auth ro) in a file every local user can read (mode $1); fix: chgrp siteprobe $2 && chmod 640 $2" "$TMP/err" ||
      { cat "$TMP/err"; fail "no warning for mode $1"; }
  else
    [ ! -s "$TMP/err" ] || { cat "$TMP/err"; fail "unexpected warning for $2, mode $1"; }
  fi
}
check_warns 0644 "$TMP/inv.yml" yes
check_warns 0604 "$TMP/inv.yml" yes
check_warns 0640 "$TMP/inv.yml" no
check_warns 0644 "$TMP/from-file.yml" no
pass "check warns about inline secrets at modes 0644 and 0604, not at 0640 nor for community_file"

[ "$(id -u)" = 0 ] || { echo "SKIP: the daemon part needs root (raw ICMP)"; exit 77; }
# log_count PATTERN N: waits up to 10 s until the log has N lines matching PATTERN.
log_count() {
  for _ in $(seq 1 40); do
    [ "$(grep -c "$1" "$TMP/siteprobe.log")" = "$2" ] && return 0
    sleep 0.25
  done
  fail "wanted $2 log lines matching '$1', got $(grep -c "$1" "$TMP/siteprobe.log")"
}
warned='level=warn msg=".*warning: SNMP secrets written inline'
chmod 0644 "$TMP/inv.yml"
start_siteprobe "$TMP/inv.yml"
log_count "$warned" 1
chmod 0640 "$TMP/inv.yml"
kill -HUP "$SP_PID"
log_count 'msg="inventory reloaded"' 1
log_count "$warned" 1
chmod 0644 "$TMP/inv.yml"
kill -HUP "$SP_PID"
log_count 'msg="inventory reloaded"' 2
log_count "$warned" 2
! grep -q "$SECRET" "$TMP/siteprobe.log" || fail "the log holds the secret"
pass "the daemon logs the warning at start and reload, not after chmod 640, never the secret"
