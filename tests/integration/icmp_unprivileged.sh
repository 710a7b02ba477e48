#!/usr/bin/env bash
# Without CAP_NET_RAW siteprobe falls back to unprivileged ICMP datagram sockets when
# net.ipv4.ping_group_range allows its group, and otherwise refuses to start with an error that
# names both fixes. Runs as user nobody inside a namespace of its own (the sysctl is per namespace).
source "$(dirname "$0")/lib.sh"
need_root
need_netns
command -v setpriv >/dev/null || fail "setpriv missing (util-linux)"

NS=spu$$
ip netns add $NS; CLEANUPS+=("ip netns del $NS")
ip -n $NS link set lo up
chmod 755 "$TMP"
cat >"$TMP/inv.yml" <<'YAML'
defaults:
  icmp: {interval: 1s, timeout: 300ms, packets: 3, spacing: 50ms}
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
      - {name: v4, address: 127.0.0.1, role: router}
      - {name: v6, address: "::1", role: router}
YAML
chmod 644 "$TMP/inv.yml"
as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all)

# Kernel default "1 0": no group may open ping sockets.
ip netns exec $NS sysctl -qw net.ipv4.ping_group_range="1 0"
set +e
out=$(ip netns exec $NS "${as_nobody[@]}" "$SP_BIN" --config "$TMP/inv.yml" --web.listen-address 127.0.0.1:0 2>&1); rc=$?
set -e
echo "$out" | tail -1
[ $rc -eq 1 ] || fail "started without any ICMP socket (rc=$rc)"
{ echo "$out" | grep -q "CAP_NET_RAW" && echo "$out" | grep -q "ping_group_range"; } || fail "error does not name both fixes"
pass "no raw socket, no ping group: clear error naming CAP_NET_RAW and ping_group_range, exit 1"

ip netns exec $NS sysctl -qw net.ipv4.ping_group_range="0 2147483647"
SP_PORT=$(free_port); SP_URL="http://127.0.0.1:$SP_PORT"; SP_NETNS=$NS
ip netns exec $NS "${as_nobody[@]}" "$SP_BIN" --config "$TMP/inv.yml" --web.listen-address "127.0.0.1:$SP_PORT" \
  >>"$TMP/siteprobe.log" 2>&1 &
SP_PID=$!
wait_for 'v == 1' siteprobe_device_up 'device="v4"' 10
wait_for 'v == 1' siteprobe_device_up 'device="v6"' 10
grep -q 'mode="ipv4=datagram ipv6=datagram"' "$TMP/siteprobe.log" || fail "not using datagram sockets"
wait_for 'v >= 6' siteprobe_icmp_packets_received_total 'device="v4"' 10
[ "$(metric siteprobe_icmp_loss_ratio 'device="v4"')" = 0 ] || fail "loss over datagram sockets"
[ "$(metric siteprobe_icmp_invalid_replies_total 'reason="cookie"')" = 0 ] || fail "invalid replies"
pass "unprivileged datagram sockets (IPv4 and IPv6) as user nobody: up, 0 loss"
