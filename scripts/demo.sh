#!/usr/bin/env bash
# The demo: installs dependencies, builds siteprobe, and runs it on the reference inventory of Bắc
# Kạn province (117 sites) next to a real Prometheus (with siteprobe's alert rules) and Alertmanager,
# all on loopback. One district, Pác Nặm, and its communes are test hosts in a network namespace
# this script creates; after a minute the script takes that district's link down, so the Prometheus
# UI shows exactly one critical alert (SiteDown pac-nam) and its communes as unreachable.
# Runs until Ctrl-C, then removes everything it started. Needs root (raw ICMP, ip netns). Where no
# namespace can be made (a plain chroot), it says so and runs everything on loopback, no link down.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
ROOT=$(pwd)
RUN=$(mktemp -d /tmp/siteprobe-demo.XXXXXX)
NS=siteprobe-demo-pacnam
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip link del spdemo0 2>/dev/null || true   # first: nothing below may keep the host route alive
  ip netns del $NS 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# Pác Nặm (district 8) lives behind a veth link: 127.10.8.N -> 10.199.8.N, its communes
# 127.18.J.N -> 10.199.(100+J).N, all addresses of the namespace's loopback. Where no namespace can
# be made (a plain chroot, a container without CAP_SYS_ADMIN), every site stays on loopback and no
# link goes down; the rest of the demo is the same.
INV=config/bac-kan.yml
ip netns del $NS 2>/dev/null || true
# `ip netns add` alone can succeed where entering the namespace cannot (a chroot with /run mounted).
if ip netns add $NS 2>"$RUN/netns.err" && ip -n $NS link set lo up 2>"$RUN/netns.err"; then
  ip link add spdemo0 type veth peer name spdemo1 netns $NS
  ip addr add 10.199.0.1/30 dev spdemo0
  ip -n $NS addr add 10.199.0.2/30 dev spdemo1
  ip link set spdemo0 up; ip -n $NS link set spdemo1 up
  ip route replace 10.199.0.0/16 via 10.199.0.2
  python3 - config/bac-kan.yml "$RUN/inventory.yml" >"$RUN/addresses" <<'PY'
import re, sys
src, dst = sys.argv[1], sys.argv[2]
def move(m):
    a = m.group(1).split(".")
    if a[1] == "10" and a[2] == "8": new = f"10.199.8.{a[3]}"
    elif a[1] == "18": new = f"10.199.{100 + int(a[2])}.{a[3]}"
    else: return m.group(0)
    print(new)
    return f"address: {new}"
open(dst, "w").write(re.sub(r"address: (127\.\d+\.\d+\.\d+)", move, open(src).read()))
PY
  while read -r a; do ip -n $NS addr add "$a/32" dev lo; done <"$RUN/addresses"
  INV=$RUN/inventory.yml
else
  ip netns del $NS 2>/dev/null || true
  cat <<MSG

NOTE: cannot create a network namespace here ($(head -n1 "$RUN/netns.err")).
The demo runs siteprobe, Prometheus and Alertmanager on loopback as usual, with every site on a
loopback address, but it cannot take a district's link down: no alert will fire. Run it on a
real Debian host or VM (not a plain chroot) to see the SiteDown page.
MSG
fi

# Stand-in endpoints answer SIP OPTIONS and accept H.323 connections, so the VC readiness view has
# live data: all ready except one commune codec that answers 503 (Ba Bể, Bành Trạch) and one that
# never answers (Chợ Đồn, Nam Cường).
python3 scripts/demo-endpoints.py "$INV" --skip 10.199. --busy 127.12.2.2 --mute 127.14.3.2 &
pids+=($!)
if [ "$INV" != config/bac-kan.yml ]; then
  ip netns exec $NS python3 scripts/demo-endpoints.py "$INV" --only 10.199. &
  pids+=($!)
fi

listen=127.0.0.1:9723
build/daemon/siteprobe check "$INV"
build/daemon/siteprobe --config "$INV" --web.listen-address $listen 2>"$RUN/siteprobe.log" &
pids+=($!)
cat >"$RUN/prometheus.yml" <<YAML
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: ["$ROOT/alerts/siteprobe.rules.yml"]
alerting: {alertmanagers: [{static_configs: [{targets: ["127.0.0.1:9093"]}]}]}
scrape_configs:
  - job_name: siteprobe
    static_configs: [{targets: ["$listen"]}]
YAML
prometheus --config.file="$RUN/prometheus.yml" --storage.tsdb.path="$RUN/prometheus" \
  --web.listen-address=127.0.0.1:9090 >"$RUN/prometheus.log" 2>&1 &
pids+=($!)
prometheus-alertmanager --config.file="$ROOT/alerts/alertmanager.yml" --storage.path="$RUN/alertmanager" \
  --web.listen-address=127.0.0.1:9093 --cluster.listen-address= >"$RUN/alertmanager.log" 2>&1 &
pids+=($!)
for svc in "siteprobe http://$listen siteprobe.log" "Prometheus http://127.0.0.1:9090 prometheus.log" \
           "Alertmanager http://127.0.0.1:9093 alertmanager.log"; do
  set -- $svc
  for _ in $(seq 1 100); do curl -fs "$2/-/ready" >/dev/null && break; sleep 0.2; done
  curl -fs "$2/-/ready" >/dev/null || { tail -n 5 "$RUN/$3"; echo "demo: $1 did not start (is $2 taken?)" >&2; exit 1; }
done

cat <<MSG

siteprobe demo (Ctrl-C to stop)
  siteprobe metrics   http://$listen/metrics
  Prometheus          http://127.0.0.1:9090/alerts   (rules: alerts/siteprobe.rules.yml)
  Alertmanager        http://127.0.0.1:9093
  Endpoint readiness  http://$listen/readiness   (or: build/daemon/siteprobe readiness --url http://$listen)
MSG
if [ "$INV" = config/bac-kan.yml ]; then echo "Ctrl-C to stop and clean up."; wait; exit 0; fi
cat <<MSG
In 60 s the demo takes Pác Nặm's district link down. About a minute later Prometheus shows one
critical alert, SiteDown for pac-nam, and its communes are unreachable, not down:
  curl -s http://$listen/metrics | grep 'siteprobe_site_state{district="pac-nam"'

MSG
sleep 60
ip -n $NS link set spdemo1 down
echo "$(date +%T) Pác Nặm's link is down."
for _ in $(seq 1 36); do
  sleep 5
  if curl -s 'http://127.0.0.1:9090/api/v1/alerts' | grep -q '"alertname":"SiteDown".*"state":"firing"'; then
    echo "$(date +%T) Prometheus alerts now firing:"
    curl -s 'http://127.0.0.1:9090/api/v1/alerts' | python3 -c 'import json,sys
for a in json.load(sys.stdin)["data"]["alerts"]:
    if a["state"] == "firing": print("  ", a["labels"]["alertname"], a["labels"].get("severity"), a["labels"].get("site", ""))'
    curl -s "http://$listen/metrics" | grep -E '^siteprobe_site_state\{district="pac-nam"' | sed 's/^/   /'
    break
  fi
done
echo "Leave it running to explore; Ctrl-C to stop and clean up."
wait
