#!/usr/bin/env bash
# A stalled prober never reports network loss: 10,000 loopback targets at 1 Hz (every reply comes
# back, so any loss is the prober's own) while the daemon is
# - starved: four busy processes compete for the two cores, and its CPU is capped at 10 % of one
#   core by a cgroup (cpu.max or v1 cfs_quota, where the test can make one);
# - frozen with SIGSTOP for 300 ms, 800 ms and 2 s in the middle of rounds.
# Wanted after each: no device with loss in any round (each round's siteprobe_icmp_loss_ratio is
# sampled every 0.3 s for 5 s), no site state change, and the stalls counted in
# siteprobe_loop_stalls_total. N=... overrides the target count.
source "$(dirname "$0")/lib.sh"
need_root
# The ASan build is several times slower: fewer targets, same stalls.
if ldd "$SP_BIN" | grep -q libasan; then N=${N:-3000}; else N=${N:-10000}; fi

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
sleep 6  # every target has run rounds; states settled

# Devices whose last round lost anything, sampled every 0.3 s for 5 s (a round's loss shows for 1 s).
lossy() {
  for _ in $(seq 1 16); do scrape >>"$TMP/samples"; sleep 0.3; done
  awk '/^siteprobe_icmp_loss_ratio\{/ && $NF != "0" && $NF != "NaN" {
         match($0, /device="[^"]*"/); print substr($0, RSTART, RLENGTH) }' "$TMP/samples" | sort -u | wc -l
  rm -f "$TMP/samples"
}
counter() { scrape | awk -v n="$1" '$1 == n {print $2}'; }
changes() { grep -c 'msg="site state changed"' "$TMP/siteprobe.log" || true; }
before=$(lossy)
echo "before any stall: $before devices with loss"
fails=0
# Starved: CPU hogs (bounded: killed below or by the cleanup), and a CPU cap where a cgroup can be made.
changes0=$(changes) stalls0=$(counter siteprobe_loop_stalls_total)
for _ in 1 2 3 4; do timeout 20 sh -c 'while :; do :; done' & CLEANUPS+=("kill $! 2>/dev/null"); done
cg=""
if [ -w /sys/fs/cgroup/cgroup.subtree_control ] && mkdir "/sys/fs/cgroup/sptest$$" 2>/dev/null; then
  cg=/sys/fs/cgroup/sptest$$; echo "10000 100000" >"$cg/cpu.max" 2>/dev/null || true
elif [ -d /sys/fs/cgroup/cpu ] && mkdir "/sys/fs/cgroup/cpu/sptest$$" 2>/dev/null; then
  cg=/sys/fs/cgroup/cpu/sptest$$; echo 100000 >"$cg/cpu.cfs_period_us"; echo 10000 >"$cg/cpu.cfs_quota_us"
fi
if [ -n "$cg" ]; then
  echo "$SP_PID" >"$cg/cgroup.procs" || true
  CLEANUPS+=("echo $SP_PID >$(dirname "$cg")/cgroup.procs; rmdir $cg")
fi
n=$(lossy)
if [ -n "$cg" ]; then echo "$SP_PID" >"$(dirname "$cg")/cgroup.procs"; fi
pkill -f "while :; do :; done" || true
changes1=$(changes) stalls1=$(counter siteprobe_loop_stalls_total)
echo "starved (4 CPU hogs${cg:+, capped at 10 % of a core}): $n devices with loss, $((changes1 - changes0)) state changes, loop_stalls_total +$((stalls1 - stalls0))"
[ "$n" = 0 ] && [ "$changes1" = "$changes0" ] || fails=$((fails + 1))
sleep 2
for stall in 0.3 0.8 2; do
  changes0=$(changes) stalls0=$(counter siteprobe_loop_stalls_total)
  kill -STOP "$SP_PID"; sleep "$stall"; kill -CONT "$SP_PID"
  n=$(lossy)
  changes1=$(changes) stalls1=$(counter siteprobe_loop_stalls_total)
  unjudged=$(counter siteprobe_icmp_stalled_rounds_total)
  echo "stall ${stall}s: $n devices with loss, $((changes1 - changes0)) state changes, loop_stalls_total +$((stalls1 - stalls0)), rounds without verdict so far $unjudged"
  [ "$n" = 0 ] && [ "$changes1" = "$changes0" ] && [ "$stalls1" -gt "$stalls0" ] || fails=$((fails + 1))
done
[ "$fails" -eq 0 ] || fail "$fails of 4 stalls became loss or state changes, or were not counted"
pass "starved, and stopped for 0.3, 0.8 and 2 s, at $N targets: no false loss, no state change, stalls counted"
