#!/usr/bin/env bash
# Hostile SNMP agents (tests/integration/hostile_agent.py) cannot crash siteprobe, grow its memory or
# its /metrics without bound, or disturb the other devices:
# - an ifName of "lo" + 30,000 bytes against every pattern kind (include, exclude, uplink; it
#   overflowed the stack of std::regex), a 20 KB invalid-UTF-8 ifAlias and a 50 KB sysDescr;
# - 100,000 rows, and a walk that never ends: the poll fails as too_many_rows at max_interfaces;
# - more varbinds than asked, in a GETBULK or a GET: the poll fails as oversized;
# - an agent that repeats a GETBULK's non-repeaters (the scalars asked with the walk) and cuts the
#   answer short: siteprobe notices, asks for the scalars with a GET instead, and the device is up.
# Every exported value stays valid UTF-8 within its MIB size, and promtool accepts the scrape.
source "$(dirname "$0")/lib.sh"
export MIBS=

AGENT="$(dirname "$0")/hostile_agent.py"
declare -A PORTS
for m in normal longname rows endless fat getspam bulkbug; do
  PORTS[$m]=$(free_port udp)
  python3 "$AGENT" 127.0.0.1 "${PORTS[$m]}" $m &
  CLEANUPS+=("kill $!")
done

cat >"$TMP/inv.yml" <<YAML
auth:
  v2: {version: 2c, community: hostile-secret}
snmp_modules:
  names:
    - {name: if_descr_info, oid: 1.3.6.1.2.1.2.2.1.2, type: info, walk: true, index_label: ifindex}
defaults:
  icmp: {interval: 1s, timeout: 300ms, packets: 1}
  snmp: {auth: v2, interval: 2s, timeout: 500ms, retries: 0, max_repetitions: 50}
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: pinged, address: 127.0.0.1, role: router}
      - {name: normal, address: 127.0.0.1, role: switch, snmp: {port: ${PORTS[normal]}}}
      - {name: excl, address: 127.0.0.1, role: switch, snmp: {port: ${PORTS[longname]}, interfaces_exclude: ["lo.*", "Null.*"]}}
      - {name: incl, address: 127.0.0.1, role: switch, snmp: {port: ${PORTS[longname]}, interfaces_include: ["lo.*", "(a|b)*c"], modules: [system, interfaces, names]}}
      - {name: upl, address: 127.0.0.1, role: switch, snmp: {port: ${PORTS[longname]}, uplink: "(l|o|x)*"}}
      - {name: rows, address: 127.0.0.1, role: switch, snmp: {port: ${PORTS[rows]}}}
      - {name: endless, address: 127.0.0.1, role: switch, snmp: {port: ${PORTS[endless]}, max_interfaces: 300}}
      - {name: fat, address: 127.0.0.1, role: switch, snmp: {port: ${PORTS[fat]}}}
      - {name: getspam, address: 127.0.0.1, role: switch, snmp: {port: ${PORTS[getspam]}, modules: [system]}}
      - {name: bulkbug, address: 127.0.0.1, role: switch, snmp: {port: ${PORTS[bulkbug]}}}
YAML
"$SP_BIN" check "$TMP/inv.yml"
mkdir "$TMP/state"
export STATE_DIRECTORY=$TMP/state  # as systemd's StateDirectory= sets it
# Under ASan, freed memory waits in a quarantine of up to 256 MB by default, which the RSS check
# below would count; a small one keeps use-after-free detection and measures the daemon's memory.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
start_siteprobe "$TMP/inv.yml"

for d in normal excl incl upl bulkbug; do wait_for 'v == 1' siteprobe_snmp_up "device=\"$d\"" 20; done
for d in rows endless; do wait_for 'v >= 1' siteprobe_snmp_errors_total "device=\"$d\",kind=\"too_many_rows\"" 30; done
for d in fat getspam; do wait_for 'v >= 1' siteprobe_snmp_errors_total "device=\"$d\",kind=\"oversized\"" 20; done
# Several polls of each, then one scrape for everything below.
wait_for 'v >= 3' siteprobe_snmp_polls_total 'device="rows"' 30
kill -0 "$SP_PID" || fail "siteprobe died"
pass "long names, 100,000 rows, an endless walk and oversized responses: siteprobe stays up"

scrape >"$TMP/metrics"
SNAPSHOT="$TMP/metrics"
for d in rows endless fat getspam; do
  [ "$(metric siteprobe_snmp_up "device=\"$d\"")" = 0 ] || fail "$d: snmp_up is not 0"
done
[ "$(metric siteprobe_icmp_packets_received_total 'device="pinged"')" != absent ] || fail "ICMP device missing"
wait_for 'v == 1' siteprobe_device_up 'device="pinged"' 5
pass "hostile devices are down with their error kind; the others are up"

python3 - "$TMP/metrics" <<'PY' || fail "exported values"
import re, sys
raw = open(sys.argv[1], "rb").read()
text = raw.decode("utf-8")  # raises on invalid UTF-8
labels = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text)
longest = max(len(v.encode()) for _, v in labels)
assert longest <= 1024, f"a label value of {longest} bytes"
for k, v in labels:
    if k in ("if_name", "if_alias", "sys_descr", "sys_name"):
        assert len(v.encode()) <= 255, f"{k} of {len(v.encode())} bytes"
lines = [l for l in text.splitlines() if not l.startswith("#")]
# Excluded by "lo.*" although the name is 30 KB long; included and an uplink with the same name.
assert not any('device="excl"' in l and 'if_index="2"' in l for l in lines), "excl: lo exported"
assert any('device="incl"' in l and 'if_index="2"' in l for l in lines), "incl: lo missing"
assert not any('device="incl"' in l and 'if_index="1"' in l and "interface_" in l for l in lines), "incl: eth0"
assert any(l.startswith('siteprobe_snmp_interface_uplink{') and 'device="upl"' in l and 'if_index="2"' in l
           and l.endswith(" 1") for l in lines), "upl: lo is not an uplink"
for d in ("rows", "endless", "fat", "getspam"):
    n = sum(1 for l in lines if f'device="{d}"' in l and "interface_" in l)
    assert n == 0, f"{d}: {n} interface series"
# The agent that repeats the non-repeaters: its scalars and both interfaces, all of them right.
bug = [l for l in lines if 'device="bulkbug"' in l]
assert any(l.startswith("siteprobe_snmp_uptime_seconds{") and l.endswith(" 123.45") for l in bug), "bulkbug: uptime"
assert any('sys_descr="hostile agent"' in l for l in bug), "bulkbug: sysDescr"
for i, name in (("1", "eth0"), ("2", "lo")):
    assert any(l.startswith("siteprobe_snmp_interface_oper_status{") and f'if_index="{i}",if_name="{name}"' in l
               for l in bug), f"bulkbug: interface {name}"
print(f"ok: every label value valid UTF-8, the longest {longest} bytes; patterns applied to long names;"
      f" {len(raw)} bytes of /metrics")
assert len(raw) < 1 << 20, "/metrics over 1 MiB"
PY
if command -v promtool >/dev/null; then
  promtool check metrics <"$TMP/metrics" || fail "promtool rejects the scrape"
  pass "promtool accepts the scrape"
fi

rss=$(awk '/VmRSS/ {print $2}' "/proc/$SP_PID/status")
echo "siteprobe RSS: $rss kB"
[ "$rss" -lt 300000 ] || fail "RSS $rss kB"
"$SP_BIN" check "$TMP/inv.yml" | grep -q hostile-secret && fail "check printed the community"
pass "RSS bounded ($rss kB)"
[ -d "$TMP/state/net-snmp/cert_indexes" ] || fail "net-snmp's persistent directory is not under STATE_DIRECTORY"
if grep -v '^ts=' "$TMP/siteprobe.log"; then fail "lines on stderr that are not logfmt (above)"; fi
pass "net-snmp keeps its files under STATE_DIRECTORY; every log line is logfmt"
