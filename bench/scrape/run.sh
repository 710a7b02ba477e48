#!/usr/bin/env bash
# /metrics at 10k and 100k ICMP targets: the old server (before) against the current one (after).
#
#   sudo bench/scrape/run.sh                        # NS="10000 100000", ROUNDS=2, SCRAPES=5
#   sudo NS=10000 ROUNDS=1 bench/scrape/run.sh
#
# Env: NS (target counts), ROUNDS (before/after runs interleaved: A B A B), SCRAPES (per mode and
#      run), WARMUP (s), AFTER (binary; default build/daemon/siteprobe), BEFORE (binary; default:
#      commit $BEFORE_COMMIT built in a temporary git worktree with lateness-36ce0b1.patch, which
#      only adds the loop-lateness histogram), NICE (niceness of the daemons and curl, e.g. -10 on a
#      machine shared with builds; default 0), KEEP=1 (keep the work directory).
# For each run: scrapes without and with `Accept-Encoding: gzip`: curl's time_total and
# size_download, peak RSS of the daemon during the scrapes (VmHWM, reset through clear_refs just
# before them) and how late the loop ran its 50 ms timer meanwhile (siteprobe_loop_lateness_seconds,
# read by one scrape before and one after them, both in the same mode); and that lateness over IDLE
# seconds (default 10) without scrapes, first.
# Only 127.0.0.0/8 is ever probed (bench/icmp/report.py gen).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NS=${NS:-"10000 100000"}
ROUNDS=${ROUNDS:-2}
SCRAPES=${SCRAPES:-5}
WARMUP=${WARMUP:-5}
NICE=${NICE:-0}
IDLE=${IDLE:-10}
BEFORE_COMMIT=${BEFORE_COMMIT:-36ce0b1}
AFTER=${AFTER:-$ROOT/build/daemon/siteprobe}
GEN="python3 $ROOT/bench/icmp/report.py"

die() { echo "run.sh: $*" >&2; exit 1; }
for c in curl python3 git cmake; do command -v "$c" >/dev/null || die "$c not found"; done
[[ $(id -u) == 0 ]] || die "run as root (raw ICMP sockets, /proc/PID/clear_refs)"
[[ -x $AFTER ]] || die "no binary at $AFTER (build: cmake --build $ROOT/build -j2)"

WORK=$(mktemp -d /tmp/siteprobe-bench-scrape.XXXXXX)
RESULTS=$WORK/results.jsonl
SP=""
cleanup() {
  if [[ -n $SP ]]; then kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true; fi
  if [[ -n ${TREE:-} ]]; then git -C "$ROOT" worktree remove --force "$TREE" || true; fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${BEFORE:-} ]]; then
  TREE=$WORK/before-src
  echo "building $BEFORE_COMMIT (+ lateness-36ce0b1.patch) in $TREE"
  git -C "$ROOT" worktree add -q --detach "$TREE" "$BEFORE_COMMIT"
  git -C "$TREE" apply "$HERE/lateness-36ce0b1.patch"
  { cmake -S "$TREE" -B "$TREE/build" -DSITEPROBE_WERROR=ON >"$WORK/before-build.log" 2>&1 &&
    cmake --build "$TREE/build" -j2 --target siteprobe >>"$WORK/before-build.log" 2>&1; } ||
    { tail -20 "$WORK/before-build.log"; die "cannot build $BEFORE_COMMIT"; }
  BEFORE=$WORK/siteprobe-before
  cp "$TREE/build/daemon/siteprobe" "$BEFORE"
fi
[[ -x $BEFORE ]] || die "no binary at $BEFORE"

kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# lateness MODE: the siteprobe_loop_lateness_seconds buckets, by one scrape in MODE, as "le:count ..."
lateness() {
  local enc=()
  [[ $1 == gzip ]] && enc=(--compressed)
  nice -n "$NICE" curl -s "${enc[@]}" --max-time 300 "$URL/metrics" |
    awk '/^siteprobe_loop_lateness_seconds_bucket/ { sub(/.*le="/, ""); sub(/"} /, ":"); printf "%s ", $0 }'
}

# run NAME BINARY N ROUND
run() {
  local name=$1 bin=$2 n=$3 round=$4 d=$WORK/n$3 port ival mode
  if (( n >= 100000 )); then ival=10; else ival=1; fi
  port=$($GEN port)
  URL=http://127.0.0.1:$port
  echo "-- round $round, $n targets, $name: load average $(cut -d' ' -f1-3 /proc/loadavg)"
  nice -n "$NICE" "$bin" --config "$d/inventory.yml" --web.listen-address "127.0.0.1:$port" >"$d/$name.log" 2>&1 &
  SP=$!
  local ok=0
  for _ in $(seq 600); do
    kill -0 "$SP" 2>/dev/null || break
    curl -sf -o /dev/null --max-time 2 "$URL/-/ready" && { ok=1; break; }
    sleep 0.2
  done
  if (( !ok )); then
    echo "   did not start: $(tail -2 "$d/$name.log")"
    echo "{\"n\":$n,\"server\":\"$name\",\"round\":$round,\"error\":\"did not start\"}" >>"$RESULTS"
    kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null || true; SP=""
    return
  fi
  sleep "$(( WARMUP > ival ? WARMUP : ival ))"  # every target's splayed schedule has started
  local rest; rest=$(kb "$SP" VmRSS)
  # the loop's lateness without scrapes, over IDLE seconds (from the start of one small-window scrape)
  local i0 i1
  i0=$(lateness plain); sleep "$IDLE"; i1=$(lateness plain)
  printf '{"n":%s,"server":"%s","round":%s,"mode":"idle","times":[],"l0":"%s","l1":"%s"}\n' \
    "$n" "$name" "$round" "$i0" "$i1" >>"$RESULTS"
  for mode in plain gzip; do
    local h=() l0 l1 times="" bytes=0 err="" out rc
    [[ $mode == gzip ]] && h=(-H 'Accept-Encoding: gzip')
    l0=$(lateness "$mode")
    echo 5 >"/proc/$SP/clear_refs"  # VmHWM := VmRSS
    for _ in $(seq "$SCRAPES"); do
      rc=0
      out=$(nice -n "$NICE" curl -s "${h[@]}" -o /dev/null --max-time 300 -w '%{http_code} %{time_total} %{size_download}' \
        "$URL/metrics") || rc=$?
      read -r code t bytes <<<"$out"
      if [[ $rc != 0 || $code != 200 ]]; then err="curl exit $rc, HTTP $code after $t s"; break; fi
      times+="$t,"
    done
    local peak; peak=$(kb "$SP" VmHWM || echo 0)
    kill -0 "$SP" 2>/dev/null || err="${err:+$err; }daemon died"
    l1=$(lateness "$mode")
    echo "   $mode: times ${times%,} s, $bytes bytes, RSS $((rest / 1024)) -> peak $((${peak:-0} / 1024)) MB${err:+, $err}"
    printf '{"n":%s,"server":"%s","round":%s,"mode":"%s","times":[%s],"bytes":%s,"rest_kb":%s,"peak_kb":%s,"l0":"%s","l1":"%s","error":"%s"}\n' \
      "$n" "$name" "$round" "$mode" "${times%,}" "${bytes:-0}" "$rest" "${peak:-0}" "$l0" "$l1" "$err" >>"$RESULTS"
  done
  stop "$name" "$n" "$round"
}
# stop NAME N ROUND: SIGTERM, then SIGKILL after 20 s (recorded)
stop() {
  kill "$SP" 2>/dev/null || true
  for _ in $(seq 200); do [[ $(awk '{print $3}' "/proc/$SP/stat" 2>/dev/null) =~ ^(Z|)$ ]] && break; sleep 0.1; done
  if kill -0 "$SP" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$SP/stat") != Z ]]; then
    echo "   still running 20 s after SIGTERM: killed"
    echo "{\"n\":$2,\"server\":\"$1\",\"round\":$3,\"error\":\"still running 20 s after SIGTERM\"}" >>"$RESULTS"
    kill -KILL "$SP" 2>/dev/null || true
  fi
  wait "$SP" 2>/dev/null || true
  SP=""
}

echo "before: $BEFORE ($("$BEFORE" --version)); after: $AFTER ($("$AFTER" --version), $(git -C "$ROOT" rev-parse --short HEAD))"
echo "host $(hostname), $(nproc) CPUs, kernel $(uname -r); $(date -u +%FT%TZ); $SCRAPES scrapes per mode and run; nice $NICE"
for n in $NS; do
  mkdir -p "$WORK/n$n"
  if (( n >= 100000 )); then $GEN gen "$n" 10 "$WORK/n$n"; else $GEN gen "$n" 1 "$WORK/n$n"; fi
  sed -i '/max_devices:/d' "$WORK/n$n/inventory.yml"  # unknown to the old binary; 100000 is the default
done
for round in $(seq "$ROUNDS"); do
  for n in $NS; do
    run before "$BEFORE" "$n" "$round"
    run after "$AFTER" "$n" "$round"
  done
done

IDLE=$IDLE python3 - "$RESULTS" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]

def lateness(rs):
    """(ticks, ticks later than 10 ms, bound of the latest tick) over the runs' histogram deltas."""
    if not rs:
        return None
    total, late, worst = 0, 0, 0.0
    for r in rs:
        b0 = dict(x.split(":") for x in r["l0"].split()) if r["l0"] else {}
        b1 = dict(x.split(":") for x in r["l1"].split()) if r["l1"] else {}
        if not b0 or not b1:
            return None
        d = {le: float(b1[le]) - float(b0[le]) for le in b1}
        n = d["+Inf"]
        total, late = total + n, late + n - d["0.01"]
        bounds = sorted((float(le), c) for le, c in d.items() if le != "+Inf")
        below = [le for le, c in bounds if c >= n]
        worst = max(worst, below[0] if below else float("inf"))
    return total, late, worst

out = {}
print()
print("| targets | mode | server | scrape s (median) | MB sent | RSS MB at rest → peak | loop lateness: max ≤ | ticks > 10 ms |")
print("|---|---|---|---|---|---|---|---|")
for n in sorted({r["n"] for r in rows}):
    for mode in ("plain", "gzip"):
        for server in ("before", "after"):
            rs = [r for r in rows if r["n"] == n and r["server"] == server and r.get("mode") == mode]
            idle = lateness([r for r in rows if r["n"] == n and r["server"] == server and r.get("mode") == "idle"])
            bad = [r["error"] for r in rows if r["n"] == n and r["server"] == server and r.get("error")]
            times = [t for r in rs for t in r["times"]]
            if not times:
                print(f"| {n} | {mode} | {server} | failed: {'; '.join(bad) or '?'} | | | | |")
                continue
            med = statistics.median(times)
            mb = max(r["bytes"] for r in rs) / 1e6
            rest = max(r["rest_kb"] for r in rs) / 1024
            peak = max(r["peak_kb"] for r in rs) / 1024
            lt = lateness(rs)
            lat = "n/a" if lt is None else ("> 1 s" if lt[2] == float("inf") else f"{lt[2] * 1000:g} ms")
            if lt and lt[0] == 0:
                lat = "timer never ran"  # the loop was starved
            late = "n/a" if lt is None else f"{lt[1]:.0f} of {lt[0]:.0f}"
            note = f" ({'; '.join(bad)})" if bad else ""
            if idle and mode == "plain":
                w = "> 1 s" if idle[2] == float("inf") else f"{idle[2] * 1000:g} ms"
                print(f"| {n} | idle {os.environ.get('IDLE', '10')} s | {server} | | | | {w} | {idle[1]:.0f} of {idle[0]:.0f} |")
            print(f"| {n} | {mode} | {server} | {med:.3f}{note} | {mb:.2f} | {rest:.0f} → {peak:.0f} | {lat} | {late} |")
            out[(n, mode, server)] = (med, mb, peak - rest)
        a, b = out.get((n, mode, "after")), out.get((n, mode, "before"))
        if a and b:
            print(f"| {n} | {mode} | after/before | {a[0] / b[0]:.2f}× | {a[1] / b[1]:.2f}× | growth {a[2]:.0f} vs {b[2]:.0f} MB | | |")
PY
