#!/usr/bin/env bash
# Three vantages that must agree before anyone is paged (issue #14), end to end: three real
# siteprobes (default settings, the same inventory), each in a namespace of its own with its own
# uplink into a backbone namespace H that routes to the test hosts (province core K, districts A
# and B with their communes), 2 % of echo requests dropped on every test host all along. In H: a
# Prometheus HA pair (replicas a and b, both scraping all three vantages, `vantage` a target label)
# evaluating the shipped alerts/siteprobe.quorum.rules.yml, both sending to both peers of an
# Alertmanager gossip cluster (the shipped config), and webhook.py counting notifications.
#  1. district d1's link cut (for every vantage) -> exactly one notification, SiteDownQuorum d1 to
#     the pager, within 60 s, deduplicated across the Prometheus pair and the Alertmanager peers;
#     one Alertmanager peer killed after it -> still exactly one;
#  2. vantage v1's uplink cut -> no site notification, one VantageLost v1 (to chat);
#  3. v3's siteprobe killed -> no site notification; the coverage query (sites watched by fewer
#     than the 3 vantages) lists all 7 sites.
# Prometheus scrapes and evaluates every 5 s and the pager route's group_interval is 10 s
# (tests/integration/lib.sh am_config); the rules and every siteprobe setting are as shipped.
source "$(dirname "$0")/lib.sh"
need_root
need_netns
for b in prometheus prometheus-alertmanager nft; do command -v $b >/dev/null || fail "$b not installed (scripts/install-deps.sh)"; done

H=spvh$$ K=spvk$$ A=spva$$ B=spvb$$ V1=spv1$$ V2=spv2$$ V3=spv3$$
for ns in "$H" "$K" "$A" "$B" "$V1" "$V2" "$V3"; do
  ip netns add "$ns"; CLEANUPS+=("ip netns del $ns"); ip -n "$ns" link set lo up
done
ip netns exec "$H" sysctl -qw net.ipv4.ip_forward=1
# Link n: H has 10.202.0.(4n+1), the far end 10.202.0.(4n+2) and a default route back through H.
link() {  # link N NAMESPACE [SUBNET]: SUBNET (a /24 on the far end's lo) routed through it
  local n=$1 far=$2 net=${3:-}
  ip link add "vh$n$$" netns "$H" type veth peer name "vf$n$$" netns "$far"
  ip -n "$H" addr add "10.202.0.$((4 * n + 1))/30" dev "vh$n$$"
  ip -n "$far" addr add "10.202.0.$((4 * n + 2))/30" dev "vf$n$$"
  ip -n "$H" link set "vh$n$$" up; ip -n "$far" link set "vf$n$$" up
  ip -n "$far" route add default via "10.202.0.$((4 * n + 1))"
  [ -z "$net" ] && return 0
  ip -n "$H" route add "$net.0/24" via "10.202.0.$((4 * n + 2))"
  for h in 1 11 12; do ip -n "$far" addr add "$net.$h/32" dev lo; done
  ip netns exec "$far" nft -f - <<NFT
table inet siteprobe_test {
  chain input {
    type filter hook input priority 0;
    icmp type echo-request numgen random mod 100 < 2 counter drop
  }
}
NFT
}
link 0 "$K" 10.202.3; link 1 "$A" 10.202.1; link 2 "$B" 10.202.2
link 3 "$V1"; link 4 "$V2"; link 5 "$V3"
# A cut link: H drops everything through its end. (Setting the link down would also flush H's
# routes through it, which a link coming back does not restore.)
cut() {
  ip netns exec "$H" nft -f - <<NFT
table inet cut$1 {
  chain f { type filter hook forward priority -10; iifname "vh$1$$" drop; oifname "vh$1$$" drop; }
  chain i { type filter hook input priority -10; iifname "vh$1$$" drop; }
  chain o { type filter hook output priority -10; oifname "vh$1$$" drop; }
}
NFT
}
mend() { ip netns exec "$H" nft delete table inet "cut$1"; }

cat >"$TMP/inv.yml" <<'YAML'
# No settings: ICMP every 10 s, 5 requests, timeout 2 s; down after 2 failed rounds.
sites:
  - {id: bk, name: Tỉnh Bắc Kạn, level: province, devices: [{name: router, address: 10.202.3.1, role: router}]}
  - {id: d1, name: Huyện Một, level: district, parent: bk, devices: [{name: router, address: 10.202.1.1, role: router}]}
  - {id: d1.c1, name: Xã Một, level: commune, parent: d1, devices: [{name: router, address: 10.202.1.11, role: router}]}
  - {id: d1.c2, name: Xã Hai, level: commune, parent: d1, devices: [{name: router, address: 10.202.1.12, role: router}]}
  - {id: d2, name: Huyện Hai, level: district, parent: bk, devices: [{name: router, address: 10.202.2.1, role: router}]}
  - {id: d2.c1, name: Xã Ba, level: commune, parent: d2, devices: [{name: router, address: 10.202.2.11, role: router}]}
  - {id: d2.c2, name: Xã Bốn, level: commune, parent: d2, devices: [{name: router, address: 10.202.2.12, role: router}]}
YAML
SP_PIDS=()
targets=""
for i in 1 2 3; do
  ns_var=V$i; addr=10.202.0.$((4 * (i + 2) + 2))
  ip netns exec "${!ns_var}" "$SP_BIN" --config "$TMP/inv.yml" --web.listen-address "$addr:9723" --vantage "v$i" \
    >>"$TMP/siteprobe-v$i.log" 2>&1 &
  SP_PIDS+=($!); CLEANUPS+=("kill $!")
  targets+="      - {targets: ['$addr:9723'], labels: {vantage: v$i}}"$'\n'
done
for i in 1 2 3; do
  addr=10.202.0.$((4 * (i + 2) + 2))
  for _ in $(seq 1 100); do ip netns exec "$H" curl -fsS "http://$addr:9723/-/ready" >/dev/null 2>&1 && break; sleep 0.1; done
  ip netns exec "$H" curl -fsS "http://$addr:9723/-/ready" >/dev/null || fail "siteprobe v$i not ready"
done

# The Alertmanager cluster and the Prometheus pair, in H. Started with `ip netns exec` itself, not
# through a function: $! must be the process (ip netns exec execs in place), to be killed.
in_h() { ip netns exec "$H" "$@"; }
WH=$(free_port); AM1=$(free_port); AM2=$(free_port); C1=$(free_port); C2=$(free_port); PA=$(free_port); PB=$(free_port)
am_config "$TMP/am.yml" "$WH"
touch "$TMP/notes.jsonl"
ip netns exec "$H" python3 tests/integration/webhook.py "$WH" "$TMP/notes.jsonl" &
CLEANUPS+=("kill $!")
for p in "1 $AM1 $C1 $C2" "2 $AM2 $C2 $C1"; do
  read -r n port cl peer <<<"$p"
  ip netns exec "$H" prometheus-alertmanager --config.file="$TMP/am.yml" --storage.path="$TMP/am$n" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address="127.0.0.1:$cl" \
    --cluster.peer="127.0.0.1:$peer" >"$TMP/am$n.log" 2>&1 &
  CLEANUPS+=("kill $!")
  [ "$n" = 2 ] && AM2_PID=$!
done
for r in a b; do
  port=$PA; [ $r = b ] && port=$PB
  # The pair's alerts must be the same alerts: the replica label is dropped from them.
  cat >"$TMP/prom-$r.yml" <<YAML
global: {scrape_interval: 5s, evaluation_interval: 5s, external_labels: {replica: $r}}
rule_files: ["$PWD/alerts/siteprobe.quorum.rules.yml"]
alerting:
  alert_relabel_configs: [{action: labeldrop, regex: replica}]
  alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$AM1", "127.0.0.1:$AM2"]}]}]
scrape_configs:
  - job_name: siteprobe
    static_configs:
$targets
YAML
  ip netns exec "$H" prometheus --config.file="$TMP/prom-$r.yml" --storage.tsdb.path="$TMP/prom-$r" \
    --web.listen-address="127.0.0.1:$port" >"$TMP/prom-$r.log" 2>&1 &
  CLEANUPS+=("kill $!")
done
for port in "$AM1" "$AM2" "$PA" "$PB"; do
  for _ in $(seq 1 100); do in_h curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done
  in_h curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null || { tail -n 20 "$TMP"/am*.log "$TMP"/prom-*.log; fail "port $port not ready"; }
done

query() {  # query PROMQL -> one line per series: "label=value,... value" (from replica a)
  in_h curl -fsS "http://127.0.0.1:$PA/api/v1/query" --data-urlencode "query=$1" | python3 -c 'import json,sys
for r in json.load(sys.stdin)["data"]["result"]:
    print(",".join(f"{k}={v}" for k, v in sorted(r["metric"].items())), r["value"][1])'
}
notes() {  # notes STATUS -> "alertname site/vantage severity receiver", one line per notified alert
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    n = json.loads(l)
    if n["status"] == sys.argv[2] and n["labels"].get("alertname") != "Watchdog":
        l = n["labels"]
        print(l.get("alertname"), l.get("site", l.get("vantage", "-")), l.get("severity"), n["receiver"])' \
    "$TMP/notes.jsonl" "$1"
}
wait_note() {  # wait_note "ALERTNAME SITE" TIMEOUT_S START_EPOCH -> seconds since START
  until notes firing | grep -q "^$1 "; do
    sleep 0.5
    [ $(($(date +%s) - $3)) -le "$2" ] || { cat "$TMP/notes.jsonl" >&2; fail "no notification '$1' within $2 s"; }
  done
  echo $(($(date +%s) - $3))
}
expect_notes() {  # expect_notes LINES: the firing notifications so far, sorted
  [ "$(notes firing | sort)" = "$1" ] || { cat "$TMP/notes.jsonl" >&2; fail "notifications: expected '$1'"; }
}

for _ in $(seq 1 120); do [ "$(query 'count(vantage:siteprobe_healthy)')" = " 3" ] && break; sleep 0.5; done
[ "$(query 'count(vantage:siteprobe_healthy)')" = " 3" ] || fail "not 3 healthy vantages: $(query 'vantage:siteprobe_healthy')"
for _ in $(seq 1 60); do [ "$(query 'count(site:siteprobe_vantages:count == 3)')" = " 7" ] && break; sleep 0.5; done
[ "$(query 'count(site:siteprobe_vantages:count == 3)')" = " 7" ] || fail "coverage: $(query 'site:siteprobe_vantages:count')"
# bench/vantages/loss.sh holds this quiet phase for LOSS_MINUTES (issue #14: 15 minutes).
sleep $((15 + ${LOSS_MINUTES:-0} * 60))
expect_notes ""
pass "3 vantages healthy, all 7 sites watched by 3, nothing notified under 2 % loss in $((15 + ${LOSS_MINUTES:-0} * 60)) s"

# 1. District d1's link cut.
t0=$(date +%s)
cut 1
t=$(wait_note "SiteDownQuorum d1" 90 "$t0")
echo "d1 cut: SiteDownQuorum d1 notified after $t s"
[ "$t" -le 60 ] || fail "district page took $t s (> 60 s)"
kill "$AM2_PID"
sleep 30
expect_notes "SiteDownQuorum d1 critical pager"
pass "district cut: exactly one page after $t s from 3 vantages, 2 Prometheus, 2 Alertmanagers; one Alertmanager killed: still one"
mend 1
# Back: SiteDownQuorum resolves. The pair resolves it one evaluation apart, and Alertmanager takes
# the newest of their updates: if it notified the first replica's `resolved` before the second's
# last `firing` came, it pages again and resolves at once (docs/scale-out.md#prometheus-ha-pairs).
# Counted and shown, not failed: it is the pair's doing, not the quorum's.
t0=$(date +%s)
wait_note_status() { until notes resolved | grep -q "^$1 "; do sleep 0.5; [ $(($(date +%s) - t0)) -le 90 ] || fail "no resolved '$1'"; done; }
wait_note_status "SiteDownQuorum d1"
echo "d1 mended: resolved notification after $(($(date +%s) - t0)) s"
for _ in $(seq 1 60); do
  [ -z "$(query 'ALERTS{alertname="SiteDownQuorum"}')" ] &&
    ! in_h curl -fsS "http://127.0.0.1:$PB/api/v1/alerts" | grep -q SiteDownQuorum && break
  sleep 0.5
done
sleep 25  # past the pager route's group_interval (10 s) and a peer's wait (15 s)
flaps=$(($(notes firing | grep -c '^SiteDownQuorum d1 ') - 1))
echo "d1 mended: $flaps more SiteDownQuorum d1 page(s) while the pair resolved it"
base=$(notes firing | sort)

# 2. Vantage v1's uplink cut: its Prometheus targets go stale, it sees nothing.
t0=$(date +%s)
cut 3
t=$(wait_note "VantageLost v1" 200 "$t0")
sleep 5
expect_notes "$(printf '%s\nVantageLost v1 warning chat' "$base" | sort)"
pass "v1's uplink cut: VantageLost v1 to chat after $t s, no site notification"
mend 3
for _ in $(seq 1 60); do [ "$(query 'count(vantage:siteprobe_healthy)')" = " 3" ] && break; sleep 0.5; done

# 3. v3's siteprobe killed.
kill "${SP_PIDS[2]}"
sleep 30
expect_notes "$(printf '%s\nVantageLost v1 warning chat' "$base" | sort)"
below=$(query 'site:siteprobe_vantages:count < 3' | sed -E 's/.*site=([^, ]*).*/\1/' | sort | paste -sd' ')
[ "$below" = "bk d1 d1.c1 d1.c2 d2 d2.c1 d2.c2" ] || fail "coverage below 3: '$below'"
pass "v3 killed: no site notification; coverage below 3 vantages: $below"
# What quorum costs Prometheus: its own figures for the rule group (replica a).
in_h curl -fsS "http://127.0.0.1:$PA/metrics" | grep -E '^prometheus_rule_group_(last_duration_seconds|iterations_total)\{.*quorum' |
  sed 's/^/replica a: /'
in_h curl -fsS "http://127.0.0.1:$PA/metrics" | grep -E '^process_cpu_seconds_total' | sed 's/^/replica a: /'
echo "test took $SECONDS s"
