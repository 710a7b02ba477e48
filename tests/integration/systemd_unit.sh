#!/usr/bin/env bash
# The shipped unit stays hardened: systemd's own exposure score must be 2.0 or better, and the
# unit must keep the one capability raw ICMP needs and nothing that breaks it.
source "$(dirname "$0")/lib.sh"
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed"; exit 77; }
unit=systemd/siteprobe.service
out=$(systemd-analyze security --offline=true "$unit" 2>&1)
score=$(echo "$out" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
echo "exposure: $score"
[ -n "$score" ] || { echo "$out" | tail; fail "no score"; }
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 2.0 else 1)" "$score" || fail "exposure $score > 2.0"
grep -qx 'AmbientCapabilities=CAP_NET_RAW' "$unit" || fail "CAP_NET_RAW not ambient"
grep -qx 'CapabilityBoundingSet=CAP_NET_RAW' "$unit" || fail "bounding set is not exactly CAP_NET_RAW"
grep -q '^PrivateUsers=yes' "$unit" && fail "PrivateUsers=yes breaks raw ICMP"
grep -q '^ExecReload=/usr/bin/siteprobe check' "$unit" || fail "reload does not check the inventory first"
pass "systemd unit exposure $score <= 2.0"
