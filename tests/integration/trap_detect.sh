#!/usr/bin/env bash
# Detection time with and without a trap (issue #16): router R in a namespace, probed on its data
# link at the reference defaults (ICMP every 10 s, 5 packets 200 ms apart, 2 s timeout; down after
# 2 failed rounds). The data link is cut at R; R's linkDown goes out over its management link, as
# an SNMPv1 trap naming the data address as agent-addr (Debian's snmptrap). Measured from the cut:
# siteprobe_device_up 0 and siteprobe_site_state down, without a trap from the cut, and with the
# trap sent at the cut from the trap (snmptrap's own start-up is not a router's), RUNS times each
# (default 1; interleaved). Asserts: the trap's extra round starts within 1 s of the trap (or
# right after the round in flight); the extra rounds confirm a silent device back to back
# (site_state.down_after of them), so the site is down within 12 s of the trap, which no cut
# without one can give (two rounds on the 10 s grid: at least 12.8 s).
source "$(dirname "$0")/lib.sh"
need_root
need_netns
command -v snmptrap >/dev/null || fail "snmptrap missing (apt-get install snmp)"
export MIBS=
RUNS=${RUNS:-1}

P=sptdp$$ R=sptdr$$
for ns in "$P" "$R"; do ip netns add "$ns"; CLEANUPS+=("ip netns del $ns"); ip -n "$ns" link set lo up; done
ip link add mgmt netns "$P" type veth peer name mgmt netns "$R"
ip link add data netns "$P" type veth peer name data netns "$R"
ip -n "$P" addr add 10.204.1.1/30 dev mgmt; ip -n "$R" addr add 10.204.1.2/30 dev mgmt
ip -n "$P" addr add 10.204.2.1/30 dev data; ip -n "$R" addr add 10.204.2.2/30 dev data
for ns in "$P" "$R"; do ip -n "$ns" link set mgmt up; ip -n "$ns" link set data up; done

TP=$(free_port udp)
cat >"$TMP/inv.yml" <<YAML
auth:
  v1: {version: "1", community: "trap-v1-c0mmunity"}
traps: {listen: "10.204.1.1:$TP", debounce: 5s}
sites:
  - id: r
    name: Xã Nà Phặc
    level: province
    devices:
      - {name: router, address: 10.204.2.2, role: router, snmp: {auth: v1, port: 16161, interval: 300s, timeout: 300ms, retries: 0}}
YAML
SP_NETNS=$P
start_siteprobe "$TMP/inv.yml"
D='site="r",device="router"'

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# measure TRAP: restores the link, waits until up, cuts it (sending the trap if TRAP=1) and prints
# "device_up_ms site_down_ms".
measure() {
  local trap=$1 t0 up_ms="" down_ms="" v s
  ip -n "$R" link set data up
  wait_for 'v == 1' siteprobe_device_up "$D" 40
  wait_for 'v == 1 or v == 2' siteprobe_site_state 'site="r"' 40  # up (degraded while the loss window clears)
  sleep "0.$((RANDOM % 10))$((RANDOM % 10))"  # a phase of its own within the 10 s grid...
  sleep $((RANDOM % 10))
  local sent; sent=$(metric siteprobe_icmp_packets_sent_total "$D")
  t0=$(now_ms)
  ip -n "$R" link set data down
  if [ "$trap" = 1 ]; then
    ip netns exec "$R" snmptrap -v 1 -c trap-v1-c0mmunity "10.204.1.1:$TP" 1.3.6.1.4.1.8072.3.2.10 \
      10.204.2.2 2 0 '' 1.3.6.1.2.1.2.2.1.1.2 i 2
    local t_trap; t_trap=$(now_ms)
    while [ "$(metric siteprobe_icmp_packets_sent_total "$D")" = "$sent" ]; do
      [ $(($(now_ms) - t_trap)) -lt 1000 ] || fail "no extra ICMP round within 1 s of the trap"
    done
    echo "extra round $(($(now_ms) - t_trap)) ms after the trap was sent" >&2
    t0=$t_trap  # from the trap: snmptrap's own start-up (0.3-1 s here) is no router's delay
  fi
  while [ -z "$down_ms" ]; do
    v=$(metric siteprobe_device_up "$D"); s=$(metric siteprobe_site_state 'site="r"')
    [ -z "$up_ms" ] && [ "$v" = 0 ] && up_ms=$(($(now_ms) - t0))
    [ "$s" = 3 ] && down_ms=$(($(now_ms) - t0))
    [ $(($(now_ms) - t0)) -lt 40000 ] || fail "not down 40 s after the cut"
    sleep 0.1
  done
  echo "$up_ms $down_ms"
}
with=() without=()
for ((i = 0; i < RUNS; i++)); do
  read -r a b < <(measure 0); without+=("$a/$b")
  read -r a b < <(measure 1); with+=("$a/$b")
  # One round lasts 2.8 s (5 packets 200 ms apart, 2 s timeout); a round in flight at the trap may
  # have had answers from before the cut, and the extra rounds follow it. The site is down after 2
  # silent rounds: with the trap at most 3 rounds (8.4 s) plus the 1 s state evaluation; without
  # it, never before the next grid point's round, 10 s + 2.8 s after the cut.
  # device_up 0 after the second silent round: at most the round in flight and 2 extra rounds.
  [ "$a" -le 8600 ] || fail "with the trap, device_up 0 came ${a} ms after it (want within 3 rounds)"
  [ "$b" -le 12000 ] || fail "with the trap, the site was down ${b} ms after it (want under 12 s)"
done
grep -q 'msg="snmp trap".*kind=link_down' "$TMP/siteprobe.log" || fail "no trap log line"
echo "cut -> device_up 0 / site down (ms), ICMP every 10 s:"
echo "  without trap: ${without[*]}"
echo "  with trap:    ${with[*]}"
pass "trap detection measured ($RUNS run(s) each)"
