#!/usr/bin/env bash
# End to end, with real siteprobe, prometheus (the shipped rules) and alertmanager (the shipped
# example config, receivers pointed at a webhook that records every notification), and test hosts in
# network namespaces, under 2 % random loss on every link for the whole test:
#  1. a district's link goes down -> exactly one critical notification (that district's SiteDown)
#     within 60 s with default siteprobe settings; nothing for its communes (unreachable);
#  2. the link comes back -> the alert resolves;
#  3. one commune goes down -> one notification for that commune;
#  and nothing else is ever notified (2 % loss must not page or warn).
source "$(dirname "$0")/lib.sh"
need_root
need_netns
for b in prometheus prometheus-alertmanager; do command -v $b >/dev/null || fail "$b not installed (scripts/install-deps.sh)"; done
ROOT=$(pwd)

P=spep$$ A=spea$$ B=speb$$
for ns in $P $A $B; do ip netns add $ns; CLEANUPS+=("ip netns del $ns"); ip -n $ns link set lo up; done
ip link add pa$$ netns $P type veth peer name ap$$ netns $A
ip link add pb$$ netns $P type veth peer name bp$$ netns $B
ip -n $P addr add 10.201.0.1/30 dev pa$$; ip -n $A addr add 10.201.0.2/30 dev ap$$
ip -n $P addr add 10.201.0.5/30 dev pb$$; ip -n $B addr add 10.201.0.6/30 dev bp$$
for l in "$P pa$$" "$P pb$$" "$A ap$$" "$B bp$$"; do set -- $l; ip -n $1 link set $2 up; done
ip -n $P route add 10.201.1.0/24 via 10.201.0.2
ip -n $P route add 10.201.2.0/24 via 10.201.0.6
# District routers and the commune routers behind them live in the district's namespace.
for a in 10.201.1.1 10.201.1.11 10.201.1.12; do ip -n $A addr add $a/32 dev lo; done
for a in 10.201.2.1 10.201.2.11 10.201.2.12; do ip -n $B addr add $a/32 dev lo; done
for ns in $A $B; do
  ip netns exec $ns nft -f - <<NFT
table inet loss { chain input { type filter hook input priority 0; icmp type echo-request numgen random mod 100 < 2 drop; } }
NFT
done

cat >"$TMP/inv.yml" <<'YAML'
# Default siteprobe settings: ICMP every 10 s, 5 packets; 2 failed rounds before down.
sites:
  - {id: bk, name: Tỉnh Bắc Kạn, level: province, devices: [{name: router, address: 127.0.0.1, role: router}]}
  - {id: d1, name: Huyện Một, level: district, parent: bk, devices: [{name: router, address: 10.201.1.1, role: router}]}
  - {id: d1.c1, name: Xã Một, level: commune, parent: d1, devices: [{name: router, address: 10.201.1.11, role: router}]}
  - {id: d1.c2, name: Xã Hai, level: commune, parent: d1, devices: [{name: router, address: 10.201.1.12, role: router}]}
  - {id: d2, name: Huyện Hai, level: district, parent: bk, devices: [{name: router, address: 10.201.2.1, role: router}]}
  - {id: d2.c1, name: Xã Ba, level: commune, parent: d2, devices: [{name: router, address: 10.201.2.11, role: router}]}
  - {id: d2.c2, name: Xã Bốn, level: commune, parent: d2, devices: [{name: router, address: 10.201.2.12, role: router}]}
YAML

SP_NETNS=$P
start_siteprobe "$TMP/inv.yml"
PR=$(free_port); AM=$(free_port); WH=$(free_port)
sed -E "s#http://127\.0\.0\.1:[0-9]+#http://127.0.0.1:$WH#g" "$ROOT/alerts/alertmanager.yml" >"$TMP/am.yml"
cat >"$TMP/prom.yml" <<YAML
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: ["$ROOT/alerts/siteprobe.rules.yml"]
alerting: {alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$AM"]}]}]}
scrape_configs:
  - job_name: siteprobe
    static_configs: [{targets: ["127.0.0.1:$SP_PORT"]}]
YAML
ip netns exec $P python3 "$ROOT/tests/integration/webhook.py" $WH "$TMP/notes.jsonl" &
CLEANUPS+=("kill $!")
ip netns exec $P prometheus-alertmanager --config.file="$TMP/am.yml" --storage.path="$TMP/am" \
  --web.listen-address=127.0.0.1:$AM --cluster.listen-address= >"$TMP/am.log" 2>&1 &
CLEANUPS+=("kill $!")
ip netns exec $P prometheus --config.file="$TMP/prom.yml" --storage.tsdb.path="$TMP/prom" \
  --web.listen-address=127.0.0.1:$PR >"$TMP/prom.log" 2>&1 &
CLEANUPS+=("kill $!")
touch "$TMP/notes.jsonl"

notes() {  # notes STATUS -> "alertname/site" per notification with that status
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    n = json.loads(l)
    if n["status"] == sys.argv[2]: print(n["labels"].get("alertname"), n["labels"].get("site", "-"), n["labels"].get("severity"))' "$TMP/notes.jsonl" "$1"
}
wait_note() {  # wait_note STATUS "ALERTNAME SITE" TIMEOUT -> seconds waited
  local t=0
  until notes "$1" | grep -q "^$2 "; do
    sleep 1; t=$((t + 1))
    [ $t -le "$3" ] || { echo "notifications so far:"; cat "$TMP/notes.jsonl"; fail "no $1 notification '$2' within $3 s"; }
  done
  echo $t
}

for s in bk d1 d1.c1 d1.c2 d2 d2.c1 d2.c2; do wait_for 'v == 1 or v == 2' siteprobe_site_state "site=\"$s\"" 40; done
pass "all 7 sites up under 2 % loss"
sleep 20  # Prometheus scrapes and evaluates the healthy network for a while
[ ! -s "$TMP/notes.jsonl" ] || { cat "$TMP/notes.jsonl"; fail "notifications while everything is up"; }

ip -n $A link set ap$$ down
t=$(wait_note firing "SiteDown d1" 90)
echo "district d1 link down: SiteDown d1 notified after ${t}s"
[ "$t" -le 60 ] || fail "district page took ${t}s (> 60 s)"
wait_for 'v == 4' siteprobe_site_state 'site="d1.c1"' 5
wait_for 'v == 4' siteprobe_site_state 'site="d1.c2"' 5
sleep 45  # long enough for any commune alert (longer `for`) to have fired
firing=$(notes firing | sort -u)
[ "$firing" = "SiteDown d1 critical" ] || { echo "$firing"; fail "expected exactly one notification, SiteDown d1"; }
[ "$(notes firing | wc -l)" -eq 1 ] || fail "SiteDown d1 notified more than once"
pass "district down: exactly one critical notification in ${t}s, communes unreachable and silent"

ip -n $A link set ap$$ up
t=$(wait_note resolved "SiteDown d1" 120)
pass "district back: resolved notification after ${t}s"

ip -n $B addr del 10.201.2.11/32 dev lo
t=$(wait_note firing "SiteDown d2.c1" 120)
pass "commune d2.c1 down: notified after ${t}s"
sleep 10
firing=$(notes firing | sort)
[ "$firing" = "$(printf 'SiteDown d1 critical\nSiteDown d2.c1 critical')" ] || { cat "$TMP/notes.jsonl"; fail "unexpected notifications"; }
pass "nothing else notified under 2 % loss (no loss, latency or device alerts)"
