#!/usr/bin/env bash
# The NOC lead's five fault scenarios (issue #19) in one run, end to end: the real siteprobe with
# default settings, Prometheus with the shipped rules, Alertmanager with the shipped config (its
# receivers pointed at tests/integration/webhook.py, which records every notification), sipp as
# the MCU's SIP peer, and test hosts in network namespaces this script creates (10.201.0.0/16
# exists only inside them). Prints one row per scenario with the notifications it caused, and
# exits 1 if any differs from what a NOC expects:
#  5. a commune with 20 % loss on its router and codec -> 1 message (chat), not HighPacketLoss and
#     then LowVideoMOS;
#  4. the MCU muted (SIP dropped, ping still answered) -> 1 critical page within 2 minutes of
#     Prometheus seeing it, and no RESOLVED while it stays muted, through scenario 3 too;
#  1. one district's link cut -> 1 page; its communes silent;
#  2. three of the four districts cut, the province up -> exactly 1 page (BackboneFault);
#  3. the province core cut -> 1 page (SiteprobeVantageLost), the MCU's page not resolved after.
# Scenarios 5 and 4 start together (the loss rule needs its 5-minute `for` and 10-minute window,
# and an outage inside that window would hold it back), then 1, 2 and 3 follow one by one.
# About 14 minutes. Root (namespaces, nftables).
#
#   sudo bench/noc/scenarios.sh [SITEPROBE_BINARY]        # default build/daemon/siteprobe
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
source tests/integration/lib.sh "${1:-build/daemon/siteprobe}"
need_root
need_netns
for b in prometheus prometheus-alertmanager nft sipp; do command -v $b >/dev/null || fail "$b not installed (scripts/install-deps.sh)"; done

# P: the prober. K: the province core (router .3.1, MCU .3.2). D1..D4: districts, each with its
# router .N.1 and communes .N.11, .N.12 (D4's first commune also has a codec, .4.21).
P=spnp$$ K=spnk$$
DS=(spn1$$ spn2$$ spn3$$ spn4$$)
LINK=()  # the far end of each link from P, to cut it: K's, then D1..D4's
for ns in "$P" "$K" "${DS[@]}"; do ip netns add "$ns"; CLEANUPS+=("ip netns del $ns"); ip -n "$ns" link set lo up; done
n=0
for far in "$K 3" "${DS[0]} 1" "${DS[1]} 2" "${DS[2]} 4" "${DS[3]} 5"; do
  read -r host net <<<"$far"
  ip link add "p$n$$" netns "$P" type veth peer name "h$n$$" netns "$host"
  ip -n "$P" addr add "10.201.0.$((4 * n + 1))/30" dev "p$n$$"
  ip -n "$host" addr add "10.201.0.$((4 * n + 2))/30" dev "h$n$$"
  ip -n "$P" link set "p$n$$" up; ip -n "$host" link set "h$n$$" up
  ip -n "$P" route add "10.201.$net.0/24" via "10.201.0.$((4 * n + 2))"
  for h in 1 2 11 12 21; do ip -n "$host" addr add "10.201.$net.$h/32" dev lo; done
  LINK+=("$host h$n$$")
  n=$((n + 1))
done
link_set() { local ns dev; read -r ns dev <<<"$1"; ip -n "$ns" link set "$dev" "$2"; }

# The MCU's SIP: sipp answering OPTIONS with 200 in K, on the MCU's address.
ip netns exec "$K" sipp -sf tests/integration/sipp/options-200.xml -i 10.201.3.2 -p 5060 -t u1 -nostdin \
  >"$TMP/sipp.log" 2>&1 &
CLEANUPS+=("kill $!")

cat >"$TMP/inv.yml" <<'YAML'
# Default settings: ICMP every 10 s, 5 requests, timeout 2 s; down after 2 failed rounds.
sites:
  - id: bk
    name: Tỉnh Bắc Kạn
    level: province
    devices:
      - {name: router, address: 10.201.3.1, role: router}
      - {name: mcu, address: 10.201.3.2, role: mcu, sip: {port: 5060}, h323: {enabled: false}}
  - {id: d1, name: Huyện Một, level: district, parent: bk, devices: [{name: router, address: 10.201.1.1, role: router}]}
  - {id: d1.c1, name: Xã Một, level: commune, parent: d1, devices: [{name: router, address: 10.201.1.11, role: router}]}
  - {id: d2, name: Huyện Hai, level: district, parent: bk, devices: [{name: router, address: 10.201.2.1, role: router}]}
  - {id: d2.c1, name: Xã Hai, level: commune, parent: d2, devices: [{name: router, address: 10.201.2.11, role: router}]}
  - {id: d3, name: Huyện Ba, level: district, parent: bk, devices: [{name: router, address: 10.201.4.1, role: router}]}
  - {id: d3.c1, name: Xã Ba, level: commune, parent: d3, devices: [{name: router, address: 10.201.4.11, role: router}]}
  - {id: d4, name: Huyện Bốn, level: district, parent: bk, devices: [{name: router, address: 10.201.5.1, role: router}]}
  - id: d4.c1
    name: Xã Bốn
    level: commune
    parent: d4
    devices:
      - {name: router, address: 10.201.5.11, role: router}
      - {name: codec, address: 10.201.5.21, role: vc_endpoint, sip: {enabled: false}, h323: {enabled: false}}
  - {id: d4.c2, name: Xã Năm, level: commune, parent: d4, devices: [{name: router, address: 10.201.5.12, role: router}]}
YAML
SP_NETNS=$P
start_siteprobe "$TMP/inv.yml"
start_alert_stack "$ROOT/alerts/siteprobe.rules.yml"

# notes FROM -> "status alertname site receiver" per notified alert from line FROM of the record on.
notes() {
  tail -n +"$1" "$TMP/notes.jsonl" | python3 -c 'import json,sys
for l in sys.stdin:
    n = json.loads(l)
    if n["labels"].get("alertname") != "Watchdog":  # the heartbeat, every minute by design
        print(n["status"], n["labels"].get("alertname"), n["labels"].get("site", "-"), n["receiver"])'
}
mark() { echo $(($(wc -l <"$TMP/notes.jsonl") + 1)); }
wait_note() {  # wait_note FROM "STATUS ALERTNAME SITE" TIMEOUT_S -> seconds waited
  local t0; t0=$(date +%s)
  until notes "$1" | grep -q "^$2 "; do
    sleep 1
    [ $(($(date +%s) - t0)) -le "$3" ] || { notes 1 >&2; fail "no notification '$2' within $3 s"; }
  done
  echo $(($(date +%s) - t0))
}
ROWS=() BAD=0
row() {  # row SCENARIO FROM EXPECTED_FIRING [RECEIVER]: records what was notified since FROM
  local got want=$3
  got=$(notes "$2" | grep "^firing .* ${4:-[a-z]*}\$" | sort | uniq -c |
    awk '{printf "%s%s %s (%s) x%d", (NR > 1 ? "; " : ""), $3, $4, $5, $1}')
  ROWS+=("| $1 | ${got:-none} | $want |")
  if [ "$got" != "$want" ]; then echo "MISMATCH in $1: got '$got', want '$want'" >&2; BAD=1; fi
}

for s in bk d1 d1.c1 d2 d2.c1 d3 d3.c1 d4 d4.c1 d4.c2; do wait_for 'v == 1 or v == 2' siteprobe_site_state "site=\"$s\"" 60; done
wait_for 'v == 1' siteprobe_sip_up 'device="mcu"' 60
pass "all 10 sites up, the MCU answers SIP"
sleep 20
[ -z "$(notes 1)" ] || { notes 1; fail "notifications while everything is up"; }

# 5 and 4 together.
from=$(mark)
ip netns exec "${DS[3]}" nft -f - <<'NFT'
table inet noc_loss {
  chain input {
    type filter hook input priority 0;
    ip daddr { 10.201.5.11, 10.201.5.21 } icmp type echo-request numgen random mod 100 < 20 counter drop
  }
}
NFT
ip netns exec "$K" nft add table inet noc_mute
ip netns exec "$K" nft add chain inet noc_mute input '{ type filter hook input priority 0; }'
ip netns exec "$K" nft add rule inet noc_mute input ip daddr 10.201.3.2 udp dport 5060 counter drop
t=$(wait_note "$from" "firing EndpointCallServiceDown bk" 240)
echo "4. MCU muted: critical page after ${t} s"
[ "$t" -le 150 ] || { echo "MISMATCH: the MCU's page took ${t} s" >&2; BAD=1; }
mcu_page_at=$t
t=$(wait_note "$from" "firing HighPacketLoss d4.c1" 600)
echo "5. lossy commune: first message after ${t} s"
sleep 90  # LowVideoMOS and any follow-up would come within this
row "4+5. MCU muted; commune with 20 % loss (router and codec)" "$from" "$(printf 'EndpointCallServiceDown bk (pager) x1; HighPacketLoss d4.c1 (chat) x2')"

# 1. One district.
from=$(mark)
link_set "${LINK[1]}" down
t=$(wait_note "$from" "firing SiteDown d1" 120)
sleep 45  # its commune's `for` is 30 s
row "1. district d1's link cut" "$from" "SiteDown d1 (pager) x1" pager
echo "1. district cut: page after ${t} s"
link_set "${LINK[1]}" up
wait_note "$from" "resolved SiteDown d1" 180 >/dev/null
sleep 30

# 2. Three districts cut, the province up.
from=$(mark)
for i in 1 2 3; do link_set "${LINK[$i]}" down; done
t=$(wait_note "$from" "firing BackboneFault -" 120)
sleep 60
row "2. districts d1, d2, d3 cut, province up" "$from" "BackboneFault - (pager) x1" pager
echo "2. backbone: page after ${t} s"
for i in 1 2 3; do link_set "${LINK[$i]}" up; done
wait_note "$from" "resolved BackboneFault -" 240 >/dev/null
sleep 30

# 3. The province core cut (K's link: the province router and the MCU).
from=$(mark)
link_set "${LINK[0]}" down
t=$(wait_note "$from" "firing SiteprobeVantageLost -" 120)
sleep 45
row "3. province core cut" "$from" "SiteprobeVantageLost - (pager) x1" pager
echo "3. core cut: page after ${t} s"
link_set "${LINK[0]}" up
wait_note "$from" "resolved SiteprobeVantageLost -" 180 >/dev/null
sleep 120  # the false all-clear came here: the MCU's alert restarting its `for` after the outage
if notes 1 | grep -q "^resolved EndpointCallServiceDown"; then
  echo "MISMATCH: EndpointCallServiceDown RESOLVED while the MCU is still muted" >&2; BAD=1
  ROWS+=("| 4. MCU muted: RESOLVED while still dead | yes | no |")
else
  ROWS+=("| 4. MCU muted: page after ${mcu_page_at} s; RESOLVED while still dead | no | no |")
fi
# One message for the lossy commune over the whole run: one chat POST holding its alerts.
posts=$(python3 -c 'import json,sys
print(len({n["notification"] for n in map(json.loads, open(sys.argv[1]))
           if n["status"] == "firing" and n["labels"].get("site") == "d4.c1"}))' "$TMP/notes.jsonl")
ROWS+=("| 5. lossy commune: messages over the whole run | $posts | 1 |")
[ "$posts" = 1 ] || { echo "MISMATCH: the lossy commune sent $posts messages" >&2; BAD=1; }

echo
echo "| scenario | notifications (firing; receiver; count) | expected |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[ $BAD = 0 ] || fail "a scenario notified differently from the expected"
pass "five scenarios: one notification per cause, no false all-clear"
