#!/usr/bin/env bash
# The Grafana dashboards against live data: siteprobe runs on the reference inventory
# (config/bac-kan.yml, loopback stand-ins only) with the demo's stand-in endpoints and a real snmpd
# answering for every router (scripts/demo-endpoints.py), a real Prometheus scrapes it every second, and
# grafana/check-dashboards.py runs every dashboard query (variables resolved from the live data)
# on Prometheus's /api/v1/query. Each must parse and return data. Everything listens on
# 127.0.0.1 only. Needs root (raw ICMP to the 127.x stand-ins) and /usr/bin/prometheus.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
WARMUP=${WARMUP:-25}     # seconds of data before the queries run
LIMIT=${LIMIT:-150}      # seconds for the whole test
[ -x "$PROMETHEUS" ] || fail "$PROMETHEUS not found (apt-get install -y prometheus)"

# Bounded runtime: every wait below is bounded, and a watchdog fails the test after $LIMIT s.
trap 'fail "timeout after $LIMIT s"' TERM
( trap 'kill $s; exit 0' TERM; sleep "$LIMIT" & s=$!; wait $s; kill -TERM $$ ) >/dev/null 2>&1 &
WATCHDOG=$!
CLEANUPS+=("kill -TERM $WATCHDOG")

python3 "$ROOT/grafana/check-dashboards.py" || fail "static dashboard checks"

command -v snmpd >/dev/null || fail "snmpd missing (apt-get install -y snmpd)"
# Bành Trạch's codec answers SIP 503, as in the demo: an endpoint and a conference participant not ready.
python3 "$ROOT/scripts/demo-endpoints.py" "$ROOT/config/bac-kan.yml" --busy 127.12.2.2 2>"$TMP/endpoints.log" &
ENDPOINTS=$!
CLEANUPS+=("kill -TERM $ENDPOINTS; wait $ENDPOINTS")
# Path tests and the conference view (the VC readiness dashboard's last rows): a reflector answers
# every router address on loopback; a conference of two sites in different districts starts in
# 3 minutes, so its T-5 pre-flight runs at once and tests their routers (20 s each, in parallel).
"$SP_BIN" reflect --listen 0.0.0.0:862 --stateful >"$TMP/reflector.log" 2>&1 &
CLEANUPS+=("kill $!")
cp "$ROOT/config/bac-kan.yml" "$TMP/inv.yml"
python3 - >>"$TMP/inv.yml" <<'PY'
import datetime
start = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=7))) + datetime.timedelta(minutes=3)
print(f"""conferences:
  - {{name: giao-ban, dates: [{start:%Y-%m-%d}], start: "{start:%H:%M}", time_zone: "+07:00", duration: 30m,
     participants: [bac-kan, ba-be.banh-trach], preflight: [5m]}}""")
PY
SP_ARGS=(--web.enable-lifecycle)
start_siteprobe "$TMP/inv.yml"
pass "siteprobe ready on $SP_URL"

PROM_PORT=$(free_port)
PROM_URL="http://127.0.0.1:$PROM_PORT"
# The Availability dashboard reads the recording rules; evaluated every second here (not every
# 5 minutes) so that they have values within the warm-up.
sed 's/^    interval: 5m$/    interval: 1s/' "$ROOT/alerts/siteprobe.sla.rules.yml" >"$TMP/sla.rules.yml"
grep -q 'interval: 1s' "$TMP/sla.rules.yml" || fail "no 'interval: 5m' in alerts/siteprobe.sla.rules.yml"
cat >"$TMP/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: ['$TMP/sla.rules.yml', '$ROOT/alerts/siteprobe.quorum.rules.yml']
# Two vantages (the dashboards' Vantage selector takes the first), both this siteprobe; noc-2 does
# not watch district ba-be (as if another shard did), so the coverage panel lists its sites.
scrape_configs:
  - job_name: siteprobe
    static_configs:
      - targets: ['127.0.0.1:$SP_PORT']
        labels: {vantage: noc-1}
      - targets: ['127.0.0.1:$SP_PORT']
        labels: {vantage: noc-2}
    metric_relabel_configs:
      - source_labels: [vantage, __name__, site]
        regex: 'noc-2;siteprobe_site_state;ba-be.*'
        action: drop
YAML
"$PROMETHEUS" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prometheus-data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!
CLEANUPS+=("kill -TERM $PROM_PID; wait $PROM_PID")
for _ in $(seq 1 100); do
  curl -fsS -m 2 "$PROM_URL/-/ready" >/dev/null 2>&1 && break
  kill -0 "$PROM_PID" 2>/dev/null || { cat "$TMP/prometheus.log"; fail "prometheus exited"; }
  sleep 0.1
done
curl -fsS -m 2 "$PROM_URL/-/ready" >/dev/null || fail "prometheus not ready after 10 s"
pass "prometheus ready on $PROM_URL"

# Wait until Prometheus scrapes siteprobe, then let every device finish a couple of rounds
# (interval 10 s in the reference inventory) so rates and histograms have data.
for _ in $(seq 1 50); do
  curl -fsS -m 2 "$PROM_URL/api/v1/query" --data-urlencode 'query=up{job="siteprobe"} == 1' |
    grep -q '"value"' && break
  sleep 0.2
done
curl -fsS -m 2 "$PROM_URL/api/v1/query" --data-urlencode 'query=up{job="siteprobe"} == 1' |
  grep -q '"value"' || fail "prometheus does not scrape siteprobe"
pass "prometheus scrapes siteprobe; waiting ${WARMUP}s for data"
# Every router is polled over SNMP every 30 s (splayed): wait for all of them to answer once.
snmp_all_up='count(siteprobe_snmp_up == 1) == count(siteprobe_snmp_up)'
for _ in $(seq 1 45); do
  curl -fsS -m 2 "$PROM_URL/api/v1/query" --data-urlencode "query=$snmp_all_up" | grep -q '"value"' && break
  kill -0 "$ENDPOINTS" 2>/dev/null || { cat "$TMP/endpoints.log"; fail "stand-in endpoints / snmpd exited"; }
  sleep 1
done
curl -fsS -m 2 "$PROM_URL/api/v1/query" --data-urlencode "query=$snmp_all_up" | grep -q '"value"' ||
  fail "not every router answered SNMP within 45 s"
pass "every router answers SNMP"
sleep 3  # two more scrapes, so rate() has two samples of the newest interface counters
sleep "$WARMUP" >/dev/null 2>&1 &
CLEANUPS+=("kill $!")
wait $!
# The availability recording rules (a group of their own) may lag the scrapes on a loaded host:
# once they have a value, every panel on them has data. (A CI run found them all empty once.)
avail='count(district:siteprobe_availability:ratio_5m) > 0'
for _ in $(seq 1 30); do
  curl -fsS -m 2 "$PROM_URL/api/v1/query" --data-urlencode "query=$avail" | grep -q '"value"' && break
  sleep 1
done

rc=0
python3 "$ROOT/grafana/check-dashboards.py" --prometheus "$PROM_URL" &
CLEANUPS+=("kill $!")
wait $! || rc=$?
[ $rc -eq 0 ] || fail "dashboard queries (see BAD lines above)"
pass "every dashboard query parses and returns data"

# The coverage panel (NOC overview) lists exactly the sites one of the two vantages does not watch.
python3 - "$ROOT/grafana/dashboards/noc-overview.json" "$PROM_URL" <<'PY' || fail "coverage panel"
import json, sys, urllib.parse, urllib.request
dash, prom = json.load(open(sys.argv[1])), sys.argv[2]
expr = next(p["targets"][0]["expr"] for p in dash["panels"] if p["title"].startswith("Coverage"))
def q(e):
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": e})
    return json.load(urllib.request.urlopen(url, timeout=10))["data"]["result"]
got = sorted((r["metric"]["site"], r["value"][1]) for r in q(expr))
want = sorted((r["metric"]["site"], "1") for r in q('siteprobe_site_info{vantage="noc-1",site=~"ba-be.*"}'))
print(f"coverage panel: {len(got)} sites below the 2 vantages reporting: {', '.join(s for s, _ in got)}")
sys.exit(0 if got == want and len(want) > 1 else f"want {want}")
PY
pass "coverage panel lists the sites of the district noc-2 does not watch"
