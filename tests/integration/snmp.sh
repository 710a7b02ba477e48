#!/usr/bin/env bash
# SNMP poller against a real snmpd (Debian) in a namespace of the test's own, on its loopback:
# v1, v2c and v3 (authNoPriv SHA, authPriv SHA-256/AES) return what snmpwalk returns for 40+
# interfaces and the system group; a 32-bit counter that wraps on every poll (snmpd `pass` script)
# stays monotonic; answering agents keep their session between polls; wrong community / password /
# user are counted errors; killing and restarting snmpd gives timeouts, then recovery and one
# reboot; a misbehaving agent (garbage, truncated PDUs, OIDs that do not increase) is counted and
# never stops the other polls.
source "$(dirname "$0")/lib.sh"
need_root
need_netns
{ command -v snmpd >/dev/null && command -v snmpwalk >/dev/null; } || fail "snmpd/snmpwalk missing (apt-get install snmpd snmp)"
export MIBS=  # numeric OIDs only; Debian ships no IETF MIB files

NS=spsnmp$$
ip netns add $NS; CLEANUPS+=("ip netns del $NS")
ip -n $NS link set lo up
# 40 interfaces (20 veth pairs) with names, UTF-8 aliases, some down.
for i in $(seq 0 19); do
  ip -n "$NS" link add "dum$i" type veth peer name "peer$i"
  ip -n "$NS" link set "dum$i" alias "Đường lên xã $i"
  [ $((i % 3)) = 0 ] || ip -n "$NS" link set "dum$i" up
  [ $((i % 2)) = 0 ] || ip -n "$NS" link set "peer$i" up
done
WRAP_IDX=$(ip -n $NS -o link show dum0 | cut -d: -f1)

# The wrapping counter: ifInOctets of dum0 grows by 1,200,000,000 per GETNEXT (mod 2^32), so it
# wraps every 3.6 polls; 1.2e9 bytes per 2 s poll is still possible on the 4.29 Gbit/s ifSpeed of a
# veth (larger jumps count as a counter reset, see docs/metrics.md).
cat >"$TMP/wrap.sh" <<SH
#!/bin/sh
base=.1.3.6.1.2.1.2.2.1.10
f=$TMP/wrap.state
v=\$(cat \$f 2>/dev/null || echo 4000000000)
case "\$1 \$2" in
  "-g \$base.$WRAP_IDX") echo \$base.$WRAP_IDX; echo counter; echo \$v ;;
  "-n \$base"|"-n \$base.0") v=\$(( (v + 1200000000) % 4294967296 )); echo \$v > \$f; echo \$base.$WRAP_IDX; echo counter; echo \$v ;;
esac
SH
chmod +x "$TMP/wrap.sh"

cat >"$TMP/snmpd.conf" <<CONF
rocommunity public 127.0.0.1
createUser authsha SHA "authpass123"
createUser privsha256 SHA-256 "authpass123" AES "privpass123"
rouser authsha auth
rouser privsha256 priv
sysName Tỉnh-Bắc-Kạn
sysContact noc@bac-kan.example
pass .1.3.6.1.2.1.2.2.1.10 /bin/sh $TMP/wrap.sh
CONF
SNMPD_PID=""
start_snmpd() {
  ip netns exec $NS env SNMP_PERSISTENT_DIR="$TMP/persist" snmpd -f -C -c "$TMP/snmpd.conf" -M /nonexistent \
    -Lf "$TMP/snmpd.log" udp:127.0.0.1:1161 &
  SNMPD_PID=$!
  for _ in $(seq 1 50); do
    ip netns exec $NS snmpget -v2c -c public -t 0.2 -r 0 127.0.0.1:1161 .1.3.6.1.2.1.1.3.0 >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "snmpd did not start"
}
# shellcheck disable=SC2016 # expanded when the cleanup runs: the pid of the snmpd running then
CLEANUPS+=('[ -n "$SNMPD_PID" ] && kill $SNMPD_PID && wait $SNMPD_PID')
start_snmpd
for m in garbage truncated stuck; do
  port=$((1200 + ${#m}))
  ip netns exec $NS python3 "$(dirname "$0")/bad_agent.py" $port $m &
  CLEANUPS+=("kill $!")
done

cat >"$TMP/inv.yml" <<'YAML'
auth:
  v1: {version: "1", community: public}
  v2: {version: 2c, community_file: community}
  v3a: {version: "3", username: authsha, security_level: authNoPriv, auth_protocol: SHA, auth_passphrase_file: authpass}
  v3p: {version: "3", username: privsha256, security_level: authPriv, auth_protocol: SHA-256,
        auth_passphrase_file: authpass, priv_protocol: AES, priv_passphrase: privpass123}
  wrongcomm: {version: 2c, community: not-the-community}
  wrongpass: {version: "3", username: authsha, security_level: authNoPriv, auth_passphrase: wrong-password}
  nouser: {version: "3", username: nobody, security_level: authNoPriv, auth_passphrase: authpass123}
snmp_modules:
  host:
    - {name: la_config, oid: 1.3.6.1.4.1.2021.10.1.4, type: gauge, walk: true, index_label: la}
    - {name: la_names_info, oid: 1.3.6.1.4.1.2021.10.1.2, type: info, walk: true, index_label: la}
    - {name: hr_system_num_users, oid: 1.3.6.1.2.1.25.1.5.0, type: gauge}
    - {name: sys_contact_info, oid: 1.3.6.1.2.1.1.4.0, type: info}
defaults:
  icmp: {interval: 1s, timeout: 300ms, packets: 1}
  snmp: {port: 1161, interval: 2s, timeout: 300ms, retries: 1, max_repetitions: 7}
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: v1, address: 127.0.0.1, role: router, snmp: {auth: v1}}
      - {name: v2, address: 127.0.0.1, role: router, snmp: {auth: v2, uplink: "dum1", modules: [system, interfaces, host]}}
      - {name: v3a, address: 127.0.0.1, role: switch, snmp: {auth: v3a, interfaces_exclude: ["dum[0-9]", "peer.*"]}}
      - {name: v3p, address: 127.0.0.1, role: server, snmp: {auth: v3p, interfaces_include: ["dum1.*"]}}
      - {name: wrongcomm, address: 127.0.0.1, role: other, snmp: {auth: wrongcomm}}
      - {name: wrongpass, address: 127.0.0.1, role: other, snmp: {auth: wrongpass}}
      - {name: nouser, address: 127.0.0.1, role: other, snmp: {auth: nouser}}
      - {name: garbage, address: 127.0.0.1, role: other, snmp: {auth: v2, port: 1207}}
      - {name: truncated, address: 127.0.0.1, role: other, snmp: {auth: v2, port: 1209}}
      - {name: stuck, address: 127.0.0.1, role: other, snmp: {auth: v2, port: 1205, modules: [interfaces]}}
YAML
printf 'public\n' >"$TMP/community"; printf 'authpass123\n' >"$TMP/authpass"
out=$("$SP_BIN" check "$TMP/inv.yml")
echo "$out"
echo "$out" | grep -q "10 snmp" || fail "check does not count the SNMP devices"
if echo "$out" | grep -Eq "public|authpass123|privpass123|wrong-password"; then fail "check printed a secret"; fi

SP_NETNS=$NS
start_siteprobe "$TMP/inv.yml"
for d in v1 v2 v3a v3p; do wait_for 'v == 1' siteprobe_snmp_up "device=\"$d\"" 15; done
wait_for 'v >= 2' siteprobe_snmp_polls_total 'device="v3p"' 15
pass "v1, v2c, v3 authNoPriv SHA and authPriv SHA-256/AES are up"
# Sessions kept between polls (k) never outnumber the devices up (ups), in one scrape.
kept_at_most_up() {
  SNAPSHOT=$TMP/snap.txt
  scrape >"$SNAPSHOT"
  k=$(metric siteprobe_snmp_sessions_kept)
  ups=$(awk '/^siteprobe_snmp_up\{/ { n += $2 } END { print n }' "$SNAPSHOT")
  unset SNAPSHOT
  [ "$k" -le "$ups" ] || fail "$k SNMP sessions kept, $ups devices up"
}
# A poll that succeeded leaves its session (socket) to the device's next poll; a device whose last
# poll failed (wrong credentials, a bad agent) keeps none, so never more are kept than are up.
wait_for 'v >= 4' siteprobe_snmp_sessions_kept '' 15
for _ in 1 2 3 4 5; do
  kept_at_most_up
  sleep 0.5
done
pass "answering agents' sessions are kept between polls ($k kept, $ups devices up)"
# A kept socket takes datagrams from its agent only: garbage sent to every UDP port siteprobe holds,
# from another address, is dropped by the kernel, not parsed at the next poll (the decode errors of
# v1..v3p are checked below).
mapfile -t ports < <(in_ns ss -Hunap | awk -v pid="pid=$SP_PID," '$0 ~ pid { n = split($4, a, ":"); print a[n] }' | sort -u)
[ "${#ports[@]}" -gt 0 ] || fail "no UDP socket of siteprobe found"
in_ns python3 - "${ports[@]}" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.2", 0))
for port in sys.argv[1:]:
    for _ in range(3):
        s.sendto(b"\x30\x03\x02\x01\x01 forged", ("127.0.0.1", int(port)))
PY
sleep 3

# Every value equals what snmpwalk returns, for every interface.
walk() { ip netns exec $NS snmpwalk -v2c -c public -On -Oe -Oq -Ot 127.0.0.1:1161 "$1"; }
walk .1.3.6.1.2.1.31.1.1.1.1 >"$TMP/ifname"; walk .1.3.6.1.2.1.31.1.1.1.18 >"$TMP/ifalias"
walk .1.3.6.1.2.1.2.2.1.8 >"$TMP/oper"; walk .1.3.6.1.2.1.2.2.1.7 >"$TMP/admin"
walk .1.3.6.1.2.1.31.1.1.1.15 >"$TMP/speed"; ip netns exec $NS snmpget -v2c -c public -On -Oq -Ox 127.0.0.1:1161 .1.3.6.1.2.1.1.5.0 >"$TMP/sysname"
walk .1.3.6.1.4.1.2021.10.1.4 >"$TMP/laconfig"; walk .1.3.6.1.4.1.2021.10.1.2 >"$TMP/lanames"
walk .1.3.6.1.2.1.25.1.5.0 >"$TMP/users"
snapshot
python3 - "$TMP" "$SNAPSHOT" <<'PY' || fail "values differ from snmpwalk"
import re, sys
tmp, snap = sys.argv[1], sys.argv[2]
def walk(name):
    out = {}
    for line in open(f"{tmp}/{name}", encoding="utf-8", errors="replace"):
        oid, _, val = line.strip().partition(" ")
        out[oid.rsplit(".", 1)[1]] = val.strip().strip('"')
    return out
names, aliases, oper, admin, speed = (walk(n) for n in ("ifname", "ifalias", "oper", "admin", "speed"))
series = {}
for line in open(snap, encoding="utf-8"):
    m = re.match(r'(siteprobe_snmp_\w+)\{(.*)\} (\S+)$', line)
    if m:
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        series.setdefault(m.group(1), []).append((labels, float(m.group(3))))
def get(metric, **want):
    hits = [v for l, v in series.get(metric, []) if all(l.get(k) == x for k, x in want.items())]
    return hits
errors = 0
def check(cond, what):
    global errors
    if not cond:
        errors += 1
        print("MISMATCH:", what)
for idx, name in names.items():
    rows = [l for l, v in series["siteprobe_snmp_interface_oper_status"] if l["device"] == "v2" and l["if_index"] == idx]
    check(len(rows) == 1, f"v2 ifIndex {idx} exported {len(rows)} times")
    if not rows: continue
    check(rows[0]["if_name"] == name, f"ifName {idx}: {rows[0]['if_name']} != {name}")
    check(rows[0]["if_alias"] == aliases.get(idx, ""), f"ifAlias {idx}: {rows[0]['if_alias']!r} != {aliases.get(idx)!r}")
    check(get("siteprobe_snmp_interface_oper_status", device="v2", if_index=idx) == [float(oper[idx])], f"oper {idx}")
    check(get("siteprobe_snmp_interface_admin_status", device="v2", if_index=idx) == [float(admin[idx])], f"admin {idx}")
    check(get("siteprobe_snmp_interface_speed_bytes_per_second", device="v2", if_index=idx) in ([float(speed[idx]) * 1e6 / 8], [0.0] if speed[idx] == "0" else []), f"speed {idx}")
    check(get("siteprobe_snmp_interface_uplink", device="v2", if_index=idx) == [1.0 if name == "dum1" else 0.0], f"uplink {idx}")
    for d in ("v1", "v2", "v3a"):
        n = len(get("siteprobe_snmp_interface_oper_status", device=d, if_index=idx))
        expect = 0 if d == "v3a" and re.fullmatch(r"dum[0-9]|peer.*", name) else 1
        check(n == expect, f"{d} ifIndex {idx} ({name}) exported {n} times, want {expect}")
    n = len(get("siteprobe_snmp_interface_oper_status", device="v3p", if_index=idx))
    check(n == (1 if re.fullmatch(r"dum1.*", name) else 0), f"v3p include filter on {name}")
check(len(names) >= 41, f"only {len(names)} interfaces walked")
sysname = bytes.fromhex("".join(open(f"{tmp}/sysname").read().split()[1:]).replace('"', "")).decode()
for d in ("v1", "v2", "v3a", "v3p"):
    check([l["sys_name"] for l, _ in series["siteprobe_snmp_device_info"] if l["device"] == d] == [sysname], f"{d} sysName")
check(sysname == "Tỉnh-Bắc-Kạn", f"UTF-8 sysName {sysname!r}")
hr = walk("laconfig")
for idx, val in hr.items():
    check(get("siteprobe_snmp_la_config", device="v2", la=idx) == [float(val)], f"laConfig {idx} (a number sent as text)")
for idx, val in walk("lanames").items():
    check(get("siteprobe_snmp_la_names_info", device="v2", la=idx, value=val) == [1.0], f"laNames {idx}")
check(len(hr) == 3 and len(series.get("siteprobe_snmp_la_config", [])) == 3, "custom walk rows")
users = walk("users")["0"]
check(get("siteprobe_snmp_hr_system_num_users", device="v2") == [float(users)], "custom scalar")
check(len([l for l, _ in series.get("siteprobe_snmp_sys_contact_info", []) if l.get("value") == "noc@bac-kan.example"]) == 1, "custom info")
print(f"{len(names)} interfaces, {len(hr)} custom rows compared; {errors} mismatches")
sys.exit(1 if errors else 0)
PY
unsnap
pass "interfaces (names, UTF-8 aliases, status, uplink, include/exclude), system group and custom objects equal snmpwalk"

# The status page's site view shows each device's uplinks as the agent reports them, an agent that
# does not answer as such, and an uplink going down and up as a change with its interface's name.
site_view() {  # $1: python condition on d (device name -> its "snmp" object) and live (live.json)
  for _ in $(seq 60); do
    in_ns curl -fsS "$SP_URL/status/site.json?id=bk" >"$TMP/site.json" && in_ns curl -fsS "$SP_URL/status/live.json" >"$TMP/live.json" &&
      python3 -c "import json,sys; d={x['name']: x.get('snmp') for x in json.load(open('$TMP/site.json'))['devices']}; live=json.load(open('$TMP/live.json')); sys.exit(0 if ($1) else 1)" && return 0
    sleep 0.25
  done
  fail "status site view: want $1, have $(cat "$TMP/site.json") $(grep -o '"changes".*' "$TMP/live.json" | head -c 600)"
}
site_view "[u['name'] for u in d['v2']['uplinks']] == ['dum1'] and d['v2']['uplinks'][0]['oper'] == 1 and d['v2']['error'] == '' and d['v1']['uplinks'] == [] and d['wrongcomm']['error'] == 'timeout'"
ip -n $NS link set dum1 down
site_view "d['v2']['uplinks'][0]['oper'] == 2 and any(c['why'] == 'why.uplink_down' and c['arg'] == 'dum1' and c['device'] == 'v2' for c in live['changes'])"
ip -n $NS link set dum1 up
site_view "d['v2']['uplinks'][0]['oper'] == 1 and any(c['why'] == 'why.uplink_up' and c['arg'] == 'dum1' for c in live['changes'])"
pass "status page: v2's uplink dum1 as snmpd reports it, down and up again as changes; a wrong community shows 'timeout'"

# 32-bit wrap: the agent's counter drops every few polls; ours grows 1.2e9 per poll.
wait_for 'v >= 3' siteprobe_snmp_polls_total 'device="v1"' 15
snapshot; b0=$(metric siteprobe_snmp_interface_received_bytes_total "device=\"v1\",if_name=\"dum0\""); p0=$(metric siteprobe_snmp_polls_total 'device="v1"'); unsnap
wait_for "v >= $p0 + 4" siteprobe_snmp_polls_total 'device="v1"' 15
snapshot; b1=$(metric siteprobe_snmp_interface_received_bytes_total "device=\"v1\",if_name=\"dum0\""); p1=$(metric siteprobe_snmp_polls_total 'device="v1"'); unsnap
# Each GETNEXT the agent answers adds 1.2e9 (mod 2^32). A retry after a timeout on a loaded host
# is one more GETNEXT, so the sum is a whole number of steps, at least one per poll, not exactly one.
python3 -c "import sys; b0,b1,p0,p1=map(float,sys.argv[1:]); k=(b1-b0)/1.2e9; print('steps', k, 'polls', p1-p0); sys.exit(0 if k == int(k) and k >= p1 - p0 >= 4 and b1 - b0 > 2**32 else 1)" "$b0" "$b1" "$p0" "$p1" \
  || fail "wrapped counter not monotonic at 1.2e9 per GETNEXT"
[ "$(metric siteprobe_snmp_interface_high_capacity 'device="v1",if_name="dum0"')" = 0 ] || fail "v1 should use 32-bit counters"
[ "$(metric siteprobe_snmp_interface_high_capacity 'device="v2",if_name="dum0"')" = 1 ] || fail "v2c should use HC counters"
pass "a 32-bit counter that wraps stays monotonic (1.2e9 per poll over 4+ polls, at least one wrap)"

wait_for 'v >= 2' siteprobe_snmp_errors_total 'device="wrongcomm",kind="timeout"' 15
wait_for 'v >= 2' siteprobe_snmp_errors_total 'device="wrongpass",kind="auth"' 15
wait_for 'v >= 2' siteprobe_snmp_errors_total 'device="nouser",kind="auth"' 15
for d in wrongcomm wrongpass nouser; do [ "$(metric siteprobe_snmp_up "device=\"$d\"")" = 0 ] || fail "$d up"; done
pass "wrong community -> timeout, wrong v3 password and unknown user -> auth errors"

wait_for 'v >= 2' siteprobe_snmp_errors_total 'device="garbage",kind="decode"' 15
wait_for 'v >= 2' siteprobe_snmp_errors_total 'device="truncated",kind="decode"' 15
wait_for 'v >= 2' siteprobe_snmp_errors_total 'device="stuck",kind="not_increasing"' 15
for d in v1 v2 v3a v3p; do v=$(metric siteprobe_snmp_errors_total "device=\"$d\",kind=\"decode\""); [ "$v" = absent ] || [ "$v" = 0 ] || { scrape | grep "siteprobe_snmp_errors_total{.*device=\"$d\"" >&2; fail "$d decode errors"; }; done
for d in garbage truncated stuck; do [ "$(metric siteprobe_snmp_up "device=\"$d\"")" = 0 ] || [ $d = stuck ] || fail "$d up"; done
if grep -Eq "authpass123|privpass123|wrong-password|not-the-community" "$TMP/siteprobe.log"; then fail "a secret was logged"; fi
pass "garbage, truncated and non-increasing replies are counted errors; no secret in the log"

# Agent restart: timeouts while it is gone, then recovery (v3 re-syncs engine boots) and one reboot.
kill $SNMPD_PID; wait $SNMPD_PID 2>/dev/null || true
t0=$(metric siteprobe_snmp_errors_total 'device="v3p",kind="timeout"')
[ "$t0" != absent ] || t0=0  # error kinds have a series from their first occurrence
wait_for 'v == 0' siteprobe_snmp_up 'device="v3p"' 15
wait_for "v > $t0" siteprobe_snmp_errors_total 'device="v3p",kind="timeout"' 15
# A failed poll closes its session: only the agents still answering (bad_agent.py's `stuck`) keep one.
for d in v1 v2 v3a; do wait_for 'v == 0' siteprobe_snmp_up "device=\"$d\"" 15; done
sleep 1
kept_at_most_up
[ "$(metric siteprobe_snmp_device_reboots_total 'device="v2"')" = 0 ] || fail "reboot before restart"
# v3 engine discovery is asynchronous: a silent agent must not block the loop (net-snmp's own
# probe would wait timeout * (retries + 1) inside the send).
lag=0
for _ in $(seq 1 12); do
  l=$(metric siteprobe_loop_lag_seconds); lag=$(python3 -c "import sys; print(max(map(float, sys.argv[1:])))" "$lag" "$l")
  sleep 0.5
done
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.25 else 1)" "$lag" || fail "loop lag up to $lag s while v3 agents are silent"
pass "silent v3 agents do not block the loop (max lag $lag s over 6 s)"
sleep 1
start_snmpd
for d in v1 v2 v3a v3p; do
  wait_for 'v == 1' siteprobe_snmp_up "device=\"$d\"" 15
  wait_for 'v == 1' siteprobe_snmp_device_reboots_total "device=\"$d\"" 15
done
[ "$(metric siteprobe_snmp_up 'device="wrongpass"')" = 0 ] || fail "wrong password up after restart"
kill -0 "$SP_PID" || fail "siteprobe died"
pass "snmpd killed: timeouts, down; restarted: up again (v3 too), 1 reboot counted per device"

# A reload closes the kept sessions: a community changed in its file is used from the next poll.
printf 'not-the-community\n' >"$TMP/community"
kill -HUP "$SP_PID"
wait_for 'v == 0' siteprobe_snmp_up 'device="v2"' 15
printf 'public\n' >"$TMP/community"
kill -HUP "$SP_PID"
wait_for 'v == 1' siteprobe_snmp_up 'device="v2"' 15
pass "a reload with a new community closes v2's kept session: down, then up with the right one"

# Polls beyond global.snmp_max_inflight wait for a slot, and the two load gauges say so: with the
# agent gone every poll waits out its timeouts, so one slot for ten devices builds a queue.
[ "$(metric siteprobe_snmp_polls_waiting)" = 0 ] || fail "polls waiting under the default cap"
kill $SNMPD_PID; wait $SNMPD_PID 2>/dev/null || true; SNMPD_PID=""
sed -i '1i global: {snmp_max_inflight: 1}' "$TMP/inv.yml"
kill -HUP "$SP_PID"
wait_for 'v >= 2' siteprobe_snmp_polls_waiting '' 15
in_flight=$(metric siteprobe_snmp_polls_in_flight)
[ "$in_flight" = 1 ] || fail "polls in flight $in_flight with snmp_max_inflight 1"
pass "snmp_max_inflight 1, agent gone: 1 poll in flight, $(metric siteprobe_snmp_polls_waiting) waiting"
# Every line siteprobe wrote is logfmt: net-snmp's own messages ("Authentication failed for ...")
# are not let through to stderr.
if grep -v '^ts=' "$TMP/siteprobe.log"; then fail "lines in the log that are not logfmt (above)"; fi
pass "every log line is logfmt"
