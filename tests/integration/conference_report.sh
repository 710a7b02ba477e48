#!/usr/bin/env bash
# The after-conference quality report (issue #13) from the real daemon: a conference under way now
# (one minute, in UTC+7) whose district-d participants are probed over ICMP in a namespace of this
# test, where nftables drops 20 % of the echo requests to commune c and then, for a few seconds, all
# of them (c goes down and comes back). While it runs and after it ends, the report
# (`siteprobe readiness --conference NAME --report csv|markdown`, /conference-report) must show c's
# loss and downtime from the daemon's own rounds, the province router clean, and no row for the
# district that does not take part. Rounds run every 6 s, but the participants' every 1 s while
# the pre-flight is under way (preflight_interval), and never the non-participant's.
source "$(dirname "$0")/lib.sh"
need_root
need_netns
command -v nft >/dev/null || fail "nft not installed (apt-get install nftables)"

NS=spcr$$
ip netns add $NS; CLEANUPS+=("ip netns del $NS")
ip -n $NS link set lo up
ip netns exec $NS nft -f - <<'NFT'
table inet t {
  chain outage {}
  chain input {
    type filter hook input priority 0;
    ip daddr 127.0.0.3 icmp type echo-request jump outage
    ip daddr 127.0.0.3 icmp type echo-request numgen random mod 5 == 0 drop
  }
}
NFT

# The conference starts this minute (local +07:00) and lasts one: wait for a minute with 50 s left
# (the outage below takes about 15 s, and must fall inside it).
[ "$(date +%-S)" -lt 10 ] || sleep $((61 - $(date +%-S)))
python3 - >"$TMP/inv.yml" <<'PY'
import datetime
now = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=7)))
print(f"""defaults:
  icmp: {{interval: 6s, timeout: 300ms, packets: 2, spacing: 50ms}}
sites:
  - {{id: p, name: Tỉnh Bắc Kạn, level: province, devices: [{{name: router, address: 127.0.0.1, role: router}}]}}
  - {{id: d, name: 'Huyện Pác Nặm, "A"', level: district, parent: p, devices: [{{name: router, address: 127.0.0.2, role: router}}]}}
  - {{id: c, name: Xã Bộc Bố, level: commune, parent: d, devices: [{{name: router, address: 127.0.0.3, role: router}}]}}
  - {{id: e, name: Huyện Ba Bể, level: district, parent: p, devices: [{{name: router, address: 127.0.0.4, role: router}}]}}
conferences:
  - name: hop-tinh
    dates: [{now:%Y-%m-%d}]
    start: "{now:%H:%M}"
    time_zone: "+07:00"
    duration: 1m
    preflight_interval: 1s
    participants: [p, {{district: d}}]""")
PY
SP_NETNS=$NS
start_siteprobe "$TMP/inv.yml"
report() { ip netns exec $NS "$SP_BIN" readiness --url "$SP_URL" --conference hop-tinh --report "$1"; }

sleep 8
in_ns curl -sS "$SP_URL/readiness?conference=hop-tinh" | grep -q "checks run at least every 1 s until the end" ||
  fail "the pre-flight table must say the participants are probed every second"
snapshot
sent_p=$(metric siteprobe_icmp_packets_sent_total 'site="p"'); sent_e=$(metric siteprobe_icmp_packets_sent_total 'site="e"')
unsnap
python3 -c "import sys; p, e = map(float, sys.argv[1:]); sys.exit(0 if p >= 12 and e <= 6 else 1)" "$sent_p" "$sent_e" ||
  fail "in 8 s a participant should send about 16 requests (1 s rounds), a non-participant at most 4 (6 s): $sent_p, $sent_e"
pass "pre-flight: participants probed every 1 s ($sent_p requests), the non-participant every 6 s ($sent_e)"
report markdown >"$TMP/live.md" || fail "report while under way: exit $?"
sed 's/^/  live: /' "$TMP/live.md"
grep -q "under way: figures up to" "$TMP/live.md" || fail "the live report must say it is under way"
pass "report while the conference is under way"
ip netns exec $NS nft add rule inet t outage drop
wait_for 'v == 3' siteprobe_site_state 'site="c"' 15
ip netns exec $NS nft flush chain inet t outage
wait_for 'v == 1 or v == 2' siteprobe_site_state 'site="c"' 15  # answers again (20 % loss: often degraded)
sleep 3

# After the end: the last occurrence's report, in both formats.
end=$(python3 -c "import re,sys; m=re.search(r'to \d+-\d+-\d+ (\d+):(\d+)', open(sys.argv[1]).read()); print(m.group(1)+':'+m.group(2))" "$TMP/live.md")
for _ in $(seq 90); do
  report markdown >"$TMP/last.md" && ! grep -q "under way" "$TMP/last.md" && break
  sleep 1
done
grep -q "under way" "$TMP/last.md" && fail "the conference ending at $end did not end"
report csv >"$TMP/last.csv" || fail "csv report: exit $?"
sed 's/^/  csv: /' "$TMP/last.csv"
sed 's/^/  md: /' "$TMP/last.md"
python3 - "$TMP/last.csv" <<'PY' || fail "the CSV report is wrong"
import csv, sys
rows = {r["site"]: r for r in csv.DictReader(open(sys.argv[1], encoding="utf-8", newline=""))}
assert set(rows) == {"p", "d", "c"}, rows.keys()          # no row for the non-participant e
assert rows["d"]["site_name"] == 'Huyện Pác Nặm, "A"', rows["d"]["site_name"]
c, p = rows["c"], rows["p"]
assert int(c["requests_sent"]) >= 40, c                    # 2 packets a second for most of a minute
assert 15 <= float(c["loss_percent"]) <= 70, c           # 20 % random plus the outage
assert float(p["loss_percent"]) == 0 and float(p["mos"]) > 4.3, p
assert int(c["site_down_seconds"]) >= 2 and int(c["site_state_changes"]) >= 2, c
assert int(p["site_down_seconds"]) == 0 and int(p["site_state_changes"]) == 0, p
print(f"ok: c loss {c['loss_percent']} % over {c['requests_sent']} requests, down {c['site_down_seconds']} s, "
      f"{c['site_state_changes']} changes, MOS {c['mos']}; p loss {p['loss_percent']} %, MOS {p['mos']}")
PY
grep -q "^| d | Xã Bộc Bố (c) | router | .* | \*\*poor\*\*$" "$TMP/last.md" || fail "c must be marked poor in Markdown"
in_ns curl -fsS "$SP_URL/conference-report?conference=hop-tinh&format=csv" -o /dev/null -w '%{content_type}\n' | grep -q '^text/csv' ||
  fail "/conference-report: not text/csv"
[ "$(in_ns curl -s -o /dev/null -w '%{http_code}' "$SP_URL/conference-report?conference=nope")" = 404 ] || fail "unknown conference: not 404"
ip netns exec $NS "$SP_BIN" readiness --url "$SP_URL" --conference nope --report csv 2>"$TMP/err" && fail "unknown conference: exit 0"
grep -q 'No report for conference "nope"' "$TMP/err" || fail "unknown conference: $(cat "$TMP/err")"
pass "after the end: c's loss, downtime and changes, p clean, e absent, in CSV and Markdown"
