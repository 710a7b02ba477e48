#!/usr/bin/env bash
# A crash writes no core holding the SNMP secrets (issue #20, item 5): siteprobe marks itself
# undumpable before it reads the inventory. With cores enabled (ulimit -c unlimited, core_pattern
# pointed into the test's directory and restored on exit), a control process killed with SIGSEGV
# must write a core (else the test cannot see cores: skip 77); siteprobe, polling SNMP with a
# planted community and v3 passphrases, killed the same way must write none, or one without them.
source "$(dirname "$0")/lib.sh"
need_root
ulimit -c unlimited 2>/dev/null || { echo "SKIP: cannot raise the core size limit"; exit 77; }
CORES=$TMP/cores
mkdir -p "$CORES"
pattern=/proc/sys/kernel/core_pattern
OLD_PATTERN=$(cat "$pattern" 2>/dev/null || true)
restore_pattern() { printf '%s\n' "$OLD_PATTERN" >"$pattern"; }
if [ -n "$OLD_PATTERN" ] && printf '%s\n' "$CORES/core.%e.%p" 2>/dev/null >"$pattern"; then
  CLEANUPS+=(restore_pattern)
fi
echo "core_pattern: $(cat "$pattern" 2>/dev/null || echo unreadable)"

# kill_segv CMD...: runs CMD in $CORES (where a relative core_pattern writes), kills it with SIGSEGV.
kill_segv() {
  (cd "$CORES" && exec "$@") >>"$TMP/siteprobe.log" 2>&1 &
  local pid=$!
  sleep 0.3
  kill -SEGV $pid
  wait $pid || true
}
kill_segv sleep 30
ls "$CORES"/* >/dev/null 2>&1 ||
  { echo "SKIP: a control process killed with SIGSEGV wrote no core (core_pattern '$OLD_PATTERN' cannot be changed here)"; exit 77; }
rm -f "$CORES"/*
pass "control: sleep killed with SIGSEGV writes a core"

COMMUNITY=planted-community-7f3a AUTH=planted-authpass-9b1c PRIV=planted-privpass-2d4e
cat >"$TMP/inv.yml" <<YAML
defaults:
  icmp: {interval: 1s, timeout: 300ms, packets: 2, spacing: 50ms}
  snmp: {port: 1161, interval: 1s, timeout: 200ms, retries: 0}
auth:
  v2: {version: 2c, community: $COMMUNITY}
  v3: {version: "3", username: noc, security_level: authPriv, auth_protocol: SHA-256, auth_passphrase: $AUTH,
       priv_protocol: AES, priv_passphrase: $PRIV}
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: v2, address: 127.0.0.1, role: router, snmp: {auth: v2}}
      - {name: v3, address: 127.0.0.1, role: switch, snmp: {auth: v3}}
YAML
start_siteprobe "$TMP/inv.yml"
# SNMP sessions are open (no agent answers; the polls time out): the secrets are in net-snmp's memory too.
wait_for 'v >= 2' siteprobe_snmp_polls_total 'device="v3"' 15
wait_for 'v >= 2' siteprobe_snmp_polls_total 'device="v2"' 15
kill -SEGV "$SP_PID"
rc=0; wait "$SP_PID" || rc=$?
SP_PID=""
[ $rc -ne 0 ] || fail "siteprobe survived SIGSEGV"
found=0
for core in "$CORES"/*; do
  [ -f "$core" ] || continue
  n=$(strings -a "$core" | grep -cE "$COMMUNITY|$AUTH|$PRIV" || true)
  echo "core $(basename "$core"): $(stat -c %s "$core") bytes, $n planted secrets"
  found=$((found + n))
done
[ "$found" = 0 ] || fail "the core holds $found copies of the planted secrets"
pass "siteprobe killed with SIGSEGV (exit $rc): no core with a secret ($(find "$CORES" -type f | wc -l) cores)"
