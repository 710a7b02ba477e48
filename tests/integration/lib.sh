# shellcheck shell=bash
# Shared helpers for the integration tests. Each test is a bash script that gets the siteprobe
# binary as $1, runs it for real, and exits 0 (pass), 1 (fail) or 77 (skipped: not root).
set -euo pipefail

# free_port [tcp|udp]: a TCP (default) or UDP port on 127.0.0.1 that the kernel just had free.
free_port() {
  python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "${1:-tcp}"
}
# The benchmarks (bench/) take only free_port: `source tests/integration/lib.sh --free-port-only`.
if [ "${1:-}" = --free-port-only ]; then return 0; fi

SP_BIN=${1:?usage: $0 SITEPROBE_BINARY}
SP_BIN=$(readlink -f "$SP_BIN")
TMP=$(mktemp -d /tmp/siteprobe-it.XXXXXX)
SP_PID=""
SP_NETNS=""     # namespace siteprobe runs in, if any
SP_ARGS=()      # more flags for start_siteprobe
CLEANUPS=()

need_root() {
  if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root (raw ICMP, ip netns, nftables)"; exit 77; fi
}

# need_netns: skip (77) where network namespaces cannot be made at all, e.g. inside a plain chroot
# whose / is not a mount point; on a real machine (CI) they work and the test runs.
need_netns() {
  local probe=spprobe$$
  # Entering it can fail where creating it works (a chroot with its own /run).
  if ! ip netns add $probe 2>"$TMP/netns.err" || ! ip netns exec $probe true 2>"$TMP/netns.err"; then
    ip netns del $probe 2>/dev/null || true
    echo "SKIP: cannot create network namespaces here: $(cat "$TMP/netns.err")"; exit 77
  fi
  ip netns del $probe
}

# The daemon must exit 0 on SIGTERM: under ASan that is also where LeakSanitizer reports leaks
# (and exits non-zero), so a test whose daemon leaked fails here.
cleanup() {
  local rc=$? sp_rc=0
  if [ -n "$SP_PID" ] && kill -0 "$SP_PID" 2>/dev/null; then
    kill -TERM "$SP_PID" 2>/dev/null || true
    wait "$SP_PID" 2>/dev/null || sp_rc=$?
    if [ $sp_rc -ne 0 ] && [ $rc -eq 0 ]; then
      echo "FAIL: siteprobe exited $sp_rc on SIGTERM (a sanitizer report is in the log below)" >&2
      rc=1
    fi
  fi
  for ((i=${#CLEANUPS[@]}-1; i>=0; i--)); do eval "${CLEANUPS[$i]}" >/dev/null 2>&1 || true; done
  if [ $rc -ne 0 ] && [ -f "$TMP/siteprobe.log" ]; then echo "--- siteprobe log ---"; tail -n 60 "$TMP/siteprobe.log"; fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

in_ns() { if [ -n "$SP_NETNS" ]; then ip netns exec "$SP_NETNS" "$@"; else "$@"; fi; }

# small_inventory FILE [DEVICE...]: a one-site inventory with fast ICMP (1 s rounds of 2 packets)
# and these device lines (flow mappings, written as given, so a test can break one on purpose);
# without any, router r1 at 127.0.0.1.
small_inventory() {
  local f=$1 d; shift
  [ $# -gt 0 ] || set -- '{name: r1, address: 127.0.0.1, role: router}'
  { cat <<'YAML'
defaults:
  icmp: {interval: 1s, timeout: 300ms, packets: 2, spacing: 50ms}
sites:
  - id: bk
    name: Bắc Kạn
    level: province
    devices:
YAML
    for d in "$@"; do echo "      - $d"; done; } >"$f"
}

# start_siteprobe CONFIG: runs the daemon (in $SP_NETNS if set, with $SP_ARGS) and waits until /-/ready.
start_siteprobe() {
  SP_PORT=$(free_port tcp)
  SP_URL="http://127.0.0.1:$SP_PORT"
  # Not through a shell function: $! must be siteprobe itself (ip netns exec execs in place).
  local ns=()
  [ -n "$SP_NETNS" ] && ns=(ip netns exec "$SP_NETNS")
  "${ns[@]}" "$SP_BIN" --config "$1" --web.listen-address "127.0.0.1:$SP_PORT" --log.level debug \
    "${SP_ARGS[@]}" >>"$TMP/siteprobe.log" 2>&1 &
  SP_PID=$!
  for _ in $(seq 1 100); do
    if in_ns curl -fsS "$SP_URL/-/ready" >/dev/null 2>&1; then return 0; fi
    kill -0 "$SP_PID" 2>/dev/null || fail "siteprobe exited during startup"
    sleep 0.1
  done
  fail "siteprobe not ready after 10 s"
}

# Pipe a scrape (or any long output) into a reader of its whole input (`grep X >/dev/null`), not
# `grep -q`: that stops at the first match, and under pipefail curl's failed write fails the line.
scrape() { in_ns curl -fsS "$SP_URL/metrics"; }

# metric NAME 'label="x",other="y"' -> the value of the one series whose labels include all given.
metric() {
  local name=$1 match=${2:-}
  { if [ -n "${SNAPSHOT:-}" ]; then cat "$SNAPSHOT"; else scrape; fi; } | python3 -c '
import sys, re
name, match = sys.argv[1], sys.argv[2]
want = dict(re.findall(r"(\w+)=\"([^\"]*)\"", match))
for line in sys.stdin.read().splitlines():  # read all: exiting early would fail curl with SIGPIPE
    if not line.startswith(name + "{") and not line.startswith(name + " "):
        continue
    labels = dict(re.findall(r"(\w+)=\"([^\"]*)\"", line.split("}")[0])) if "{" in line else {}
    if all(labels.get(k) == v for k, v in want.items()):
        print(line.rsplit(" ", 1)[1].strip()); sys.exit(0)
sys.exit(1)' "$name" "$match" || echo "absent"
}

# wait_for 'python-expression over v' NAME LABELS TIMEOUT_S: polls until the metric satisfies it.
wait_for() {
  local cond=$1 name=$2 labels=$3 timeout=${4:-20} v
  for _ in $(seq 1 $((timeout * 4))); do
    v=$(metric "$name" "$labels")
    if [ "$v" != absent ] && python3 -c "import sys; v=float(sys.argv[1]); sys.exit(0 if ($cond) else 1)" "$v"; then
      return 0
    fi
    sleep 0.25
  done
  fail "$name{$labels}=$v, wanted $cond within ${timeout}s"
}

# snapshot: later `metric` calls read one consistent scrape until `unsnap`.
snapshot() { scrape >"$TMP/snapshot"; SNAPSHOT="$TMP/snapshot"; }
unsnap() { SNAPSHOT=""; }

ge() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$1" "$2"; }

# Throwaway TLS material in the current directory (openssl): key FILE; ca NAME (NAME.key, NAME.crt);
# cert NAME CA [SAN] (NAME.crt signed by CA, with subjectAltName SAN if given).
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
ca() { key "$1.key"; openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 2 -subj "/CN=$1" 2>/dev/null; }
cert() {  # cert NAME CA [SAN]
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -out "$1.crt" -days 2 \
    ${3:+-extfile <(echo "subjectAltName=$3")} 2>/dev/null
}

# start_alertmanager CONFIG: the real Alertmanager on 127.0.0.1:$AM (set AM first) with CONFIG,
# logging to $TMP/am.log, killed at exit; returns when it is ready.
start_alertmanager() {
  prometheus-alertmanager --config.file="$1" --storage.path="$TMP/am" \
    --web.listen-address="127.0.0.1:$AM" --cluster.listen-address= >"$TMP/am.log" 2>&1 &
  CLEANUPS+=("kill $!")
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$AM/-/ready" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS "http://127.0.0.1:$AM/-/ready" >/dev/null || { cat "$TMP/am.log"; fail "alertmanager not ready"; }
}

# am_config DST WEBHOOK_PORT: the shipped alerts/alertmanager.yml with its receivers pointed at
# webhook.py on 127.0.0.1:WEBHOOK_PORT and the pager route's group_interval 10 s instead of 1m.
am_config() {
  python3 - alerts/alertmanager.yml "$1" "$2" <<'PY'
import re, sys
src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3]
text, n = re.subn(r"http://127\.0\.0\.1:\d+/", f"http://127.0.0.1:{port}/", open(src).read())
assert n == 3, "expected three receiver URLs (pager, chat, heartbeat) in alertmanager.yml"
text, n = re.subn(r"(\n    - matchers: \['severity=\"critical\"'\]\n      receiver: pager\n(?:      .*\n)*?      group_interval:) 1m", r"\1 10s", text)
assert n == 1, "expected the pager route's group_interval: 1m in alertmanager.yml"
open(dst, "w").write(text)
PY
}

# start_alert_stack RULES_FILE: the real prometheus (RULES_FILE, an absolute path: the shipped
# rules, or a copy the test shortened; and the shipped availability rules) and prometheus-alertmanager (the shipped config, receivers pointed at webhook.py,
# which appends every notification to $TMP/notes.jsonl), in $SP_NETNS next to the running
# siteprobe. Scrapes and evaluations every 5 s; the pager route's group_interval 10 s instead of 1m
# (so a resolved notification comes soon); everything else as shipped. Sets PR, AM (their ports).
start_alert_stack() {
  local rules=$1 wh ns=()
  [ -n "$SP_NETNS" ] && ns=(ip netns exec "$SP_NETNS")  # not in_ns: $! must be the process itself
  PR=$(free_port); AM=$(free_port); wh=$(free_port)
  am_config "$TMP/am.yml" "$wh"
  cat >"$TMP/prom.yml" <<YAML
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: ["$rules", "$PWD/alerts/siteprobe.sla.rules.yml"]
alerting: {alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$AM"]}]}]}
scrape_configs:
  - job_name: siteprobe
    static_configs: [{targets: ["127.0.0.1:$SP_PORT"]}]
YAML
  touch "$TMP/notes.jsonl"
  "${ns[@]}" python3 tests/integration/webhook.py "$wh" "$TMP/notes.jsonl" &
  CLEANUPS+=("kill $!")
  "${ns[@]}" prometheus-alertmanager --config.file="$TMP/am.yml" --storage.path="$TMP/am" \
    --web.listen-address="127.0.0.1:$AM" --cluster.listen-address= >"$TMP/am.log" 2>&1 &
  CLEANUPS+=("kill $!")
  "${ns[@]}" prometheus --config.file="$TMP/prom.yml" --storage.tsdb.path="$TMP/prom" \
    --web.listen-address="127.0.0.1:$PR" >"$TMP/prom.log" 2>&1 &
  CLEANUPS+=("kill $!")
  for _ in $(seq 1 100); do
    in_ns curl -fsS "http://127.0.0.1:$PR/-/ready" >/dev/null 2>&1 &&
      in_ns curl -fsS "http://127.0.0.1:$AM/-/ready" >/dev/null 2>&1 && break
    sleep 0.2
  done
  in_ns curl -fsS "http://127.0.0.1:$AM/-/ready" >/dev/null || { cat "$TMP/am.log"; fail "alertmanager not ready"; }
  in_ns curl -fsS "http://127.0.0.1:$PR/-/ready" >/dev/null || { cat "$TMP/prom.log"; fail "prometheus not ready"; }
}
