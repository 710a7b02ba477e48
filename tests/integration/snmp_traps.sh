#!/usr/bin/env bash
# SNMP trap and inform receiver (probes/snmp_trap.h) against Debian's snmptrap and snmpinform, on
# loopback only: v1, v2c, v3 authPriv traps, a v2c inform and v3 authPriv informs to siteprobe's
# engine (answered: snmpinform exits 0) are counted by kind (standard, vendor, other) per device; an
# unknown source (from 127.0.0.2), a wrong community, a wrong v3 key, a GET and garbage are dropped
# by reason; no secret reaches the log; a linkDown makes an extra ICMP round (the interval is 1 h)
# within 1 s and an extra SNMP poll; a flood of 10,000 v2c traps from one device in about 1 s is
# rate-limited while the loop lag stays under 50 ms and another device's traps all get through.
source "$(dirname "$0")/lib.sh"
need_root
{ command -v snmptrap >/dev/null && command -v snmpinform >/dev/null; } || fail "snmptrap/snmpinform missing (apt-get install snmp)"
export MIBS=  # numeric OIDs only
# net-snmp's tools keep a persistent directory: a private one.
export SNMP_PERSISTENT_DIR="$TMP/snmp-persist" SNMPCONFPATH="$TMP/snmp-conf"
mkdir -p "$SNMP_PERSISTENT_DIR/cert_indexes"

TP=$(free_port udp)
AGENT=$(free_port udp)  # nothing answers there: the extra polls time out, and are counted
cat >"$TMP/inv.yml" <<YAML
defaults:
  icmp: {interval: 1h, timeout: 500ms, packets: 2, spacing: 50ms}  # extra rounds stand out
auth:
  v2: {version: 2c, community: "trapC0mmunity-v2"}
  v1: {version: "1", community: "trapC0mmunity-v1"}
  v3: {version: "3", username: monitor, security_level: authPriv, auth_protocol: SHA-256,
       auth_passphrase: v3AuthSecret99, priv_protocol: AES, priv_passphrase: v3PrivSecret99}
traps:
  listen: "127.0.0.1:$TP"
  max_per_second: 200
  max_per_source: 100
  debounce: 5s
  engine_id: "0x80001f88047369746570726f62652d74657374"
  vendor:
    - {oid: 1.3.6.1.4.1.5596.10.0.42, kind: codec_call_failed, severity: critical}
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: r1, address: 127.0.0.1, role: router, snmp: {auth: v2, port: $AGENT, interval: 60s, timeout: 300ms, retries: 0}}
      - {name: sw, address: 127.0.0.3, role: switch, snmp: {auth: v1, port: $AGENT, interval: 60s, timeout: 300ms, retries: 0}}
      - {name: v3sw, address: 127.0.0.4, role: switch, snmp: {auth: v3, port: $AGENT, interval: 60s, timeout: 300ms, retries: 0}}
YAML
start_siteprobe "$TMP/inv.yml"
R1='site="bk",device="r1"'
SW='site="bk",device="sw"'
V3='site="bk",device="v3sw"'
v3trap() {  # v3trap AUTH_PASSPHRASE [snmptrap options]: a linkDown from 127.0.0.4, engine ID of its own
  local a=$1; shift
  snmptrap -v 3 -u monitor -l authPriv -a SHA-256 -A "$a" -x AES -X v3PrivSecret99 -e 0x80001f8804737731 \
    --clientaddr=127.0.0.4 "$@" "127.0.0.1:$TP" '' 1.3.6.1.6.3.1.1.5.3 1.3.6.1.2.1.2.2.1.1.9 i 9
}
v2trap() { snmptrap -v 2c -c "${C:-trapC0mmunity-v2}" "$@" "127.0.0.1:$TP" '' "$OID" 1.3.6.1.2.1.2.2.1.1.3 i 3; }

# ICMP rounds are 1 h apart on their grid: the rounds counted below are the extra ones.
before_icmp=$(metric siteprobe_icmp_packets_sent_total "$R1")
before_polls=$(metric siteprobe_snmp_polls_total "$R1"); [ "$before_polls" = absent ] && before_polls=0

# v2c linkDown: counted, and an extra ICMP round within 1 s of sending it (snmptrap sends as it
# exits: its start-up, a few hundred ms, is not counted).
OID=1.3.6.1.6.3.1.1.5.3 v2trap
t0=$(date +%s%N)
# A round starts with its first echo request. A scrape of this debug build takes ~300 ms.
while [ "$(metric siteprobe_icmp_packets_sent_total "$R1")" -lt $((before_icmp + 1)) ]; do
  [ $(($(date +%s%N) - t0)) -lt 1000000000 ] || fail "no extra ICMP round within 1 s of a linkDown"
done
pass "an extra ICMP round started $((($(date +%s%N) - t0) / 1000000)) ms after the linkDown was sent (scrapes included)"
# A second linkDown at once, well within the 5 s debounce (on a loaded host the checks below take
# seconds): counted, no second extra round. The first round (both packets answered) ends first.
wait_for "v >= $before_icmp + 2" siteprobe_icmp_packets_received_total "$R1" 2
sent=$(metric siteprobe_icmp_packets_sent_total "$R1")
OID=1.3.6.1.6.3.1.1.5.3 v2trap
wait_for 'v == 2' siteprobe_snmp_traps_total "$R1,kind=\"link_down\"" 2
sleep 1
[ "$(metric siteprobe_icmp_packets_sent_total "$R1")" = "$sent" ] || fail "a second extra round within the debounce"
pass "debounced"
wait_for "v >= $before_polls + 1" siteprobe_snmp_polls_total "$R1" 3
pass "and an extra SNMP poll"
ge "$(metric siteprobe_snmp_last_trap_timestamp_seconds "$R1")" "$(($(date +%s) - 10))" || fail "last trap timestamp"
grep -q 'msg="snmp trap".*site=bk.*device=r1.*kind=link_down.*ifindex=3' "$TMP/siteprobe.log" || fail "no log line for the linkDown"


# v2c inform: answered (snmpinform waits for the Response) and counted.
snmpinform -v 2c -c trapC0mmunity-v2 -t 2 -r 0 "127.0.0.1:$TP" '' 1.3.6.1.6.3.1.1.5.1 || fail "inform not answered"
wait_for 'v == 1' siteprobe_snmp_traps_total "$R1,kind=\"cold_start\"" 2
pass "v2c inform answered and counted"

# v1 linkUp (generic 3) from 127.0.0.1 with agent-addr 127.0.0.3: the switch's.
snmptrap -v 1 -c trapC0mmunity-v1 "127.0.0.1:$TP" 1.3.6.1.4.1.5596.10 127.0.0.3 3 0 '' 1.3.6.1.2.1.2.2.1.1.2 i 2
wait_for 'v == 1' siteprobe_snmp_traps_total "$SW,kind=\"link_up\"" 2
pass "v1 linkUp matched by agent-addr"

# SNMPv3 authPriv (SHA-256, AES) from the v3 switch, twice (the second within the time window).
v3trap v3AuthSecret99
v3trap v3AuthSecret99
wait_for 'v == 2' siteprobe_snmp_traps_total "$V3,kind=\"link_down\"" 2
pass "v3 authPriv traps authenticated with the device's profile"

# Vendor and other kinds.
OID=1.3.6.1.4.1.5596.10.0.42 v2trap
OID=1.3.6.1.4.1.5596.10.0.43 v2trap
wait_for 'v == 1' siteprobe_snmp_traps_total "$R1,kind=\"codec_call_failed\"" 2
wait_for 'v == 1' siteprobe_snmp_traps_total "$R1,kind=\"other\"" 2
pass "vendor kind and other"

# Drops: wrong community, unknown source, a wrong v3 key, a v3 user from a v2c device, a GET, garbage.
C=wrong-community OID=1.3.6.1.6.3.1.1.5.3 v2trap
wait_for 'v == 1' siteprobe_snmp_traps_dropped_total 'reason="community"' 2
OID=1.3.6.1.6.3.1.1.5.3 v2trap --clientaddr=127.0.0.2
wait_for 'v == 1' siteprobe_snmp_traps_dropped_total 'reason="unknown_source"' 2
v3trap wrongAuthSecret99
wait_for 'v == 1' siteprobe_snmp_traps_dropped_total 'reason="auth"' 2
v3trap v3AuthSecret99 --clientaddr=127.0.0.1  # r1 has a v2c profile: no such user
wait_for 'v == 2' siteprobe_snmp_traps_dropped_total 'reason="auth"' 2
[ "$(metric siteprobe_snmp_traps_total "$V3,kind=\"link_down\"")" = 2 ] || fail "a v3 trap with a wrong key was counted"
snmpget -v 2c -c trapC0mmunity-v2 -t 0.3 -r 0 "127.0.0.1:$TP" 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1 || true
wait_for 'v == 1' siteprobe_snmp_traps_dropped_total 'reason="unsupported"' 2
python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"\x30\x03\x02\x01", ("127.0.0.1", int(sys.argv[1])))' "$TP"
wait_for 'v == 1' siteprobe_snmp_traps_dropped_total 'reason="decode"' 2
[ "$(metric siteprobe_snmp_traps_total "$R1,kind=\"link_down\"")" = 2 ] || fail "a dropped trap was counted"
pass "drops by reason: community, unknown_source, auth, unsupported, decode"

# SNMPv3 informs to siteprobe's own engine (traps.engine_id, logged): snmpinform discovers it from
# a Report, then its inform is authenticated, counted and answered (exit 0). Told the engine ID and
# wrong boots/time, it gets a notInTimeWindow Report, resynchronises and is answered too. A wrong
# key, or a discovery from an unknown address, gets no answer (snmpinform times out).
ENGINE=0x80001f88047369746570726f62652d74657374
grep -q "msg=\"listening for SNMP traps\" engine_id=$ENGINE" "$TMP/siteprobe.log" || fail "engine ID not logged"
v3inform() {  # v3inform AUTH_PASSPHRASE SOURCE [snmpinform options]: a coldStart
  local a=$1 src=$2; shift 2
  snmpinform -v 3 -u monitor -l authPriv -a SHA-256 -A "$a" -x AES -X v3PrivSecret99 -t 1 -r 0 \
    --clientaddr="$src" "$@" "127.0.0.1:$TP" '' 1.3.6.1.6.3.1.1.5.1 2>/dev/null
}
auth=$(metric siteprobe_snmp_traps_dropped_total 'reason="auth"')
unknown=$(metric siteprobe_snmp_traps_dropped_total 'reason="unknown_source"')
v3inform v3AuthSecret99 127.0.0.4 || fail "v3 inform not answered"
wait_for 'v == 1' siteprobe_snmp_traps_total "$V3,kind=\"cold_start\"" 2
v3inform v3AuthSecret99 127.0.0.4 -e "$ENGINE" -Z 9,9 || fail "v3 inform with a wrong time not answered"
wait_for 'v == 2' siteprobe_snmp_traps_total "$V3,kind=\"cold_start\"" 2
! v3inform wrongAuthSecret99 127.0.0.4 || fail "v3 inform with a wrong key answered"
wait_for "v == $auth + 1" siteprobe_snmp_traps_dropped_total 'reason="auth"' 2
! v3inform v3AuthSecret99 127.0.0.9 || fail "v3 engine discovery from an unknown address answered"
wait_for "v >= $unknown + 1" siteprobe_snmp_traps_dropped_total 'reason="unknown_source"' 2
[ "$(metric siteprobe_snmp_traps_total "$V3,kind=\"cold_start\"")" = 2 ] || fail "a refused v3 inform was counted"
pass "v3 authPriv informs: discovery, time window, answered; wrong key and unknown source not"

# Flood: 10,000 pre-encoded v2c linkDown traps from r1 in about 1 s, and meanwhile 10 linkUp
# from sw (127.0.0.3), which must all be taken: a flood from one sender leaves the others theirs.
accepted=$(metric siteprobe_snmp_traps_total "$R1,kind=\"link_down\"")
sw_up=$(metric siteprobe_snmp_traps_total "$SW,kind=\"link_up\"")
python3 - "$TP" <<'PY'
import socket, sys, time
def tlv(t, v):
    n = len(v)
    l = bytes([n]) if n < 128 else (bytes([0x81, n]) if n < 256 else bytes([0x82, n >> 8, n & 255]))
    return bytes([t]) + l + v
def oid(s):
    a = [int(x) for x in s.split(".")]
    out = bytearray([a[0] * 40 + a[1]])
    for x in a[2:]:
        b = [x & 127]
        x >>= 7
        while x:
            b.insert(0, (x & 127) | 128); x >>= 7
        out += bytes(b)
    return tlv(0x06, bytes(out))
def trap(community, trap_oid):
    vbs = tlv(0x30, tlv(0x30, oid("1.3.6.1.2.1.1.3.0") + tlv(0x43, b"\x01")) +
              tlv(0x30, oid("1.3.6.1.6.3.1.1.4.1.0") + oid(trap_oid)))
    pdu = tlv(0xA7, tlv(0x02, b"\x01") + tlv(0x02, b"\x00") + tlv(0x02, b"\x00") + vbs)
    return tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, community) + pdu)
msg = trap(b"trapC0mmunity-v2", "1.3.6.1.6.3.1.1.5.3")
other = trap(b"trapC0mmunity-v1", "1.3.6.1.6.3.1.1.5.4")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sw.bind(("127.0.0.3", 0))
start = time.time()
for i in range(10000):
    s.sendto(msg, ("127.0.0.1", int(sys.argv[1])))
    if i % 1000 == 500:
        sw.sendto(other, ("127.0.0.1", int(sys.argv[1])))
    if i % 100 == 99:
        time.sleep(max(0, start + (i + 1) / 10000 - time.time()))
print("flood: 10000 datagrams in %.2f s" % (time.time() - start))
PY
sleep 1.5
snapshot
lag=$(metric siteprobe_loop_lag_seconds)
limited=$(metric siteprobe_snmp_traps_dropped_total 'reason="rate_limited"')
now=$(metric siteprobe_snmp_traps_total "$R1,kind=\"link_down\"")
sw_now=$(metric siteprobe_snmp_traps_total "$SW,kind=\"link_up\"")
unsnap
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.05 else 1)" "$lag" || fail "loop lag $lag s during the flood"
ge "$limited" 7000 || fail "only $limited rate-limited"
python3 -c "import sys; n=float(sys.argv[2])-float(sys.argv[1]); sys.exit(0 if 1 <= n <= 700 else 1)" "$accepted" "$now" ||
  fail "accepted $accepted -> $now during the flood (100/s with a burst of 100 from one source)"
[ "$sw_up" = absent ] && sw_up=0
[ "$((sw_now - sw_up))" = 10 ] || fail "sw's traps during r1's flood: $sw_up -> $sw_now, not all 10 taken"
in_ns curl -fsS "$SP_URL/-/ready" >/dev/null || fail "not ready after the flood"
sent=$(metric siteprobe_icmp_packets_sent_total "$R1")
sleep 4  # past the debounce of the flood's first trap
OID=1.3.6.1.6.3.1.1.5.4 v2trap
wait_for "v >= $sent + 2" siteprobe_icmp_packets_sent_total "$R1" 2
pass "flood: $limited rate-limited, $((${now%.*} - ${accepted%.*})) accepted, loop lag $lag s; all 10 of sw's taken; still probing"

# No secret in the log, and at most 10 trap lines a second.
for s in trapC0mmunity-v2 trapC0mmunity-v1 wrong-community v3AuthSecret99 v3PrivSecret99 wrongAuthSecret99; do
  ! grep -q -- "$s" "$TMP/siteprobe.log" || fail "secret $s in the log"
done
lines=$(grep -c 'msg="snmp trap"' "$TMP/siteprobe.log")
[ "$lines" -lt 100 ] || fail "$lines trap log lines"
grep -q 'msg="snmp trap".*suppressed=[1-9]' "$TMP/siteprobe.log" || fail "no suppressed count in the log"
pass "no secrets in the log; $lines trap lines"
