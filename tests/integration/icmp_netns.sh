#!/usr/bin/env bash
# Real ICMP across veth links to test hosts in network namespaces this script creates:
#  - host A: its link is taken down, then up again -> siteprobe_device_up 0, then 1;
#  - host B: nftables drops 30 % of echo requests -> measured loss within +-10 points over >= 200 probes;
#  - a DNS name that cannot resolve (the prober namespace's resolver points at nothing) -> a
#    failure counter and a down device, never a crash or a blocked loop.
# siteprobe runs inside its own namespace too, so no packet touches the host's network.
source "$(dirname "$0")/lib.sh"
need_root
need_netns
command -v nft >/dev/null || fail "nft not installed (apt-get install nftables)"

P=spp$$ A=spa$$ B=spb$$
for ns in "$P" "$A" "$B"; do ip netns add "$ns"; CLEANUPS+=("ip netns del $ns"); done
mkdir -p /etc/netns/$P
echo "nameserver 127.0.0.1" >/etc/netns/$P/resolv.conf   # nothing listens there
CLEANUPS+=("rm -rf /etc/netns/$P")
ip -n $P link set lo up
# Test-host addresses live only on these veth pairs, inside namespaces this test owns.
ip link add pa$$ netns $P type veth peer name ap$$ netns $A
ip link add pb$$ netns $P type veth peer name bp$$ netns $B
ip -n $P addr add 10.254.1.1/30 dev pa$$; ip -n $A addr add 10.254.1.2/30 dev ap$$
ip -n $P addr add 10.254.2.1/30 dev pb$$; ip -n $B addr add 10.254.2.2/30 dev bp$$
for l in "$P pa$$" "$P pb$$" "$A ap$$" "$B bp$$" "$A lo" "$B lo"; do ip -n "${l% *}" link set "${l#* }" up; done
ip netns exec $B nft -f - <<NFT
table inet siteprobe_test {
  chain input {
    type filter hook input priority 0;
    icmp type echo-request numgen random mod 100 < 30 drop
  }
}
NFT

cat >"$TMP/inv.yml" <<'YAML'
defaults:
  icmp: {interval: 1s, timeout: 300ms, packets: 10, spacing: 20ms}
sites:
  - id: p
    name: Tỉnh
    level: province
    devices:
      - {name: unresolvable, address: gone.siteprobe.test, role: server}
  - id: a
    name: Huyện A
    level: district
    parent: p
    devices:
      - {name: router, address: 10.254.1.2, role: router}
  - id: b
    name: Huyện B
    level: district
    parent: p
    devices:
      - {name: router, address: 10.254.2.2, role: router}
YAML
SP_NETNS=$P
start_siteprobe "$TMP/inv.yml"

wait_for 'v == 1' siteprobe_device_up 'site="a"' 10
wait_for 'v >= 1' siteprobe_icmp_packets_received_total 'site="b"' 10
snapshot; s0=$(metric siteprobe_icmp_packets_sent_total 'site="b"'); r0=$(metric siteprobe_icmp_packets_received_total 'site="b"'); unsnap

# Link down on A while B's loss is being measured.
ip -n $A link set ap$$ down
wait_for 'v == 0' siteprobe_device_up 'site="a"' 5
wait_for 'v == 1' siteprobe_icmp_loss_ratio 'site="a"' 3
pass "host A link down -> siteprobe_device_up 0, loss 1"
ip -n $A link set ap$$ up
wait_for 'v == 1' siteprobe_device_up 'site="a"' 10
pass "host A link up -> siteprobe_device_up 1"

wait_for 'v >= 1' siteprobe_dns_lookup_failures_total 'site="p",device="unresolvable"' 10
[ "$(metric siteprobe_device_up 'site="p",device="unresolvable"')" = 0 ] || fail "unresolvable device up"
[ "$(metric siteprobe_icmp_packets_sent_total 'site="p",device="unresolvable"')" = 0 ] || fail "sent to an unresolved name"
pass "unresolvable DNS name: failure counted, device down, daemon alive"

wait_for "v >= $s0 + 250" siteprobe_icmp_packets_sent_total 'site="b"' 40
sleep 0.5   # let the last round's replies arrive
snapshot; s1=$(metric siteprobe_icmp_packets_sent_total 'site="b"'); r1=$(metric siteprobe_icmp_packets_received_total 'site="b"'); unsnap
loss=$(python3 -c "import sys; s0,r0,s1,r1=map(float,sys.argv[1:]); print(round(100*(1-(r1-r0)/(s1-s0)),1))" "$s0" "$r0" "$s1" "$r1")
echo "host B: $((${s1%.*} - ${s0%.*})) probes, measured loss $loss % (nftables drops 30 %)"
python3 -c "import sys; sys.exit(0 if 20 <= float(sys.argv[1]) <= 40 else 1)" "$loss" || fail "loss $loss % not within 30 +- 10"
[ "$(metric siteprobe_icmp_invalid_replies_total 'reason="source"')" = 0 ] || fail "invalid replies"
pass "30 % nftables loss measured as $loss %"
