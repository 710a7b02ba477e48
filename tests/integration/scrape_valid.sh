#!/usr/bin/env bash
# The scrape is always valid: a maximal inventory (four custom levels, free labels and names full
# of quotes, backslashes and Vietnamese, every probe type and option: ICMP over IPv4, IPv6 and a DNS
# name, SNMP v1/v2c/v3 against a real snmpd with interfaces and custom gauge/counter/info objects,
# scalars and walks, SIP over UDP and TCP against a responder whose reason phrase is not UTF-8,
# H.323 and TCP checks, readiness) is loaded, probed for a few rounds, and every scrape must pass
# `promtool check metrics` with one HELP and TYPE per family, no duplicate series and no duplicate
# label name in a series. A reload to a smaller inventory must leave a valid scrape too.
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || fail "promtool missing (apt-get install prometheus)"
command -v snmpd >/dev/null || fail "snmpd missing (apt-get install snmpd)"

SNMP_PORT=$(free_port udp)
cat >"$TMP/snmpd.conf" <<CONF
rocommunity public 127.0.0.1
createUser maxuser SHA "authpass123" AES "privpass123"
rouser maxuser priv
sysName "quoted \\ name"
CONF
# Both loopbacks: "localhost" (the mcu) resolves to ::1 first on some hosts (a fresh Debian root).
snmpd -f -C -c "$TMP/snmpd.conf" -M /nonexistent -Lf "$TMP/snmpd.log" \
  "udp:127.0.0.1:$SNMP_PORT" "udp6:[::1]:$SNMP_PORT" &
CLEANUPS+=("kill $!")

SIP_PORT=$(free_port)
TCP_PORT=$(free_port)
cat >"$TMP/peers.py" <<'PY'
import re, socket, sys, threading
sip_port, tcp_port = int(sys.argv[1]), int(sys.argv[2])
def answer(req):
    h = lambda n: re.search(r"^" + n + r": (.*)$", req, re.M | re.I).group(1).strip()
    return ("SIP/2.0 200 Xin ch\xe0o \"ok\" \\\r\nVia: %s\r\nFrom: %s\r\nTo: %s;tag=x\r\nCall-ID: %s\r\n"
            "CSeq: %s\r\nContent-Length: 0\r\n\r\n" % (h("Via"), h("From"), h("To"), h("Call-ID"),
            h("CSeq"))).encode("latin-1")
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", sip_port))
    while True:
        d, peer = s.recvfrom(65535)
        s.sendto(answer(d.decode("latin-1")), peer)
def tcp(port, sip):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", port))
    l.listen(64)
    while True:
        c, _ = l.accept()
        if sip:
            c.settimeout(2)
            try:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                c.sendall(answer(buf.decode("latin-1")))
            except OSError:
                pass
        c.close()
threading.Thread(target=udp, daemon=True).start()
threading.Thread(target=tcp, args=(sip_port, True), daemon=True).start()
tcp(tcp_port, False)
PY
python3 "$TMP/peers.py" "$SIP_PORT" "$TCP_PORT" &
CLEANUPS+=("kill $!")

cat >"$TMP/inv.yml" <<YAML
levels: [tinh, huyen, xa, thon]
global: {dns_refresh: 10s, snmp_max_inflight: 8, max_devices: 1000}
site_state: {down_after: 1, up_after: 1, window: 4, degraded_loss: 0.2, degraded_rtt: 100ms,
             reachability_roles: [router, switch]}
readiness: {min_mos: 3.0}
auth:
  v1: {version: "1", community: public}
  v2: {version: 2c, community: public}
  v3: {version: "3", username: maxuser, security_level: authPriv, auth_protocol: SHA,
       auth_passphrase: authpass123, priv_protocol: AES, priv_passphrase: privpass123}
  silent: {version: 2c, community: wrong-community}
snmp_modules:
  ucd:
    - {name: up_seconds, oid: 1.3.6.1.2.1.1.3.0, type: gauge, help: "sysUpTime \"raw\" \\\\ ticks"}
    - {name: la_load_info, oid: 1.3.6.1.4.1.2021.10.1.2, type: info, walk: true, index_label: la}
    - {name: la_load, oid: 1.3.6.1.4.1.2021.10.1.3, type: gauge, walk: true, index_label: la}
    - {name: if_in_octets_total, oid: 1.3.6.1.2.1.2.2.1.10, type: counter, walk: true}
    - {name: sys_contact_info, oid: 1.3.6.1.2.1.1.4.0, type: info}
    - {name: polls_total_custom_total, oid: 1.3.6.1.2.1.11.1.0, type: counter}
defaults:
  icmp: {interval: 1s, timeout: 300ms, packets: 2, spacing: 50ms, payload_bytes: 64,
         rtt_buckets: [0.0001, 0.001, 0.01]}
  snmp: {port: $SNMP_PORT, interval: 2s, timeout: 300ms, retries: 0, max_repetitions: 10,
         max_interfaces: 500}
roles:
  router: {snmp: {auth: v2, modules: [system, interfaces, ucd], uplink: "lo|eth.*",
                  interfaces_exclude: ["Null.*"]}}
profiles:
  codec: {sip: {port: $SIP_PORT, interval: 2s, timeout: 1s},
          h323: {port: $TCP_PORT, interval: 2s, timeout: 1s},
          tcp: [{name: https, port: $TCP_PORT, interval: 2s, timeout: 1s}]}
sites:
  - id: bk
    name: "Tỉnh \"Bắc\" Kạn \\\\ ✓"
    level: tinh
    lat: 22.147
    lon: 105.834
    labels: {zone: "a\"b\\\\c", owner: "Nguyễn Văn A"}
    devices:
      - {name: router, address: 127.0.0.1, role: router}
      - {name: router6, address: "::1", role: router, snmp: {enabled: false}}
      - {name: mcu, address: localhost, role: mcu, profile: codec, snmp: {auth: v3, modules: [system]}}
  - id: cd
    name: "Huyện Chợ Đồn"
    parent: bk
    level: huyen
    devices:
      - {name: sw, address: 127.0.0.1, role: switch, snmp: {auth: v1, interfaces_include: ["l.*"]}}
      - {name: codec, address: 127.0.0.1, role: vc_endpoint, profile: codec,
         sip: {transport: tcp}, reachability: true}
  - id: cd.xa
    name: "Xã Bằng Lãng"
    parent: cd
    level: xa
    formerly: [cd.bang-lang, cd.ngoc-phai]   # siteprobe_site_alias_info, two series
    backup_parents: [bk]                     # siteprobe_site_on_backup_path, _backup_parent_info
    devices:
      - {name: router, address: 127.0.0.4, role: router, snmp: {auth: silent}}
      - {name: wan-a, address: 127.0.0.7, role: router, path: primary}
      - {name: codec, address: 127.0.0.1, role: vc_endpoint, profile: codec}
  - id: cd.xa.thon
    name: "Thôn Nà Pài"
    parent: cd.xa
    level: thon
    devices:
      - {name: dead, address: 127.0.0.6, role: router, icmp: {packets: 1}}
      - {name: codec, address: 127.0.0.1, role: vc_endpoint, profile: codec, sip: {port: 9}, h323: {enabled: false}}
maintenance:
  - {name: firmware-push, reason: "Nâng cấp \"firmware\" \\\\ OS", ticket: CHG-1, targets: [{subtree: cd}, bk/mcu],
     start: "$(date -u -d @$(($(date +%s) + 6 * 3600)) '+%Y-%m-%d %H:%M')",
     end: "$(date -u -d @$(($(date +%s) + 8 * 3600)) '+%Y-%m-%d %H:%M')"}
  - {name: nightly, reason: carrier, days: [mon, tue, wed, thu, fri, sat, sun], from: "23:00", to: "00:30",
     time_zone: "+07:00", targets: [bk/router]}
traps:
  listen: "127.0.0.1:$(free_port udp)"
  max_per_second: 50
  debounce: 10s
  vendor:
    - {oid: 1.3.6.1.4.1.5596.10.0.42, kind: codec_call_failed, severity: critical}
YAML
"$SP_BIN" check "$TMP/inv.yml" || fail "the maximal inventory does not pass check"

validate() {  # validate FILE WHAT
  promtool check metrics <"$1" >"$TMP/promtool.out" 2>&1 || { cat "$TMP/promtool.out"; fail "$2: promtool check metrics failed"; }
  python3 - "$1" <<'PY' || fail "$2: exposition"
import re, sys
seen_help, seen_type, series = set(), set(), set()
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        kind, name = line[2:6], line.split(" ")[2]
        seen = seen_help if kind == "HELP" else seen_type
        assert name not in seen, f"second {kind} for {name}"
        seen.add(name)
        continue
    if not line:
        continue
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
    assert m, f"malformed line: {line[:200]}"
    names = re.findall(r'(?:^|,)([a-zA-Z_]\w*)="(?:[^"\\]|\\.)*"', m.group(3) or "")
    assert len(names) == len(set(names)), f"duplicate label name: {line[:200]}"
    key = m.group(1) + "{" + ",".join(sorted(re.findall(r'([a-zA-Z_]\w*="(?:[^"\\]|\\.)*")', m.group(3) or ""))) + "}"
    assert key not in series, f"duplicate series: {line[:200]}"
    series.add(key)
print(f"ok: {len(series)} series in {len(seen_type)} families")
PY
}

start_siteprobe "$TMP/inv.yml"
wait_for 'v == 1' siteprobe_snmp_up 'device="router",site="bk"' 20
wait_for 'v == 1' siteprobe_snmp_up 'device="mcu"' 20
wait_for 'v == 1' siteprobe_snmp_up 'device="sw"' 20
wait_for 'v >= 2' siteprobe_sip_responses_total 'device="codec",site="cd",class="2xx"' 20
wait_for 'v >= 2' siteprobe_sip_responses_total 'device="codec",site="cd.xa",class="2xx"' 20
sleep 3
scrape >"$TMP/m1"
validate "$TMP/m1" "maximal inventory"
grep -q 'siteprobe_snmp_la_load_info{' "$TMP/m1" || fail "custom walked info object missing"
grep -q 'siteprobe_snmp_interface_oper_status{' "$TMP/m1" || fail "interfaces missing"
[ "$(grep -c '^siteprobe_site_alias_info{.*site="cd.xa".*} 1$' "$TMP/m1")" = 2 ] || fail "alias series of formerly missing"
grep -q '^siteprobe_site_on_backup_path{.*site="cd.xa".*} [01]$' "$TMP/m1" || fail "backup path flag missing"
grep -q '^siteprobe_site_backup_parent_info{parent="bk",site="cd.xa"} 1$' "$TMP/m1" || fail "backup parent info missing"
grep -q '^siteprobe_device_info{.*path="primary".*} 1$' "$TMP/m1" || fail "path=primary missing on device_info"
pass "the scrape of the maximal inventory is valid"

# Reload to a smaller tree (three levels, fewer devices and modules): still one valid scrape.
python3 - "$TMP/inv.yml" <<'PY'
import sys
p = sys.argv[1]
s = open(p, encoding="utf-8").read()
s = s[:s.index("  - id: cd.xa.thon")]
open(p, "w", encoding="utf-8").write(s)
PY
ts0=$(metric siteprobe_config_last_reload_success_timestamp_seconds)
kill -HUP "$SP_PID"
wait_for "v > $ts0" siteprobe_config_last_reload_success_timestamp_seconds "" 20
sleep 2  # a round of every probe type under the new inventory
scrape >"$TMP/m2"
validate "$TMP/m2" "after a reload"
grep -q 'device="dead"' "$TMP/m2" && fail "a removed device is still exported"
pass "after a reload the scrape is valid and removed devices are gone"
