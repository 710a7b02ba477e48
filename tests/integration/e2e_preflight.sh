#!/usr/bin/env bash
# Pre-flight alerts end to end: the real siteprobe, prometheus with the shipped rules,
# prometheus-alertmanager with the shipped example config (receivers pointed at webhook.py, which
# records every notification), and test hosts in network namespaces this script creates. Both
# districts, A (d1) and B (d2), sit behind a policer on UDP 862 (200 kbytes/s, below a 2 Mbit/s
# call), and every router in them answers STAMP (`siteprobe reflect`). A conference whose
# participants are district A's subtree only ({district: d1}) is added by a reload; it starts in
# about 5 minutes (UTC+7), so its T-5 pre-flight mark fires at once and path-tests A's routers.
#  1. every site of A gets a verdict NOT READY (path_loss), and `siteprobe readiness --conference`
#     exits 1 and names A's communes NOT READY, path_loss, before Alertmanager pages;
#  2. exactly one notification follows: ConferencePreflightNotReady for district d1 and that
#     conference, critical, to the pager (after the rule's 2 minutes), and it is not sent again;
#  3. district B never pages and never has a verdict: no participant series for its routers, no
#     alert (pending or firing) and no notification about it, though its path loses as much as A's
#     (a `siteprobe path-test` through B's policer shows it); nothing else fires or is notified.
# Faster than the shipped example only where the shipped values are about long waits: Prometheus
# scrapes and evaluates every 5 s, and Alertmanager's pager group_interval is 10 s; group_wait, the
# rules and every siteprobe setting but the path tests' duration (10 s, not 20 s) are as shipped.
source "$(dirname "$0")/lib.sh"
need_root
need_netns
for b in prometheus prometheus-alertmanager nft; do command -v $b >/dev/null || fail "$b not installed (scripts/install-deps.sh)"; done
ROOT=$(pwd)
CONF=hop-pac-nam

# The prober's namespace P has one veth link to each test host namespace: the province core K and
# the districts A and B. A district's router and communes are addresses in the district's
# namespace, so they sit behind the district's link (and its policer), as in the real network.
P=sppp$$ K=sppk$$ A=sppa$$ B=sppb$$
for ns in "$P" "$K" "$A" "$B"; do ip netns add "$ns"; CLEANUPS+=("ip netns del $ns"); ip -n "$ns" link set lo up; done
n=0
for far in "$K 10.202.3" "$A 10.202.1" "$B 10.202.2"; do
  read -r host net <<<"$far"
  ip link add "p$n$$" netns "$P" type veth peer name "h$n$$" netns "$host"
  ip -n "$P" addr add "10.202.0.$((4 * n + 1))/30" dev "p$n$$"
  ip -n "$host" addr add "10.202.0.$((4 * n + 2))/30" dev "h$n$$"
  ip -n "$P" link set "p$n$$" up; ip -n "$host" link set "h$n$$" up
  ip -n "$P" route add "$net.0/24" via "10.202.0.$((4 * n + 2))"
  for h in 1 11 12; do ip -n "$host" addr add "$net.$h/32" dev lo; done
  n=$((n + 1))
done
# Each district: a STAMP reflector on its router's and its communes' addresses (one per address,
# so each answers from the address it was sent to), and the policer in front of them. nftables'
# byte limit starts with a bucket of one second at its rate: a 10 s stream at 2 Mbit/s (250,000
# B/s at the IP level) through 200 kbytes/s (204,800 B/s) keeps 204,800 * 11 B of 2,500,000 and
# loses 9.9 %, far over the 1 % a path test allows. (A 5 s stream would lose only 1.7 %.)
for far in "$A 10.202.1" "$B 10.202.2"; do
  read -r host net <<<"$far"
  ip netns exec "$host" nft -f - <<NFT
table inet siteprobe_test {
  chain input {
    type filter hook input priority 0;
    udp dport 862 limit rate over 200 kbytes/second counter drop
  }
}
NFT
  rport=$(free_port)
  ip netns exec "$host" "$SP_BIN" reflect --stateful --listen "$net.1:862" --listen "$net.11:862" \
    --listen "$net.12:862" --web.listen-address "127.0.0.1:$rport" >>"$TMP/reflect-$host.log" 2>&1 &
  CLEANUPS+=("kill $!")
  for _ in $(seq 1 50); do ip netns exec "$host" curl -fsS "127.0.0.1:$rport/metrics" >/dev/null 2>&1 && break; sleep 0.1; done
  ip netns exec "$host" curl -fsS "127.0.0.1:$rport/metrics" >/dev/null || { cat "$TMP/reflect-$host.log"; fail "reflector in $host not up"; }
done

cat >"$TMP/inv.yml" <<'YAML'
# No settings but the path tests' duration: ICMP every 10 s (every 5 s for a conference's
# participants from its first pre-flight mark), path tests at 2 Mbit/s, AF41, at most 1 % loss.
roles:
  router:
    stamp: {duration: 10s}
sites:
  - {id: bk, name: Tỉnh Bắc Kạn, level: province, devices: [{name: router, address: 10.202.3.1, role: router}]}
  - {id: d1, name: Huyện Pác Nặm, level: district, parent: bk, devices: [{name: router, address: 10.202.1.1, role: router}]}
  - {id: d1.c1, name: Xã Bộc Bố, level: commune, parent: d1, devices: [{name: router, address: 10.202.1.11, role: router}]}
  - {id: d1.c2, name: Xã Nhạn Môn, level: commune, parent: d1, devices: [{name: router, address: 10.202.1.12, role: router}]}
  - {id: d2, name: Huyện Na Rì, level: district, parent: bk, devices: [{name: router, address: 10.202.2.1, role: router}]}
  - {id: d2.c1, name: Xã Kim Hỷ, level: commune, parent: d2, devices: [{name: router, address: 10.202.2.11, role: router}]}
  - {id: d2.c2, name: Xã Lương Thượng, level: commune, parent: d2, devices: [{name: router, address: 10.202.2.12, role: router}]}
YAML

SP_NETNS=$P
start_siteprobe "$TMP/inv.yml"
PR=$(free_port); AM=$(free_port); WH=$(free_port)
# The shipped Alertmanager config, receivers pointed at the webhook, critical group_interval 10 s.
python3 - "$ROOT/alerts/alertmanager.yml" "$TMP/am.yml" "$WH" <<'PY'
import re, sys
src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3]
text, n = re.subn(r"http://127\.0\.0\.1:\d+/", f"http://127.0.0.1:{port}/", open(src).read())
assert n == 3, "expected three receiver URLs (pager, chat, heartbeat) in alertmanager.yml"
text, n = re.subn(r"(\n    - matchers: \['severity=\"critical\"'\]\n      receiver: pager\n(?:      .*\n)*?      group_interval:) 1m", r"\1 10s", text)
assert n == 1, "expected the pager route's group_interval: 1m in alertmanager.yml"
open(dst, "w").write(text)
PY
cat >"$TMP/prom.yml" <<YAML
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: ["$ROOT/alerts/siteprobe.rules.yml", "$ROOT/alerts/siteprobe.sla.rules.yml"]
alerting: {alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$AM"]}]}]}
scrape_configs:
  - job_name: siteprobe
    static_configs: [{targets: ["127.0.0.1:$SP_PORT"]}]
YAML
touch "$TMP/notes.jsonl"
ip netns exec "$P" python3 "$ROOT/tests/integration/webhook.py" "$WH" "$TMP/notes.jsonl" &
CLEANUPS+=("kill $!")
ip netns exec $P prometheus-alertmanager --config.file="$TMP/am.yml" --storage.path="$TMP/am" \
  --web.listen-address="127.0.0.1:$AM" --cluster.listen-address= >"$TMP/am.log" 2>&1 &
CLEANUPS+=("kill $!")
ip netns exec $P prometheus --config.file="$TMP/prom.yml" --storage.tsdb.path="$TMP/prom" \
  --web.listen-address="127.0.0.1:$PR" >"$TMP/prom.log" 2>&1 &
CLEANUPS+=("kill $!")
for _ in $(seq 1 100); do
  ip netns exec $P curl -fsS "http://127.0.0.1:$PR/-/ready" >/dev/null 2>&1 &&
    ip netns exec $P curl -fsS "http://127.0.0.1:$AM/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
ip netns exec $P curl -fsS "http://127.0.0.1:$AM/-/ready" >/dev/null || { cat "$TMP/am.log"; fail "alertmanager not ready"; }
ip netns exec $P curl -fsS "http://127.0.0.1:$PR/-/ready" >/dev/null || { cat "$TMP/prom.log"; fail "prometheus not ready"; }

notes() {  # notes STATUS -> "alertname district conference severity receiver", one line per notified alert
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    n = json.loads(l)
    if n["status"] == sys.argv[2] and n["labels"].get("alertname") != "Watchdog":  # always firing
        lab = n["labels"]
        print(lab.get("alertname"), lab.get("district") or "-", lab.get("conference", "-"), lab.get("severity"), n["receiver"])' \
    "$TMP/notes.jsonl" "$1"
}
# quiet_except NAME DISTRICT...: fails if Prometheus has any firing alert other than NAME for one of
# the DISTRICTs, or any alert at all, even pending, about district d2 (the non-participant). Other
# pending ones are only shown.
quiet_except() {
  ip netns exec $P curl -fsS "http://127.0.0.1:$PR/api/v1/alerts" | python3 -c 'import json,sys
name, districts, bad = sys.argv[1], sys.argv[2:], 0
for a in json.load(sys.stdin)["data"]["alerts"]:
    l = a["labels"]
    if l["alertname"] == "Watchdog":  # always firing, by design
        continue
    if l.get("district") == "d2" or not (l["alertname"] == name and l.get("district") in districts):
        print(a["state"], l["alertname"], l.get("district", "-"), l.get("conference", "-"), l.get("site", "-"))
        bad |= a["state"] == "firing" or l.get("district") == "d2"
sys.exit(bad)' "$@" || fail "unexpected alerts in Prometheus"
}
# b_silent: district B has no verdict series and no notification.
b_silent() {
  local s f
  snapshot
  for s in d2 d2.c1 d2.c2 bk; do
    for f in siteprobe_conference_participant_ready siteprobe_conference_participant_not_ready_reason; do
      [ "$(metric $f "site=\"$s\"")" = absent ] || fail "non-participant $s has $f: $(grep "^$f" "$SNAPSHOT")"
    done
  done
  unsnap
  local firing
  firing=$(notes firing)
  [ -z "$firing" ] || [ "$firing" = "ConferencePreflightNotReady d1 $CONF critical pager" ] ||
    { cat "$TMP/notes.jsonl"; fail "unexpected notifications"; }
  [ -z "$(notes resolved)" ] || { cat "$TMP/notes.jsonl"; fail "unexpected resolved notifications"; }
}

for s in bk d1 d1.c1 d1.c2 d2 d2.c1 d2.c2; do wait_for 'v == 1 or v == 2' siteprobe_site_state "site=\"$s\"" 40; done
pass "all 7 sites up, every router behind a district answering STAMP through its policer"
sleep 10  # Prometheus scrapes and evaluates the healthy network for a while
[ -z "$(notes firing)" ] || { cat "$TMP/notes.jsonl"; fail "notifications while everything is up"; }
quiet_except none

# The conference, by a reload: it starts in 4 to 5 minutes (UTC+7), so its only pre-flight mark,
# T-5, is already due and fires at once; district A's subtree takes part, B does not.
python3 - "$CONF" >>"$TMP/inv.yml" <<'PY'
import datetime, sys
start = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=7))) + datetime.timedelta(minutes=5)
print(f"""conferences:
  - name: {sys.argv[1]}
    dates: [{start:%Y-%m-%d}]
    start: "{start:%H:%M}"
    time_zone: "+07:00"
    duration: 30m
    participants: [{{district: d1}}]
    preflight: [5m]""")
PY
"$SP_BIN" check "$TMP/inv.yml" >/dev/null || fail "the inventory with the conference does not check"
t0=$(date +%s)
kill -HUP "$SP_PID"
wait_for 'v == 1' siteprobe_conference_preflight "conference=\"$CONF\"" 10
wait_for 'v == 1' siteprobe_config_last_reload_successful '' 5
pass "conference $CONF added by a reload: pre-flight under way after $(($(date +%s) - t0)) s"

# Three path tests of 10 s, one at a time through district A (path_test_streams_per_subtree 1).
for s in d1 d1.c1 d1.c2; do
  wait_for 'v == 0' siteprobe_conference_participant_ready "conference=\"$CONF\",site=\"$s\",district=\"d1\"" 90
  wait_for 'v == 1' siteprobe_conference_participant_not_ready_reason "conference=\"$CONF\",site=\"$s\",reason=\"path_loss\"" 5
done
t_verdict=$(($(date +%s) - t0))
rc=0
ip netns exec $P "$SP_BIN" readiness --url "$SP_URL" --conference "$CONF" --lang en >"$TMP/readiness.txt" 2>&1 || rc=$?
sed 's/^/  readiness: /' "$TMP/readiness.txt"
[ -z "$(notes firing)" ] || { cat "$TMP/notes.jsonl"; fail "paged before the readiness check (too early: the rule has for: 2m)"; }
[ "$rc" = 1 ] || fail "readiness --conference $CONF: exit $rc, want 1 (participants not ready)"
for s in d1.c1 d1.c2; do
  grep -qE "\($s\)  NOT READY  path_loss  router: loss [0-9.]+ % at 2 Mbit/s" "$TMP/readiness.txt" ||
    fail "readiness must name commune $s NOT READY, path_loss, with the figure"
done
! grep -qE '\(d2(\.c[12])?\)' "$TMP/readiness.txt" || fail "readiness lists a site of district d2, which does not take part"
b_silent
pass "A's 3 sites NOT READY (path_loss) ${t_verdict} s into the pre-flight; readiness exits 1 naming d1.c1 and d1.c2, before any page"

# District B's path is policed just the same: a path test at call rate through it fails too.
J=$(ip netns exec $P "$SP_BIN" path-test --format json --duration 10s 10.202.2.11 || true)
echo "path test through B's policer: $J"
python3 -c 'import json,sys; j = json.loads(sys.argv[1]); sys.exit(0 if j["result"] == "loss" and j["loss"] > 0.05 else 1)' "$J" ||
  fail "a path test through district B's policer should lose over 5 %"
pass "B's path loses as much at 2 Mbit/s, yet B is not a participant"

# The page: the rule's 2 minutes after the first verdict, plus evaluation and group_wait.
until notes firing | grep -q "^ConferencePreflightNotReady d1 $CONF "; do
  quiet_except ConferencePreflightNotReady d1
  b_silent
  [ $(($(date +%s) - t0)) -le 240 ] || { cat "$TMP/notes.jsonl" >&2; fail "no page for district d1 within 240 s of the pre-flight start"; }
  sleep 2
done
t=$(($(date +%s) - t0))
echo "pre-flight start to page: ${t} s"
[ "$(notes firing)" = "ConferencePreflightNotReady d1 $CONF critical pager" ] || { cat "$TMP/notes.jsonl"; fail "expected exactly one notification, ConferencePreflightNotReady d1 to the pager"; }
pass "one critical page, ConferencePreflightNotReady district d1 conference $CONF, to the pager ${t} s after the pre-flight started"

# Three pager group_intervals more: no second page, nothing about B, nothing else firing.
for _ in 1 2 3 4 5 6; do quiet_except ConferencePreflightNotReady d1; b_silent; sleep 5; done
[ "$(notes firing)" = "ConferencePreflightNotReady d1 $CONF critical pager" ] || { cat "$TMP/notes.jsonl"; fail "notified again"; }
# Over the whole run, Prometheus never stored a verdict or an alert for district B.
for q in "siteprobe_conference_participant_ready{district=\"d2\"}" "siteprobe_conference_participant_not_ready_reason{district=\"d2\"}" "ALERTS{district=\"d2\"}"; do
  r=$(ip netns exec $P curl -fsS "http://127.0.0.1:$PR/api/v1/query" --data-urlencode "query=count_over_time(${q}[15m])")
  python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["data"]["result"] == [] else 1)' "$r" ||
    fail "Prometheus has $q during the run: $r"
done
for far in "$A A" "$B B"; do
  read -r ns name <<<"$far"
  dropped=$(ip netns exec "$ns" nft list table inet siteprobe_test | sed -nE 's/.*counter packets ([0-9]+).*/\1/p')
  echo "policer in district $name dropped ${dropped:-0} STAMP packets"
  [ "${dropped:-0}" -gt 0 ] || fail "district $name's policer dropped nothing"
done
pass "no second page, no alert or notification about district d2, nothing else firing"
