#!/usr/bin/env bash
# Path diagnosis (issue #16 item 2): the real siteprobe traces toward a site's router through
# routers in network namespaces this script creates, which forward and send ICMP time-exceeded:
#
#   P (siteprobe) -- K (province) -- A (district) -- C (commune, and c.x behind it)
#                          \_________ B ____________/   (an alternative route)
#
#  1. Commune c has an expected_path (K, A): its periodic trace reaches the router at hop 3 and
#     siteprobe_path_changed is 0.
#  2. K's route to C moves via B: the next trace finds another hop 2, siteprobe_path_changed 1.
#  3. The link A-C is cut at C's end: c goes down (its parents answer) and one trace names A
#     (10.203.1.2, hop 2) as the last hop answering: in the metrics, the log and the readiness
#     report. c.x, unreachable behind c, is never traced.
source "$(dirname "$0")/lib.sh"
need_root
need_netns

P=sptp$$ K=sptk$$ A=spta$$ B=sptb$$ C=sptc$$
for ns in "$P" "$K" "$A" "$B" "$C"; do
  ip netns add "$ns"; CLEANUPS+=("ip netns del $ns"); ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
done
link() {  # link NS1 NS2 NET: a veth pair, NET.1/30 on NS1's end, NET.2 on NS2's, named after the peer
  ip link add "$2" netns "$1" type veth peer name "$1" netns "$2"
  ip -n "$1" addr add "$3.1/30" dev "$2"; ip -n "$2" addr add "$3.2/30" dev "$1"
  ip -n "$1" link set "$2" up; ip -n "$2" link set "$1" up
}
link "$P" "$K" 10.203.0
link "$K" "$A" 10.203.1
link "$A" "$C" 10.203.3
link "$K" "$B" 10.203.5
link "$B" "$C" 10.203.6
ip -n "$K" addr add 10.203.10.1/32 dev lo
ip -n "$A" addr add 10.203.11.1/32 dev lo
ip -n "$C" addr add 10.203.12.1/32 dev lo
ip -n "$C" addr add 10.203.12.2/32 dev lo
ip -n "$P" route add 10.203.0.0/16 via 10.203.0.2
ip -n "$K" route add default via 10.203.0.1
ip -n "$K" route add 10.203.11.1 via 10.203.1.2
ip -n "$K" route add 10.203.12.0/24 via 10.203.1.2
# A and B route only back toward P and on to C: no default route that could loop a packet back.
ip -n "$A" route add 10.203.0.0/30 via 10.203.1.1
ip -n "$A" route add 10.203.12.0/24 via 10.203.3.2
ip -n "$B" route add 10.203.0.0/30 via 10.203.5.1
ip -n "$B" route add 10.203.12.0/24 via 10.203.6.1
ip -n "$C" route add default via 10.203.3.1

cat >"$TMP/inv.yml" <<'YAML'
levels: [province, district, commune, village]
defaults:
  icmp: {interval: 2s, timeout: 500ms, packets: 2, spacing: 100ms}
trace: {interval: 10s, timeout: 1s, max_hops: 8}
sites:
  - {id: k, name: Tỉnh Bắc Kạn, level: province, devices: [{name: router, address: 10.203.10.1, role: router}]}
  - {id: a, name: Huyện Ba Bể, level: district, parent: k, devices: [{name: router, address: 10.203.11.1, role: router}]}
  - id: c
    name: Xã Chu Hương
    level: commune
    parent: a
    expected_path: [10.203.0.2, 10.203.1.2]
    devices:
      - {name: router, address: 10.203.12.1, role: router}
      - {name: vc, address: 10.203.12.2, role: vc_endpoint}
  - {id: c.x, name: Thôn Nà Đeng, level: village, parent: c, devices: [{name: router, address: 10.203.12.1, role: router}]}
YAML
SP_NETNS=$P
start_siteprobe "$TMP/inv.yml"
for s in k a c c.x; do wait_for 'v == 1 or v == 2' siteprobe_site_state "site=\"$s\"" 30; done
pass "all 4 sites up"

# 1. The periodic trace (splayed within the 10 s interval) reaches the router on the expected path.
wait_for 'v == 0' siteprobe_path_changed 'site="c"' 25
[ "$(metric siteprobe_path_last_hop_info 'site="c",hop="3",address="10.203.12.1",end="reached"')" = 1 ] ||
  fail "trace to c: $(scrape | grep '^siteprobe_path_last_hop_info')"
grep -q 'msg="path trace".*site=c .*end=reached.*last_hop=3.*hops="10.203.0.2 10.203.1.2 10.203.12.1"' "$TMP/siteprobe.log" ||
  fail "no 'path trace' log line with the three hops"
pass "c's trace: hops 10.203.0.2 10.203.1.2 10.203.12.1, on its expected path"

# 2. Another route: hop 2 is now B.
ip -n "$K" route replace 10.203.12.0/24 via 10.203.5.2
wait_for 'v == 1' siteprobe_path_changed 'site="c"' 25
grep -q 'msg="path changed".*site=c .*hops="10.203.0.2 10.203.5.2 10.203.12.1"' "$TMP/siteprobe.log" ||
  fail "no 'path changed' log line through B"
pass "route via B: siteprobe_path_changed 1 ($(grep -c 'msg="path changed"' "$TMP/siteprobe.log") log line)"
ip -n "$K" route replace 10.203.12.0/24 via 10.203.1.2
wait_for 'v == 0' siteprobe_path_changed 'site="c"' 25
pass "route back via A: siteprobe_path_changed 0"

# 3. Cut the link after hop 2 (C's end of A-C): c down, c.x unreachable, one trace of c only.
t0=$(date +%s%N)
ip -n "$C" link set "$A" down
wait_for 'v == 3' siteprobe_site_state 'site="c"' 20
wait_for 'v == 4' siteprobe_site_state 'site="c.x"' 10
wait_for 'v == 2' siteprobe_path_hops 'site="c"' 10
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$(metric siteprobe_path_last_hop_info 'site="c",hop="2",address="10.203.1.2",end="silent"')" = 1 ] ||
  fail "after the cut: $(scrape | grep '^siteprobe_path_last_hop_info')"
grep -q 'msg="path trace".*site=c .*end=silent.*last_hop=2.*address=10.203.1.2' "$TMP/siteprobe.log" ||
  fail "no 'path trace' log line ending at hop 2"
[ "$(metric siteprobe_path_last_hop_info 'site="c.x"')" = absent ] || fail "c.x (unreachable) was traced"
# One trace for the outage: within its 1 s timeout of c turning down, and no other before the
# periodic one (10 s after the last). The periodic traces go on while c is down.
sleep 3
python3 - "$TMP/siteprobe.log" <<'PY' || fail "not exactly one trace of c right after it went down"
import re, sys, datetime
ts = lambda l: datetime.datetime.fromisoformat(re.search(r"ts=(\S+)Z", l).group(1)).timestamp()
lines = open(sys.argv[1]).read().splitlines()
down = [ts(l) for l in lines if 'msg="site state changed" site=c ' in l and "to=down" in l]
traces = [ts(l) for l in lines if 'msg="path trace" site=c ' in l]
near = [t for t in traces if down and 0 <= t - down[0] <= 2.5]
print(f"down at {down}, traces after it: {[round(t - down[0], 2) for t in traces if down and t >= down[0]]}")
sys.exit(0 if len(down) == 1 and len(near) == 1 else 1)
PY
pass "cut after hop 2: c down, trace ends after 10.203.1.2 (hop 2), ${ms} ms from the cut to the exported hop; c.x not traced"

in_ns "$SP_BIN" readiness --url "$SP_URL" >"$TMP/readiness.txt" || true
grep -q 'site down (path ends after 10.203.1.2, hop 2)' "$TMP/readiness.txt" ||
  { cat "$TMP/readiness.txt"; fail "the readiness report does not name the last hop"; }
pass "readiness: $(grep -o 'site down (path ends after [^)]*)' "$TMP/readiness.txt" | head -1)"
echo "--- trace log lines"; grep 'msg="path' "$TMP/siteprobe.log"
