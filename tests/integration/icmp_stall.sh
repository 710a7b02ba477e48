#!/usr/bin/env bash
# A stalled prober never reports network loss: 10,000 loopback targets at 1 Hz (every reply comes
# back, so any loss is the prober's own), and the daemon is frozen with SIGSTOP for 300 ms, 800 ms
# and 2 s in the middle of rounds. Wanted: no lost echo (sent - received, less those in flight),
# no site state change after warm-up, and each stall visible in siteprobe_prober_stalls_total.
# N=... overrides the target count (the ASan build is slower).
source "$(dirname "$0")/lib.sh"
need_root
N=${N:-10000}

python3 - "$TMP/inv.yml" "$N" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
out = ["global: {icmp_max_packets_per_second: 100000}",
       "site_state: {down_after: 1, up_after: 1}",
       "defaults:", "  icmp: {interval: 1s, timeout: 500ms, packets: 1}",
       "sites:", "  - {id: p, name: Province, level: province}"]
per = 100
for s in range(0, n, per):
    out += [f"  - id: d{s // per}", f"    name: District {s // per}", "    level: district", "    parent: p",
            "    devices:"]
    for i in range(s, min(n, s + per)):
        out.append(f"      - {{name: r{i}, address: 127.{1 + i // 65025}.{i // 255 % 255}.{1 + i % 255}, role: router}}")
open(path, "w").write("\n".join(out) + "\n")
PY
start_siteprobe "$TMP/inv.yml"
sleep 8  # every target has run rounds; states settled

# Lost echoes so far: sent - received - in flight, over all targets.
lost() {
  scrape | python3 -c '
import sys
sent = recv = flight = stalls = 0
for l in sys.stdin:
    if l.startswith("siteprobe_icmp_packets_sent_total{"): sent += float(l.split()[-1])
    elif l.startswith("siteprobe_icmp_packets_received_total{"): recv += float(l.split()[-1])
    elif l.startswith("siteprobe_probes_in_flight{") and "icmp" in l: flight += float(l.split()[-1])
    elif l.startswith("siteprobe_prober_stalls_total"): stalls += float(l.split()[-1])
print(int(sent - recv - flight), int(stalls), int(sent))'
}
changes() { grep -c 'msg="site state changed"' "$TMP/siteprobe.log" || true; }
read -r lost0 stalls0 sent0 <<<"$(lost)"
changes0=$(changes)
echo "warm-up: $sent0 echoes sent, $lost0 lost, $changes0 state changes"
fails=0
for stall in 0.3 0.8 2; do
  kill -STOP "$SP_PID"; sleep "$stall"; kill -CONT "$SP_PID"
  sleep 4
  read -r lost1 stalls1 sent1 <<<"$(lost)"
  changes1=$(changes)
  echo "stall ${stall}s: $((sent1 - sent0)) sent, $((lost1 - lost0)) lost, $((changes1 - changes0)) state changes, stalls_total +$((stalls1 - stalls0))"
  [ $((lost1 - lost0)) -eq 0 ] && [ "$changes1" = "$changes0" ] && [ $((stalls1 - stalls0)) -ge 1 ] || fails=$((fails + 1))
  lost0=$lost1 stalls0=$stalls1 sent0=$sent1 changes0=$changes1
done
[ $fails -eq 0 ] || fail "$fails of 3 stalls became loss or state changes, or were not counted"
pass "stalls of 0.3, 0.8 and 2 s at $N targets: no false loss, no state change, each counted"
