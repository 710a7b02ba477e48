#!/usr/bin/env bash
# Redundant uplinks end to end (issue #15): the real siteprobe, prometheus with the shipped rules
# (SiteOnBackupPath's `for` shortened from 10m to 30s) and prometheus-alertmanager with the shipped
# config, and test hosts in network namespaces this script creates:
#
#   P (siteprobe) -- K (province) -- A (district) --primary-- C (commune)
#                           \________________________backup___/
#
# Commune C names A as its parent and K as a backup parent; its device `wan-a` is its address on
# the primary link (`path: primary`).
#  1. the primary link is cut (and K's route to C moves to the backup link, as the routing
#     protocol would): C stays up, on its backup path; no page; SiteOnBackupPath fires after its
#     `for`;
#  2. the backup link is cut too: C is down (its parents are up), exactly one page (SiteDown C).
source "$(dirname "$0")/lib.sh"
need_root
need_netns
for b in prometheus prometheus-alertmanager; do command -v $b >/dev/null || fail "$b not installed (scripts/install-deps.sh)"; done

P=spbp$$ K=spbk$$ A=spba$$ C=spbc$$
for ns in "$P" "$K" "$A" "$C"; do
  ip netns add "$ns"; CLEANUPS+=("ip netns del $ns"); ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
done
link() {  # link NS1 NS2 NET (a.b.c, a /30 at .0): a veth pair, NET.1 on NS1's end, NET.2 on NS2's, named after the peer
  ip link add "$2" netns "$1" type veth peer name "$1" netns "$2"
  ip -n "$1" addr add "$3.1/30" dev "$2"; ip -n "$2" addr add "$3.2/30" dev "$1"
  ip -n "$1" link set "$2" up; ip -n "$2" link set "$1" up
}
link "$P" "$K" 10.202.0
link "$K" "$A" 10.202.1
link "$A" "$C" 10.202.3   # primary
link "$K" "$C" 10.202.4   # backup (the 4G link)
ip -n "$K" addr add 10.202.10.1/32 dev lo
ip -n "$A" addr add 10.202.11.1/32 dev lo
ip -n "$C" addr add 10.202.12.1/32 dev lo
ip -n "$P" route add 10.202.0.0/16 via 10.202.0.2
ip -n "$K" route add default via 10.202.0.1
ip -n "$K" route add 10.202.11.1 via 10.202.1.2
ip -n "$K" route add 10.202.3.0/30 via 10.202.1.2
ip -n "$K" route add 10.202.12.1 via 10.202.1.2 metric 10
ip -n "$K" route add 10.202.12.1 via 10.202.4.2 metric 20
ip -n "$A" route add default via 10.202.1.1
ip -n "$A" route add 10.202.12.1 via 10.202.3.2
ip -n "$C" route add default via 10.202.3.1 metric 10
ip -n "$C" route add default via 10.202.4.1 metric 20

cat >"$TMP/inv.yml" <<'YAML'
defaults:
  icmp: {interval: 5s}
sites:
  - {id: k, name: Tỉnh Thái Nguyên, level: province, devices: [{name: router, address: 10.202.10.1, role: router}]}
  - {id: a, name: Huyện Chợ Đồn, level: district, parent: k, devices: [{name: router, address: 10.202.11.1, role: router}]}
  - id: a.c
    name: Xã Bằng Lãng
    level: commune
    parent: a
    backup_parents: [k]
    devices:
      - {name: router, address: 10.202.12.1, role: router}
      - {name: wan-a, address: 10.202.3.2, role: router, path: primary}
YAML
SP_NETNS=$P
start_siteprobe "$TMP/inv.yml"
sed 's/^        for: 10m$/        for: 30s/' alerts/siteprobe.rules.yml >"$TMP/rules.yml"
[ "$(grep -c '^        for: 30s$' "$TMP/rules.yml")" -gt "$(grep -c '^        for: 30s$' alerts/siteprobe.rules.yml)" ] ||
  fail "SiteOnBackupPath's 'for: 10m' not found in the shipped rules"
start_alert_stack "$TMP/rules.yml"

critical() {  # the critical notifications: "alertname site status", one per line
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    n = json.loads(l)
    if n["labels"].get("severity") == "critical":
        print(n["labels"].get("alertname"), n["labels"].get("site", "-"), n["status"])' "$TMP/notes.jsonl"
}
firing() {  # firing alerts in Prometheus: "alertname site severity"
  in_ns curl -fsS "http://127.0.0.1:$PR/api/v1/alerts" | python3 -c 'import json,sys
for a in json.load(sys.stdin)["data"]["alerts"]:
    l = a["labels"]
    if a["state"] == "firing" and l["alertname"] != "Watchdog":
        print(l["alertname"], l.get("site", "-"), l["severity"])'
}

for s in k a a.c; do wait_for 'v == 1 or v == 2' siteprobe_site_state "site=\"$s\"" 40; done
wait_for 'v == 0' siteprobe_site_on_backup_path 'site="a.c"' 5
scrape | grep '^siteprobe_site_backup_parent_info{parent="k",site="a.c"} 1$' >/dev/null || fail "no siteprobe_site_backup_parent_info"
pass "all 3 sites up, commune a.c on its primary path"

t0=$(date +%s)
ip -n "$C" link set "$A" down                      # the primary link
ip -n "$K" route del 10.202.12.1 via 10.202.1.2    # the routing protocol's part
wait_for 'v == 1' siteprobe_site_on_backup_path 'site="a.c"' 40
echo "primary link cut: a.c on its backup path after $(($(date +%s) - t0)) s"
[ "$(metric siteprobe_site_state 'site="a.c"')" = 1 ] || fail "a.c is not up on its backup path"
grep -q 'msg="site on backup path" site=a.c' "$TMP/siteprobe.log" || fail "no log line for the backup path"
# The status board publishes while someone watches: the first read wakes it.
for _ in $(seq 1 20); do in_ns curl -fsS "$SP_URL/status/live.json" | grep '"why.backup_path"' >/dev/null && break; sleep 0.5; done
in_ns curl -fsS "$SP_URL/status/live.json" | grep '"why.backup_path"' >/dev/null || fail "the status page's changes lack the backup path"
until firing | grep -q '^SiteOnBackupPath a.c warning$'; do
  ! firing | grep -qv '^SiteOnBackupPath ' || { firing; fail "other alerts firing with a.c on its backup path"; }
  [ $(($(date +%s) - t0)) -le 150 ] || fail "SiteOnBackupPath did not fire within 150 s"
  sleep 2
done
t=$(($(date +%s) - t0))
echo "SiteOnBackupPath firing after $t s (for: 30s in this test, 10m shipped)"
[ "$t" -ge 30 ] || fail "SiteOnBackupPath fired before its for"
for _ in 1 2 3 4 5 6; do
  [ "$(firing)" = "SiteOnBackupPath a.c warning" ] || { firing; fail "expected only SiteOnBackupPath firing"; }
  sleep 5
done
[ -z "$(critical)" ] || { critical; fail "paged while a.c runs on its backup path"; }
pass "primary link cut: a.c up on its backup path, no page, SiteOnBackupPath (warning) after ${t} s"

t0=$(date +%s)
ip -n "$C" link set "$K" down                      # the backup link too
wait_for 'v == 3' siteprobe_site_state 'site="a.c"' 40
until critical | grep -q '^SiteDown a.c firing$'; do
  [ $(($(date +%s) - t0)) -le 150 ] || { cat "$TMP/notes.jsonl"; fail "no page for a.c within 150 s"; }
  sleep 1
done
echo "both links cut: SiteDown a.c paged after $(($(date +%s) - t0)) s"
sleep 20
[ "$(critical)" = "SiteDown a.c firing" ] || { critical; fail "expected exactly one page, SiteDown a.c"; }
[ "$(metric siteprobe_site_on_backup_path 'site="a.c"')" = 0 ] || fail "a down site is not on a backup path"
pass "both links cut: a.c down, exactly one page"
