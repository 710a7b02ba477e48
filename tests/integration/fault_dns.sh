#!/usr/bin/env bash
# A DNS name that stops resolving, then resolves to another address. siteprobe runs in a network
# namespace whose /etc/hosts, nsswitch.conf ("hosts: files") and resolv.conf (nothing listening)
# come from /etc/netns/NAME/ (ip netns exec binds them over /etc), so lookups never leave it:
#  - resolves to 127.0.0.5: device up;
#  - the name is removed: each refresh counts a failure (logged once, not every time), the last
#    good address keeps being probed (device stays up), the daemon stays up;
#  - resolves to 127.0.0.66, where nftables drops echo requests: recovery logged once, the new
#    address is probed (device goes down), the failure counter keeps its value.
source "$(dirname "$0")/lib.sh"
need_root
need_netns
command -v nft >/dev/null || fail "nft not installed (apt-get install nftables)"

P=spdns$$
ip netns add $P; CLEANUPS+=("ip netns del $P")
ip -n $P link set lo up
mkdir -p /etc/netns/$P; CLEANUPS+=("rm -rf /etc/netns/$P")
echo "hosts: files" >/etc/netns/$P/nsswitch.conf
echo "nameserver 127.0.0.1" >/etc/netns/$P/resolv.conf
HOSTS=/etc/netns/$P/hosts
echo "127.0.0.5 gw.siteprobe.test" >$HOSTS   # later rewritten in place: the bind mount follows the inode
ip netns exec $P nft -f - <<'NFT'
table ip siteprobe_test {
  chain input {
    type filter hook input priority 0;
    ip daddr 127.0.0.66 icmp type echo-request drop
  }
}
NFT

cat >"$TMP/inv.yml" <<'YAML'
global: {dns_refresh: 10s}
defaults:
  icmp: {interval: 1s, timeout: 300ms, packets: 2, spacing: 50ms}
sites:
  - id: p
    name: Tỉnh
    level: province
    devices:
      - {name: r, address: 127.0.0.1, role: router}
      - {name: gw, address: gw.siteprobe.test, role: server}
YAML
SP_NETNS=$P
start_siteprobe "$TMP/inv.yml"
wait_for 'v == 1' siteprobe_device_up 'device="gw"' 10
[ "$(metric siteprobe_dns_lookup_failures_total 'device="gw"')" = 0 ] || fail "failures before any failure"
pass "name resolves: device up"

: >$HOSTS
wait_for 'v >= 1' siteprobe_dns_lookup_failures_total 'device="gw"' 15
snapshot; sent=$(metric siteprobe_icmp_packets_sent_total 'device="gw"'); unsnap
wait_for 'v >= 2' siteprobe_dns_lookup_failures_total 'device="gw"' 15
kill -0 "$SP_PID" || fail "daemon died"
[ "$(metric siteprobe_device_up 'device="gw"')" = 1 ] || fail "last known address no longer probed"
wait_for "v >= $sent + 4" siteprobe_icmp_packets_sent_total 'device="gw"' 5
[ "$(grep -c 'msg="DNS lookup failed' "$TMP/siteprobe.log")" = 1 ] || fail "failure not logged exactly once"
pass "name gone: failures counted ($(metric siteprobe_dns_lookup_failures_total 'device="gw"')), logged once, last address still probed"

failures=$(metric siteprobe_dns_lookup_failures_total 'device="gw"')
echo "127.0.0.66 gw.siteprobe.test" >$HOSTS
wait_for 'v == 0' siteprobe_device_up 'device="gw"' 20
[ "$(grep -c 'msg="DNS lookup recovered' "$TMP/siteprobe.log")" = 1 ] || fail "recovery not logged once"
ge "$(metric siteprobe_dns_lookup_failures_total 'device="gw"')" "$failures" || fail "failure counter went back"
[ "$(metric siteprobe_device_up 'device="r"')" = 1 ] || fail "literal device affected"
pass "name resolves to a new address: recovery logged, new address probed, counter kept"
