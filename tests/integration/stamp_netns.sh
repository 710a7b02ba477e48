#!/usr/bin/env bash
# The STAMP path test across a district router, in namespaces this test creates:
#   P (siteprobe) --veth-- D (district router, nftables) --veth-- C (commune: siteprobe reflect)
#  - baseline: a clean path; the packets, captured, decode in Wireshark's TWAMP-Test dissector
#    (tshark) with nothing malformed, and their sequence numbers and timestamps match siteprobe's;
#  - policer on D (limit rate over 200 kbytes/second drop, UDP 862): ICMP rounds lose 0 % while
#    the 2 Mbit/s stream loses what the policer takes, and the daemon says so with the figure;
#  - DSCP rewrite to CS0 on D: reported as rewritten;
#  - a silent reflector (dropped on C): "no reflector", not 100 % loss; a closed port too;
#  - 1 % random loss on D over >= 10,000 packets: measured within +-0.5 %, and on the forward path.
source "$(dirname "$0")/lib.sh"
need_root
need_netns
for c in nft tshark dumpcap promtool; do command -v $c >/dev/null || fail "$c not installed (scripts/install-deps.sh)"; done

P=stp$$ D=std$$ C=stc$$
for ns in "$P" "$D" "$C"; do ip netns add "$ns"; CLEANUPS+=("ip netns del $ns"); ip -n "$ns" link set lo up; done
# Test-host addresses live only on these veth pairs, inside namespaces this test owns.
ip link add pd$$ netns $P type veth peer name dp$$ netns $D
ip link add dc$$ netns $D type veth peer name cd$$ netns $C
ip -n $P addr add 10.254.31.1/30 dev pd$$; ip -n $D addr add 10.254.31.2/30 dev dp$$
ip -n $D addr add 10.254.32.1/30 dev dc$$; ip -n $C addr add 10.254.32.2/30 dev cd$$
for l in "$P pd$$" "$D dp$$" "$D dc$$" "$C cd$$"; do ip -n "${l% *}" link set "${l#* }" up; done
ip -n $P route add default via 10.254.31.2
ip -n $C route add default via 10.254.32.1
ip netns exec $D sysctl -qw net.ipv4.ip_forward=1
# The silent reflector: port 864 on C drops everything, with no ICMP answer.
ip netns exec $C nft -f - <<'NFT'
table inet silent { chain input { type filter hook input priority 0; udp dport 864 drop; }; }
NFT
district() {  # district 'RULE': the one rule of D's forward chain (toward the commune), or none
  ip netns exec $D nft delete table inet district 2>/dev/null || true
  [ -n "$1" ] || return 0
  ip netns exec $D nft -f - <<NFT
table inet district { chain toward { type filter hook forward priority -150; ip daddr 10.254.32.2 $1; }; }
NFT
}

REFLECT_PORT=$(free_port tcp)
ip netns exec $C "$SP_BIN" reflect --listen 10.254.32.2:862 --stateful \
  --web.listen-address "127.0.0.1:$REFLECT_PORT" >>"$TMP/reflector.log" 2>&1 &
RPID=$!
CLEANUPS+=("kill $RPID")
for _ in $(seq 1 50); do ip netns exec $C curl -fsS "127.0.0.1:$REFLECT_PORT/metrics" >/dev/null 2>&1 && break; sleep 0.1; done

cat >"$TMP/inv.yml" <<'YAML'
defaults:
  icmp: {interval: 1s, timeout: 500ms, packets: 10, spacing: 20ms}
sites:
  - id: p
    name: Tỉnh
    level: province
    devices:
      - {name: router, address: 10.254.31.1, role: router, stamp: {enabled: false}}
  - id: d
    name: Huyện Pác Nặm
    level: district
    parent: p
    devices:
      - {name: router, address: 10.254.31.2, role: router, stamp: {enabled: false}}
  - id: c
    name: Xã Bộc Bố
    level: commune
    parent: d
    devices:
      - {name: router, address: 10.254.32.2, role: router, stamp: {duration: 10s}}
YAML
SP_NETNS=$P
"$SP_BIN" check "$TMP/inv.yml" >/dev/null
start_siteprobe_lifecycle() {
  SP_PORT=$(free_port tcp); SP_URL="http://127.0.0.1:$SP_PORT"
  ip netns exec $P "$SP_BIN" --config "$1" --web.listen-address "127.0.0.1:$SP_PORT" --web.enable-lifecycle \
    >>"$TMP/siteprobe.log" 2>&1 &
  SP_PID=$!
  for _ in $(seq 1 100); do in_ns curl -fsS "$SP_URL/-/ready" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "siteprobe not ready"
}
start_siteprobe_lifecycle "$TMP/inv.yml"
path_test() { ip netns exec $P "$SP_BIN" path-test --format json "$@" || true; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# --- baseline, captured and decoded by Wireshark
ip netns exec $P dumpcap -q -i pd$$ -f "udp port 862" -w "$TMP/cap.pcapng" >"$TMP/dumpcap.log" 2>&1 &
DPID=$!
for _ in $(seq 1 50); do grep -q "Capturing on" "$TMP/dumpcap.log" && break; sleep 0.1; done
J=$(path_test --duration 2s 10.254.32.2)
sleep 0.5; kill -INT $DPID; wait $DPID || true
echo "baseline: $J"
[ "$(field "$J" result)" = ok ] || fail "clean path: $J"
tshark -r "$TMP/cap.pcapng" -d udp.port==862,twamp.test -T fields -E separator=/t -e udp.dstport \
  -e twamp.test.seq_number -e twamp.test.timestamp -e twamp.test.sender_seq_number \
  -e twamp.test.sender_timestamp -e frame.time_epoch -e _ws.malformed -e _ws.expert.severity \
  >"$TMP/decoded.tsv" 2>"$TMP/tshark.err" || true
head -4 "$TMP/decoded.tsv" | sed 's/^/  tshark: /'
python3 - "$TMP/decoded.tsv" "$J" <<'PY' || fail "tshark decode disagrees with siteprobe"
import json, statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
j = json.loads(sys.argv[2])
bad = [r for r in rows if r[6] or r[7]]
assert not bad, f"malformed or expert-flagged packets: {bad[:3]}"
sent = [r for r in rows if r[0] == "862"]
back = [r for r in rows if r[0] != "862"]
assert len(sent) == j["sent"], (len(sent), j["sent"])
assert len(back) == j["received"], (len(back), j["received"])
seqs = [int(r[1]) for r in sent]
# A packet the sender fell too far behind for is skipped but keeps its sequence number (the grid):
# the numbers sent rise by one except across those.
span = j["sent"] + j.get("skipped", 0)
assert seqs == sorted(set(seqs)) and all(j["seq_base"] <= q < j["seq_base"] + span for q in seqs), \
    ("sender sequence numbers", seqs[:3], j["seq_base"], span)
by_seq = {int(r[1]): r for r in sent}
rtts = []
for r in back:
    s = by_seq[int(r[3])]                     # answers a packet we sent ...
    assert r[4] == s[2], (r[4], s[2])         # ... with that packet's timestamp
    rtts.append(float(r[5]) - float(s[5]))
assert [int(r[1]) for r in back] == list(range(len(back))), "stateful reflector numbers from 0"
med = statistics.median(rtts)
assert abs(med - j["rtt_median_seconds"]) < 0.0005, (med, j["rtt_median_seconds"])
print(f"ok: tshark decoded {len(sent)} sender and {len(back)} reflector packets, none malformed; "
      f"sequence numbers and timestamps match; RTT median {med*1e3:.3f} ms on the wire vs "
      f"{j['rtt_median_seconds']*1e3:.3f} ms siteprobe")
PY

# --- policer: ping rate passes, call rate does not. A conference is added by a reload: it starts
# in 3 minutes (UTC+7), so its T-5 pre-flight mark fires at once and tests its one participant.
district 'udp dport 862 limit rate over 200 kbytes/second drop'
python3 - >>"$TMP/inv.yml" <<'PY'
import datetime
start = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=7))) + datetime.timedelta(minutes=3)
print(f"""conferences:
  - name: hop-tinh
    dates: [{start:%Y-%m-%d}]
    start: "{start:%H:%M}"
    duration: 30m
    participants: [c]
    preflight: [5m]""")
PY
kill -HUP "$SP_PID"
wait_for 'v == 1' siteprobe_conference_preflight 'conference="hop-tinh"' 10
wait_for 'v >= 1' siteprobe_path_test_runs_total 'site="c",result="loss"' 25
wait_for 'v == 0' siteprobe_conference_participant_ready 'conference="hop-tinh",site="c"' 5
[ "$(metric siteprobe_conference_participant_ready 'site="d"')" = absent ] || fail "a non-participant has a verdict"
in_ns curl -sS "$SP_URL/readiness?conference=hop-tinh" >"$TMP/preflight.txt"
sed 's/^/  readiness: /' "$TMP/preflight.txt"
grep -qE 'Xã Bộc Bố \(c\)  NOT READY  path_loss  router: loss [0-9.]+ % at 2 Mbit/s' "$TMP/preflight.txt" ||
  fail "the pre-flight table must say why c is not ready"
ip netns exec $P "$SP_BIN" readiness --url "$SP_URL" --conference hop-tinh >/dev/null && fail "readiness --conference: exit 0 with a participant not ready"
pass "pre-flight: the conference's participant is NOT READY for the policer, with the figure"
snapshot
icmp_loss=$(metric siteprobe_icmp_loss_ratio 'site="c"')
stream_loss=$(metric siteprobe_path_test_loss_ratio 'site="c",direction="round_trip"')
fwd_loss=$(metric siteprobe_path_test_loss_ratio 'site="c",direction="forward"')
ping_mos=$(metric siteprobe_device_mos 'site="c"')
call_mos=$(metric siteprobe_path_test_mos 'site="c"')
unsnap
echo "policer: ICMP loss $icmp_loss, stream loss $stream_loss (forward $fwd_loss), MOS at ping rate $ping_mos, at call rate $call_mos"
[ "$icmp_loss" = 0 ] || fail "ICMP must pass the UDP policer (loss $icmp_loss)"
# nftables' byte limit starts with a bucket of one second at its rate: over 10 s, 2 Mbit/s (250,000
# B/s at the IP level) through 200 kbytes/s (204,800 B/s) keeps 204,800 * 11 B of 2,500,000: 9.9 % lost.
python3 -c "import sys; e = 1 - 204800 * 11 / 2.5e6; sys.exit(0 if abs($stream_loss - e) < 0.04 and abs($fwd_loss - e) < 0.04 else 1)" \
  || fail "policer: 2 Mbit/s through 200 kbytes/s for 10 s should lose 9.9 %, forward (got $stream_loss, $fwd_loss)"
ge "$ping_mos" "$call_mos" || fail "MOS at call rate ($call_mos) above MOS at ping rate ($ping_mos)"
in_ns curl -fsS "$SP_URL/path-tests" | grep -E '^c/router .* loss [0-9.]+ % .*loss [0-9.]+ % at 2 Mbit/s' \
  || fail "/path-tests should say 'loss NN % at 2 Mbit/s': $(in_ns curl -fsS "$SP_URL/path-tests")"
pass "policer: ICMP 0 % loss, stream $stream_loss, reason given"

# --- DSCP rewritten to CS0 on the way there
district 'udp dport 862 ip dscp set cs0'
J=$(path_test --duration 1s 10.254.32.2)
echo "dscp: $J"
if ! { [ "$(field "$J" result)" = qos_rewritten ] && [ "$(field "$J" dscp)" = "rewritten to CS0" ] &&
  [ "$(field "$J" dscp_forward)" = 0 ]; }; then fail "DSCP rewrite not reported: $J"; fi
field "$J" reason | grep -q "QoS mark rewritten to CS0" || fail "reason: $J"
pass "DSCP rewrite to CS0 reported"

# --- no reflector: silent (dropped) and closed
district ''
J=$(path_test --duration 1s 10.254.32.2:864)
echo "silent: $J"
if ! { [ "$(field "$J" result)" = no_reflector ] && field "$J" reason | grep -q "nothing answered"; }; then
  fail "silent reflector: $J"
fi
[ "$(field "$J" sent)" = 3 ] || fail "no reflector: the stream must not be sent ($J)"
J=$(path_test --duration 1s 10.254.32.2:865)
if ! { [ "$(field "$J" result)" = no_reflector ] && field "$J" reason | grep -q "closed"; }; then
  fail "closed port: $J"
fi
pass "silent and closed reflectors read as 'no reflector', the stream never sent"

# --- 1 % random loss, forward only, over >= 10,000 packets
district 'udp dport 862 numgen random mod 100 < 1 drop'
J=$(path_test --size 100 --bitrate 2M --duration 5300ms --max-loss 5 10.254.32.2)
echo "random loss: $J"
python3 - "$J" <<'PY' || fail "1 % random loss not measured within 0.5 %"
import json, sys
j = json.loads(sys.argv[1])
n = j["sent"] - 3
assert n >= 10000, n
assert abs(j["loss"] - 0.01) <= 0.005, j["loss"]
assert abs(j["loss_forward"] - 0.01) <= 0.005 and j["loss_reverse"] <= 0.002, (j["loss_forward"], j["loss_reverse"])
print(f"ok: {n} packets, loss {j['loss']*100:.2f} % (forward {j['loss_forward']*100:.2f} %, reverse {j['loss_reverse']*100:.2f} %)")
PY

# The path-test series pass promtool's exposition checks (HELP, TYPE, names, units).
in_ns curl -fsS "$SP_URL/metrics" >"$TMP/metrics"
grep -q '^siteprobe_path_test_rtt_seconds_bucket{.*le="+Inf"}' "$TMP/metrics" || fail "path-test histogram"
promtool check metrics <"$TMP/metrics" >"$TMP/promtool.out" 2>&1 || { cat "$TMP/promtool.out" >&2; fail "promtool check metrics"; }
pass "promtool check metrics: clean with path-test series"

# The reflector is still up and says what it did.
ip netns exec $C curl -fsS "127.0.0.1:$REFLECT_PORT/metrics" | grep 'siteprobe_reflector_packets_total{result="reflected"}' >/dev/null \
  || fail "reflector metrics"
kill -0 $RPID || fail "reflector died"
pass "stamp_netns"
