#!/usr/bin/env bash
# The demo: installs dependencies, builds siteprobe, and runs it on the reference inventory of Bắc
# Kạn province (117 sites) next to its own Prometheus (with siteprobe's alert rules) and
# Alertmanager, all on loopback. One district, Pác Nặm, and its communes are test hosts in a network
# namespace this script creates; after a minute the script takes that district's link down, so the
# Prometheus UI shows one critical alert (SiteDown pac-nam) and its communes as unreachable.
# Ports: 9723 (siteprobe), 9090 (Prometheus) and 9093 (Alertmanager), each replaced by a free port
# where something already listens (Debian's prometheus packages start system services on 9090 and
# 9093). The script checks that each port is served by the process it started, and prints the URLs.
# Runs until Ctrl-C, then removes everything it started. Needs root (raw ICMP, ip netns). Where no
# namespace can be made (a plain chroot), it says so and runs everything on loopback, no link down.
# For tests: DEMO_SITEPROBE=BINARY skips installing and building, DEMO_LINK_DOWN_AFTER=20s
# shortens the wait before the link goes down (default 60s), DEMO_NETNS names the namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
SITEPROBE=${DEMO_SITEPROBE:-build/daemon/siteprobe}
if [ -z "${DEMO_SITEPROBE:-}" ]; then scripts/install-deps.sh; scripts/build.sh build; fi
LINK_DOWN_AFTER=${DEMO_LINK_DOWN_AFTER:-60s}
ROOT=$(pwd)
RUN=$(mktemp -d /tmp/siteprobe-demo.XXXXXX)
NS=${DEMO_NETNS:-siteprobe-demo-pacnam}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip link del spdemo0 2>/dev/null || true   # first: nothing below may keep the host route alive
  ip netns del "$NS" 2>/dev/null || true
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
ip netns del "$NS" 2>/dev/null || true
# `ip netns add` alone can succeed where entering the namespace cannot (a chroot with /run mounted).
if ip netns add "$NS" 2>"$RUN/netns.err" && ip -n "$NS" link set lo up 2>"$RUN/netns.err"; then
  ip link add spdemo0 type veth peer name spdemo1 netns "$NS"
  ip addr add 10.199.0.1/30 dev spdemo0
  ip -n "$NS" addr add 10.199.0.2/30 dev spdemo1
  ip link set spdemo0 up; ip -n "$NS" link set spdemo1 up
  ip route replace 10.199.0.0/16 via 10.199.0.2
  python3 scripts/demo-netns-inventory.py config/bac-kan.yml "$RUN/inventory.yml" >"$RUN/addresses"
  while read -r a; do ip -n "$NS" addr add "$a/32" dev lo; done <"$RUN/addresses"
  INV=$RUN/inventory.yml
  # Pác Nặm's commune links are policed to 200 kbytes/s for path tests (UDP 862): ping passes,
  # a 2 Mbit/s conference stream does not. Its reflectors answer inside the namespace.
  ip netns exec "$NS" nft -f - <<'NFT'
table inet siteprobe_demo {
  chain input { type filter hook input priority 0; ip daddr 10.199.96.0/19 udp dport 862 limit rate over 200 kbytes/second drop; }
}
NFT
  ip netns exec "$NS" "$SITEPROBE" reflect --listen 0.0.0.0:862 --stateful 2>"$RUN/reflector-ns.log" &
  pids+=($!)
else
  ip netns del "$NS" 2>/dev/null || true
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
  ip netns exec "$NS" python3 scripts/demo-endpoints.py "$INV" --only 10.199. &
  pids+=($!)
fi

# The usual ports where nothing listens yet, else free ones from the kernel (each held until all
# three are chosen, so they differ).
read -r sp_port prom_port am_port < <(python3 -c '
import socket
held = []
for port in (9723, 9090, 9093):
    for p in (port, 0):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        held.append(s)
        break
print(*(s.getsockname()[1] for s in held))')
while read -r name usual port; do
  [ "$usual" = "$port" ] || echo "demo: port $usual is taken (a system $name?); the demo's $name uses port $port instead."
done <<PORTS
siteprobe 9723 $sp_port
Prometheus 9090 $prom_port
Alertmanager 9093 $am_port
PORTS
listen=127.0.0.1:$sp_port
prom=http://127.0.0.1:$prom_port
am=http://127.0.0.1:$am_port
"$SITEPROBE" check "$INV"
# A STAMP reflector for every router address on this host (path tests at call rate).
"$SITEPROBE" reflect --listen 0.0.0.0:862 --stateful 2>"$RUN/reflector.log" &
pids+=($!)
"$SITEPROBE" --config "$INV" --web.listen-address "$listen" --web.enable-lifecycle 2>"$RUN/siteprobe.log" &
sp_pid=$!
pids+=($!)
cat >"$RUN/prometheus.yml" <<YAML
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: ["$ROOT/alerts/siteprobe.rules.yml", "$ROOT/alerts/siteprobe.sla.rules.yml"]
alerting: {alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$am_port"]}]}]}
scrape_configs:
  - job_name: siteprobe
    static_configs: [{targets: ["$listen"]}]
YAML
prometheus --config.file="$RUN/prometheus.yml" --storage.tsdb.path="$RUN/prometheus" \
  --web.listen-address="127.0.0.1:$prom_port" >"$RUN/prometheus.log" 2>&1 &
prom_pid=$!
pids+=($!)
prometheus-alertmanager --config.file="$ROOT/alerts/alertmanager.yml" --storage.path="$RUN/alertmanager" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= >"$RUN/alertmanager.log" 2>&1 &
am_pid=$!
pids+=($!)
# Ready, and served by the process started above, not by another that took the port first.
while read -r name port pid log; do
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/-/ready" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if ! curl -fs "http://127.0.0.1:$port/-/ready" >/dev/null || ! ss -Hltnp "sport = :$port" | grep -q "pid=$pid,"; then
    tail -n 5 "$RUN/$log"
    echo "demo: the demo's $name (pid $pid) does not serve 127.0.0.1:$port; listening there:" \
         "$(ss -Hltnp "sport = :$port" | grep -o 'users:.*' || echo nothing)" >&2
    exit 1
  fi
done <<SERVICES
siteprobe $sp_port $sp_pid siteprobe.log
Prometheus $prom_port $prom_pid prometheus.log
Alertmanager $am_port $am_pid alertmanager.log
SERVICES

# Path tests at call rate (2 Mbit/s of AF41 for 20 s) to the province's and every district's
# router, and to Pác Nặm's communes, whose links are policed: a minute or two, a district at a time.
sites=$(curl -fs "http://$listen/metrics" | sed -n 's/^siteprobe_site_info{.*level="\(province\|district\)".*site="\([^"]*\)".*/\2/p')
sites="$sites $(curl -fs "http://$listen/metrics" | sed -n 's/^siteprobe_site_info{.*site="\(pac-nam\.[^"]*\)".*/\1/p' | head -3)"
query=$(for s in $sites; do printf 'site=%s&' "$s"; done)
curl -fs -X POST -H 'X-Siteprobe-Reload: 1' "http://$listen/-/path-test?${query%&}" >/dev/null ||
  echo "demo: could not start the path tests" >&2

cat <<MSG

siteprobe demo (Ctrl-C to stop)
  siteprobe metrics   http://$listen/metrics
  Prometheus          $prom/alerts   (rules: alerts/siteprobe.rules.yml, siteprobe.sla.rules.yml)
  Alertmanager        $am
  Endpoint readiness  http://$listen/readiness   (or: $SITEPROBE readiness --url http://$listen)
  Path tests          http://$listen/path-tests  (2 Mbit/s streams, running now; Pác Nặm's
                      commune links are policed: 0 % ping loss, about 14 % at call rate)
Expected in Prometheus from the start: EndpointCallServiceDown (warning) for ba-be.banh-trach and
cho-don.nam-cuong, the two stand-ins that fail on purpose; pending, then firing after 10 minutes.
And Watchdog, always firing: the heartbeat that shows the alerting pipeline works.
MSG
if [ "$INV" = config/bac-kan.yml ]; then echo "Ctrl-C to stop and clean up."; wait; exit 0; fi
cat <<MSG
In $LINK_DOWN_AFTER the demo takes Pác Nặm's district link down. About a minute later Prometheus
also shows one critical alert, SiteDown for pac-nam, and its communes are unreachable, not down:
  curl -s http://$listen/metrics | grep 'siteprobe_site_state{district="pac-nam"'

MSG
sleep "$LINK_DOWN_AFTER"
ip -n "$NS" link set spdemo1 down
echo "$(date +%T) Pác Nặm's link is down."
for _ in $(seq 1 36); do
  sleep 5
  if curl -s "$prom/api/v1/alerts" | python3 -c 'import json,sys
sys.exit(0 if any(a["labels"]["alertname"] == "SiteDown" and a["state"] == "firing"
                  for a in json.load(sys.stdin)["data"]["alerts"]) else 1)' 2>/dev/null; then
    echo "$(date +%T) Prometheus alerts now firing:"
    curl -s "$prom/api/v1/alerts" | python3 -c 'import json,sys
for a in json.load(sys.stdin)["data"]["alerts"]:
    if a["state"] == "firing": print("  ", a["labels"]["alertname"], a["labels"].get("severity"), a["labels"].get("site", ""))'
    curl -s "http://$listen/metrics" | grep -E '^siteprobe_site_state\{district="pac-nam"' | sed 's/^/   /'
    break
  fi
done
echo "Leave it running to explore; Ctrl-C to stop and clean up."
wait
