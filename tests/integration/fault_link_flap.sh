#!/usr/bin/env bash
# A link flapping every second for 20 s: siteprobe (in its own namespace) reaches host A over a
# veth pair whose probe-side end goes down and up every second, and host B over a second, steady
# link. /metrics is scraped every 250 ms throughout. The daemon must stay up and keep its loop
# responsive; A's counters stay monotonic with received <= sent, sends refused while the link is
# down are counted as send errors, its loss shows the outages and it is up with no loss within
# seconds of the link settling; B is never affected.
source "$(dirname "$0")/lib.sh"
need_root
need_netns

P=spfp$$ A=spfa$$ B=spfb$$
for ns in "$P" "$A" "$B"; do ip netns add "$ns"; CLEANUPS+=("ip netns del $ns"); done
ip -n $P link set lo up
ip link add pa$$ netns $P type veth peer name ap$$ netns $A
ip link add pb$$ netns $P type veth peer name bp$$ netns $B
ip -n $P addr add 10.254.11.1/30 dev pa$$; ip -n $A addr add 10.254.11.2/30 dev ap$$
ip -n $P addr add 10.254.12.1/30 dev pb$$; ip -n $B addr add 10.254.12.2/30 dev bp$$
for l in "$P pa$$" "$P pb$$" "$A ap$$" "$B bp$$" "$A lo" "$B lo"; do ip -n "${l% *}" link set "${l#* }" up; done

cat >"$TMP/inv.yml" <<'YAML'
defaults:
  icmp: {interval: 1s, timeout: 300ms, packets: 4, spacing: 100ms}
sites:
  - id: p
    name: Tỉnh
    level: province
    devices:
      - {name: a, address: 10.254.11.2, role: router}
      - {name: b, address: 10.254.12.2, role: router}
YAML
SP_NETNS=$P
start_siteprobe "$TMP/inv.yml"
wait_for 'v == 1' siteprobe_device_up 'device="a"' 10
wait_for 'v == 1' siteprobe_device_up 'device="b"' 10
sleep 1.5   # a whole round of b, so its loss gauge reads 0 from here on

mkdir "$TMP/s"
( i=0; while [ ! -e "$TMP/stop" ]; do in_ns curl -fsS "$SP_URL/metrics" >"$TMP/s/$(printf %05d $i)" || true; i=$((i + 1)); sleep 0.25; done ) &
SCRAPER=$!
CLEANUPS+=("touch $TMP/stop; wait $SCRAPER")
for _ in $(seq 10); do
  ip -n $P link set pa$$ down; sleep 1
  ip -n $P link set pa$$ up; sleep 1
done
kill -0 "$SP_PID" || fail "daemon died while the link flapped"
pass "20 s of flapping, daemon up"
wait_for 'v == 1' siteprobe_device_up 'device="a"' 10
wait_for 'v == 0' siteprobe_icmp_loss_ratio 'device="a"' 10
pass "link settled: a up again with no loss"
touch "$TMP/stop"; wait $SCRAPER

python3 - "$TMP/s" <<'PY' || fail "metrics wrong during the flapping (see above)"
import os, re, sys
d = sys.argv[1]
prev, bad, n, a_loss, a_down = {}, 0, 0, 0.0, 0
for f in sorted(os.listdir(d)):
    text = open(os.path.join(d, f)).read()
    if not text.endswith("\n") or "siteprobe_build_info" not in text:
        continue
    n += 1
    cur = {(m[0], m[1]): float(m[2]) for m in re.findall(
        r'^(siteprobe_\w+)\{[^}]*device="([ab])"[^}]*\} (\S+)$', text, re.M)}
    for dev in "ab":
        s, r = cur[("siteprobe_icmp_packets_sent_total", dev)], cur[("siteprobe_icmp_packets_received_total", dev)]
        if r > s: print(f"{f}: {dev} received {r} > sent {s}"); bad += 1
    for name in ("siteprobe_icmp_packets_sent_total", "siteprobe_icmp_packets_received_total"):
        for dev in "ab":
            k = (name, dev)
            if cur[k] < prev.get(k, 0): print(f"{f}: {k} went back"); bad += 1
    if cur[("siteprobe_icmp_loss_ratio", "b")] != 0 or cur[("siteprobe_device_up", "b")] != 1:
        print(f"{f}: steady device b affected: loss {cur[('siteprobe_icmp_loss_ratio', 'b')]}"); bad += 1
    a_loss = max(a_loss, cur[("siteprobe_icmp_loss_ratio", "a")])
    a_down += cur[("siteprobe_device_up", "a")] == 0
    prev.update(cur)
print(f"{n} scrapes: a's highest loss {a_loss}, a down in {a_down}; a sent {prev[('siteprobe_icmp_packets_sent_total', 'a')]:.0f}"
      f" received {prev[('siteprobe_icmp_packets_received_total', 'a')]:.0f}")
if a_loss == 0: print("the outages never showed in a's loss"); bad += 1
sys.exit(1 if bad or n < 40 else 0)
PY
errs=$(metric siteprobe_icmp_send_errors_total 'family="ipv4"')
ge "$errs" 10 || fail "only $errs send errors counted; sends fail while the link is down"
lag=$(metric siteprobe_loop_lag_seconds)
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.5 else 1)" "$lag" || fail "loop lag $lag s"
pass "counters monotonic, received <= sent, $errs failed sends counted, a's loss shows the outages, b unaffected, loop lag $lag s"
