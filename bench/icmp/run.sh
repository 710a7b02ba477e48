#!/usr/bin/env bash
# ICMP benchmark: siteprobe vs fping (loop mode and -Q) and a C floor program on N loopback
# targets, interleaved: REPEAT rounds, each round runs every tool once on every N.
#
#   sudo bench/icmp/run.sh                      # NS="1000 5000 10000 100000", WINDOW=30, WARMUP=5, REPEAT=3
#   sudo NS="1000 5000" WINDOW=10 REPEAT=2 bench/icmp/run.sh
#
# Env: NS, WINDOW (s), WARMUP (s), REPEAT (rounds), SITEPROBE (binary), FPING_I (fping -i, ms,
#      default 0.05), SCRAPE_EVERY (s, default 15: the all-in column's scrape interval),
#      KEEP=1 (keep the work directory with inventories and logs).
# Only 127.0.0.0/8 is ever probed. See bench/icmp/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NS=${NS:-"1000 5000 10000 100000"}
WINDOW=${WINDOW:-30}
WARMUP=${WARMUP:-5}
FPING_I=${FPING_I:-0.05}
REPEAT=${REPEAT:-3}
SCRAPE_EVERY=${SCRAPE_EVERY:-15}
SITEPROBE=${SITEPROBE:-$ROOT/build/daemon/siteprobe}
BASELINE=${BASELINE:-}  # another siteprobe binary (an earlier commit), run interleaved as siteprobe-baseline
REPORT="python3 $HERE/report.py"
OUT_MD=$HERE/results-latest.md

die() { echo "run.sh: $*" >&2; exit 1; }
for c in fping curl python3 cc; do
  command -v "$c" >/dev/null ||
    die "$c not found; install it with: apt-get install -y ${c/python3/python3-minimal}"
done
[[ -x $SITEPROBE ]] || die "no siteprobe binary at $SITEPROBE (build: cmake --build $ROOT/build -j2)"
[[ $(id -u) == 0 ]] || die "run as root (raw ICMP sockets for siteprobe and fping)"
[[ $REPEAT =~ ^[0-9]+$ && $REPEAT -ge 1 ]] || die "bad REPEAT: $REPEAT"
for n in $NS; do [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 1000000 ]] || die "bad N in NS: $n"; done

HZ=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/siteprobe-bench-icmp.XXXXXX)
RESULTS=$WORK/results.jsonl
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -0 "$p" 2>/dev/null || continue
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
la() { cut -d' ' -f1-3 /proc/loadavg; }
# utime+stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat; comm may hold spaces).
ticks() { local s f; s=$(<"/proc/$1/stat"); read -r -a f <<<"${s##*) }"; echo $(( f[11] + f[12] )); }
rss_mb() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
calc() { python3 -c "print($1)"; }
alive() { kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }
STOP_S=0 STOP_KILLED=0
stop() { # stop PID with SIGNAL, wait up to 20 s, then SIGKILL; sets STOP_S and STOP_KILLED
  local p=$1 sig=${2:-TERM} t0
  t0=$(now); STOP_KILLED=0
  kill -"$sig" "$p" 2>/dev/null || true
  for _ in $(seq 200); do alive "$p" || break; sleep 0.1; done
  if alive "$p"; then STOP_KILLED=1; kill -KILL "$p" 2>/dev/null || true; fi
  wait "$p" 2>/dev/null || true
  STOP_S=$(calc "round($(now) - $t0, 1)")
}
# sleep SECONDS while checking that PID stays alive; returns 1 if it died
watch_for() {
  local p=$1 end
  end=$(( $(date +%s%N) + $(calc "int($2 * 1e9)") ))
  while (( $(date +%s%N) < end )); do
    alive "$p" || return 1
    sleep 0.2
  done
  alive "$p"
}

# the binary embeds no commit: take the one its checkout had when the binary was written
BIN_MTIME=$(date -u -r "$SITEPROBE" +%FT%TZ)
BIN_COMMIT="$(git -C "$(dirname "$(realpath "$SITEPROBE")")" log -1 --until="$BIN_MTIME" --format=%h 2>/dev/null || echo ?) \
per its checkout, binary $SITEPROBE built $BIN_MTIME"
META="host $(hostname), $(nproc) CPUs, kernel $(uname -r), $(fping -v 2>&1 | head -1), \
siteprobe $("$SITEPROBE" --version | awk '{print $2}') ($BIN_COMMIT); \
window ${WINDOW}s after ${WARMUP}s warm-up, $REPEAT interleaved rounds, all-in scrape every ${SCRAPE_EVERY}s; load average at start $(la); $(date -u +%FT%TZ)"
echo "$META"
echo "work directory: $WORK"
FLOOR=$WORK/floor
cc -O2 -o "$FLOOR" "$HERE/floor.c" || die "cannot compile $HERE/floor.c"

bench_siteprobe() {
  local n=$1 ival=$2 rate=$3 d=$4 r=$5 tool=${6:-siteprobe} bin=${7:-$SITEPROBE} port sp url warm la0
  la0=$(la)
  echo "-- [round $r] $tool: $n targets @ $rate (load $la0)"
  if ! "$bin" check "$d/inventory.yml" >"$d/check.log" 2>&1; then
    cat "$d/check.log" >&2
    $REPORT add "$RESULTS" tool="$tool" round="$r" n="$n" rate="$rate" status=invalid-inventory \
      msg="$(tail -3 "$d/check.log")"
    return
  fi
  sed 's/^/   /' "$d/check.log"
  port=$($REPORT port)
  url=http://127.0.0.1:$port
  "$bin" --config "$d/inventory.yml" --web.listen-address "127.0.0.1:$port" \
    >"$d/$tool.log" 2>&1 &
  sp=$!
  PIDS+=("$sp")
  local t0 ok=0
  t0=$(now)
  for _ in $(seq 600); do
    alive "$sp" || break
    curl -sf -o /dev/null --max-time 2 "$url/-/ready" && { ok=1; break; }
    sleep 0.2
  done
  if (( !ok )); then
    $REPORT add "$RESULTS" tool="$tool" round="$r" n="$n" rate="$rate" status=failed-to-start \
      msg="$(tail -5 "$d/$tool.log")"
    stop "$sp"
    return
  fi
  echo "   ready after $(calc "round($(now) - $t0, 1)") s"
  # warm-up: at least one interval, so every target's splayed schedule has started
  warm=$(calc "max($WARMUP, $ival)")
  local crashed=0 ts0 tc0 tc1 ts1 c0 c1 s0 s1 rss0=""
  watch_for "$sp" "$warm" || crashed=1
  if (( !crashed )); then
    # counters are collected at the start of a scrape; CPU is read outside the scrapes
    rss0=$(rss_mb "$sp" VmRSS)
    ts0=$(now); s0=$($REPORT scrape "$url/metrics") || s0=""
    c0=$(ticks "$sp"); tc0=$(now)
    watch_for "$sp" "$WINDOW" || crashed=1
  fi
  if (( crashed )); then
    local rc=0; wait "$sp" || rc=$?
    $REPORT add "$RESULTS" tool="$tool" round="$r" n="$n" rate="$rate" status="crashed (exit $rc)" \
      msg="$(tail -5 "$d/$tool.log")"
    return
  fi
  c1=$(ticks "$sp"); tc1=$(now)
  local rss; rss=$(rss_mb "$sp" VmRSS)
  ts1=$(now); s1=$($REPORT scrape "$url/metrics") || s1=""
  if [[ -z $s0 || -z $s1 ]]; then
    $REPORT add "$RESULTS" tool="$tool" round="$r" n="$n" rate="$rate" status="scrape of /metrics failed" \
      msg="$(tail -3 "$d/$tool.log")"
    stop "$sp"
    return
  fi
  local hwm; hwm=$(rss_mb "$sp" VmHWM)
  # scrape timing: median of 5 curl runs; CPU spent per scrape beyond the probing rate
  local times=() size=0 ca cb ta tb out
  ca=$(ticks "$sp"); ta=$(now)
  for _ in 1 2 3 4 5; do
    out=$(curl -s -o /dev/null --max-time 120 -w '%{time_total} %{size_download}' "$url/metrics")
    times+=("${out% *}"); size=${out#* }
  done
  cb=$(ticks "$sp"); tb=$(now)
  alive "$sp" || crashed=1
  read -r sent0 recv0 drop0 serr0 late0 inv0 dup0 _ _ unans0 <<<"$s0"
  read -r sent1 recv1 drop1 serr1 late1 inv1 dup1 _ lag1 unans1 <<<"$s1"
  local sent=$((sent1 - sent0)) recv=$((recv1 - recv0))
  local pps cpu_rate cpu_per_1k loss naive med scrape_cpu allin
  pps=$(calc "$sent / ($ts1 - $ts0)")
  cpu_rate=$(calc "($c1 - $c0) / $HZ / ($tc1 - $tc0)")            # CPU seconds per second
  cpu_per_1k=$(calc "($cpu_rate / $pps * 1e6) if $pps > 0 else 'nan'")
  # false loss: growth of sum over targets of max(0, sent - received), over packets sent
  loss=$(calc "(100 * ($unans1 - $unans0) / $sent) if $sent > 0 else 'nan'")
  naive=$(calc "round(100 * (1 - $recv / $sent), 4) if $sent > 0 else 'nan'")
  med=$(printf '%s\n' "${times[@]}" | sort -g | sed -n 3p)
  scrape_cpu=$(calc "round(max(0, (($cb - $ca) / $HZ - $cpu_rate * ($tb - $ta))) / 5 * 1000, 1)")
  # all-in: probing plus one /metrics scrape every SCRAPE_EVERY s, per 1000 probes
  allin=$(calc "($cpu_per_1k + $scrape_cpu / $SCRAPE_EVERY / $pps * 1000) if $pps > 0 else 'nan'")
  echo "   sent $sent received $recv in window, CPU $(calc "round($cpu_rate * 100, 1)") %, all-in $(calc "round($allin, 1)") ms/1k"
  $REPORT add "$RESULTS" tool="$tool" round="$r" n="$n" rate="$rate" status=ok pps="$pps" \
    cpu_ms_per_1k="$cpu_per_1k" allin_ms_per_1k="$allin" la0="$la0" la1="$(la)" loss_pct="$loss" rss_mb="$rss" rss0_mb="$rss0" hwm_mb="$hwm" \
    scrape_ms="$(calc "$med * 1000")" scrape_mb="$(calc "$size / 1e6")" scrape_cpu_ms="$scrape_cpu" \
    sent="$sent" received="$recv" naive_loss_pct="$naive" drops="$((drop1 - drop0))" send_errors="$((serr1 - serr0))" \
    late="$((late1 - late0))" invalid="$((inv1 - inv0))" dups="$((dup1 - dup0))" loop_lag_ms="$lag1" \
    drops_since_start="$drop1" meta="$META"
  if (( crashed )); then
    $REPORT add "$RESULTS" tool="$tool" round="$r" n="$n" rate="$rate" status="crashed during scrapes" \
      msg="$(tail -5 "$d/$tool.log")"
  fi
  stop "$sp"
  if (( STOP_KILLED )); then
    echo "   siteprobe did not exit within 20 s of SIGTERM; killed"
    $REPORT add "$RESULTS" tool="$tool" round="$r" n="$n" rate="$rate" status="slow shutdown" \
      msg="still running 20 s after SIGTERM (SIGKILLed); log: $(tail -1 "$d/$tool.log")"
  else
    echo "   siteprobe exited $STOP_S s after SIGTERM"
  fi
  grep -E 'level=(warn|error)' "$d/$tool.log" | head -5 | sed 's/^/   log: /' || true
}

bench_fping() { # MODE: loop (-l -q: fping still prints a line per reply, to /dev/null) or Q (-l -Q)
  local n=$1 ival=$2 rate=$3 d=$4 r=$5 mode=$6 fp period err tool la0 qflag
  period=$(calc "int($ival * 1000)")
  err=$d/fping-$mode.err
  : >"$err"
  # -Q 3600: quiet like -q plus an interval summary every hour, i.e. never within a run; the
  # SIGQUIT splits below still work
  if [[ $mode == Q ]]; then tool=fping-Q; qflag=(-Q 3600); else tool=fping-loop; qflag=(-q); fi
  la0=$(la)
  echo "-- [round $r] fping -l ${qflag[*]} -p $period -i $FPING_I: $n targets @ $rate (load $la0)"
  fping -l "${qflag[@]}" -p "$period" -i "$FPING_I" -f "$d/targets.txt" >/dev/null 2>"$err" &
  fp=$!
  PIDS+=("$fp")
  # warm-up: long enough for fping's first pass over all targets (n * -i)
  local warm c0 c1 t0 t1 died=0
  warm=$(calc "max($WARMUP, $n * $FPING_I / 1000 + 1)")
  watch_for "$fp" "$warm" || died=1
  if (( !died )); then
    c0=$(ticks "$fp"); t0=$(now)
    kill -QUIT "$fp"   # prints the per-host counters so far: the start of the window
    watch_for "$fp" "$WINDOW" || died=1
  fi
  if (( died )); then
    local rc=0; wait "$fp" || rc=$?
    echo "   fping exited (status $rc): $(grep -v '^\s*$' "$err" | grep -v xmt/rcv | grep -v '^\[' | head -1)"
    $REPORT add "$RESULTS" tool="$tool" round="$r" n="$n" rate="$rate" status="refused (exit $rc)" \
      msg="$(grep -v '^\s*$' "$err" | grep -v xmt/rcv | grep -v '^\[' | head -2)"
    return
  fi
  local rss la1; rss=$(rss_mb "$fp" VmRSS); la1=$(la)
  # the end of the window: SIGINT makes fping print its final (cumulative) summary and exit
  c1=$(ticks "$fp"); t1=$(now)
  stop "$fp" INT
  local hosts xmt rcv
  read -r hosts xmt rcv <<<"$($REPORT fping-window "$err")"
  if (( xmt == 0 )); then
    $REPORT add "$RESULTS" tool="$tool" round="$r" n="$n" rate="$rate" status="no split stats" msg="$(head -3 "$err")"
    return
  fi
  local pps cpu_per_1k loss
  pps=$(calc "$xmt / ($t1 - $t0)")
  cpu_per_1k=$(calc "($c1 - $c0) / $HZ * 1e6 / $xmt")
  loss=$(calc "100 * (1 - $rcv / $xmt)")
  echo "   xmt $xmt rcv $rcv over $hosts hosts in window, CPU $(calc "round(($c1 - $c0) / $HZ / ($t1 - $t0) * 100, 1)") %"
  $REPORT add "$RESULTS" tool="$tool" round="$r" n="$n" rate="$rate" status=ok pps="$pps" \
    cpu_ms_per_1k="$cpu_per_1k" la0="$la0" la1="$la1" loss_pct="$loss" rss_mb="$rss" sent="$xmt" received="$rcv"
}

bench_floor() { # the physical floor: bench/icmp/floor.c, same targets, same rate, same window
  local n=$1 ival=$2 rate=$3 d=$4 r=$5 la0 out rc=0
  la0=$(la)
  echo "-- [round $r] floor: $n targets @ $rate (load $la0)"
  out=$("$FLOOR" "$n" "$(calc "int($ival * 1000)")" "$WARMUP" "$WINDOW" 2>"$d/floor.err") || rc=$?
  if (( rc != 0 )); then
    $REPORT add "$RESULTS" tool=floor round="$r" n="$n" rate="$rate" status="failed (exit $rc)" \
      msg="$(head -2 "$d/floor.err")"
    return
  fi
  local sent recv late cpu wall serr
  read -r sent recv late cpu wall serr <<<"$out"
  if (( sent == 0 )); then
    $REPORT add "$RESULTS" tool=floor round="$r" n="$n" rate="$rate" status="sent nothing" msg="$out"
    return
  fi
  echo "   sent $sent received $recv (late $late, send errors $serr) in window, CPU $(calc "round($cpu / $wall * 100, 1)") %"
  $REPORT add "$RESULTS" tool=floor round="$r" n="$n" rate="$rate" status=ok pps="$(calc "$sent / $wall")" \
    cpu_ms_per_1k="$(calc "$cpu * 1e6 / $sent")" la0="$la0" la1="$(la)" \
    loss_pct="$(calc "100 * (1 - $recv / $sent)")" sent="$sent" received="$recv" late="$late" send_errors="$serr"
}

# Interleaved: every round runs every tool once on every N (A/B/A/B), so drift in the machine's
# load (shared, 2 CPUs) falls on all tools alike instead of on whichever ran last.
for n in $NS; do
  if (( n >= 100000 )); then ival=10; else ival=1; fi
  mkdir -p "$WORK/n$n"
  $REPORT gen "$n" "$ival" "$WORK/n$n"
done
for r in $(seq "$REPEAT"); do
  for n in $NS; do
    if (( n >= 100000 )); then ival=10; rate="0.1 Hz"; else ival=1; rate="1 Hz"; fi
    d=$WORK/n$n
    # With a baseline, the two builds swap places every other round: the one run first is not
    # always the same (a warm or cold cache, the load the previous tool left).
    if [[ -n $BASELINE ]] && (( r % 2 == 0 )); then
      bench_siteprobe "$n" "$ival" "$rate" "$d" "$r" siteprobe-baseline "$BASELINE"
      bench_siteprobe "$n" "$ival" "$rate" "$d" "$r"
    else
      bench_siteprobe "$n" "$ival" "$rate" "$d" "$r"
      [[ -z $BASELINE ]] || bench_siteprobe "$n" "$ival" "$rate" "$d" "$r" siteprobe-baseline "$BASELINE"
    fi
    bench_fping "$n" "$ival" "$rate" "$d" "$r" loop
    bench_fping "$n" "$ival" "$rate" "$d" "$r" Q
    bench_floor "$n" "$ival" "$rate" "$d" "$r"
  done
done

echo
echo "load average at end: $(la)"
$REPORT table "$RESULTS" "$OUT_MD"
echo
echo "markdown table written to $OUT_MD"
