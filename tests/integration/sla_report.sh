#!/usr/bin/env bash
# Issue #15 item 4: `siteprobe report` against a real Prometheus holding a month of backfilled
# history. sla_history.py writes November 2026 (+07:00) at one sample a minute with known outages
# and windows, and the truth computed from the scenario minute by minute; promtool backfills the
# history; the CSV report must equal the truth byte for byte (every minute count), the md and html
# renderings must hold the same rows. About 40 s. (The recording rules' minute semantics are in
# alerts/siteprobe.sla.rules.test.yml; backfilling them over a month here took minutes.)
#
# Backfilled samples carry no staleness markers: a series that ends (a maintenance window, a
# not-ready reason) would stay visible for the 5-minute lookback. Prometheus runs with a 59 s
# lookback, so at one sample a minute each minute sees only its own sample, as a scraped series
# that ends (marked stale) is seen in production.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
for tool in prometheus promtool; do
  command -v $tool >/dev/null || fail "$tool not found (apt-get install prometheus, or scripts/install-deps.sh)"
done

python3 "$ROOT/tests/integration/sla_history.py" "$TMP" >/dev/null || fail "generating the history"
promtool tsdb create-blocks-from openmetrics -q --max-block-duration=24h "$TMP/history.om" "$TMP/tsdb" >"$TMP/backfill.log" 2>&1 ||
  { cat "$TMP/backfill.log"; fail "promtool could not backfill the history"; }
pass "history backfilled ($(wc -l <"$TMP/history.om") samples)"

PR=$(free_port)
printf 'global: {scrape_interval: 1m}\n' >"$TMP/prom.yml"
start_prometheus() {
  prometheus --config.file="$TMP/prom.yml" --storage.tsdb.path="$TMP/tsdb" --storage.tsdb.retention.time=10y \
    --query.lookback-delta=59s --web.listen-address="127.0.0.1:$PR" >>"$TMP/prom.log" 2>&1 &
  CLEANUPS+=("kill $!")
  for _ in $(seq 1 150); do curl -fsS "http://127.0.0.1:$PR/-/ready" >/dev/null 2>&1 && return 0; sleep 0.2; done
  cat "$TMP/prom.log"; fail "prometheus not ready"
}
start_prometheus

report() { "$SP_BIN" report --prometheus "http://127.0.0.1:$PR" --month 2026-11 --config "$TMP/inv.yml" "$@"; }
report --format csv >"$TMP/report.csv" 2>"$TMP/report.err" || { cat "$TMP/report.err"; fail "report exited $?"; }
echo "--- truth"; cat "$TMP/truth.csv"
echo "--- report"; cat "$TMP/report.csv"
diff "$TMP/truth.csv" "$TMP/report.csv" || fail "the report differs from the generated truth"
[ "$(wc -l <"$TMP/truth.csv")" -eq 11 ] || fail "truth has $(wc -l <"$TMP/truth.csv") lines, want 11"
pass "csv report equals the generated truth to the minute"

# md and html: the same cells, row by row.
report --format md >"$TMP/report.md" || fail "md report"
report --format html >"$TMP/report.html" || fail "html report"
python3 - "$TMP" <<'PY' || fail "md/html renderings"
import csv, html.parser, sys
d = sys.argv[1]
rows = list(csv.reader(open(f"{d}/report.csv", newline="")))
md = [[c.strip().strip("*") for c in l.strip().strip("|").split("|")] for l in open(f"{d}/report.md") if l.startswith("| ")]
assert md == rows, f"md rows differ:\n{md}\n{rows}"
class P(html.parser.HTMLParser):
    def __init__(s):
        super().__init__(); s.rows, s.cell, s.stack = [], None, []
    def handle_starttag(s, t, a):
        if t in ("table", "thead", "tbody", "tr", "td", "th", "html", "head", "body", "style", "title", "h1"):
            s.stack.append(t)
        if t == "tr": s.rows.append([])
        if t in ("td", "th"): s.cell = ""
    def handle_endtag(s, t):
        assert s.stack and s.stack[-1] == t, f"</{t}> closes <{s.stack[-1] if s.stack else None}>"
        s.stack.pop()
        if t in ("td", "th"): s.rows[-1].append(s.cell); s.cell = None
    def handle_data(s, x):
        if s.cell is not None: s.cell += x
p = P(); p.feed(open(f"{d}/report.html", encoding="utf-8").read()); p.close()
assert not p.stack, f"unclosed {p.stack}"
assert p.rows == rows, f"html rows differ:\n{p.rows}\n{rows}"
page = open(f"{d}/report.html", encoding="utf-8").read()
assert '<meta charset="utf-8">' in page and "@media print" in page and "Xã Đồng Lạc" in page
PY
pass "md and html hold the same rows (html well-formed, UTF-8, print CSS)"

# Errors: nothing listening, a Prometheus error answer, a bad month.
dead=$(free_port)
if out=$("$SP_BIN" report --prometheus "http://127.0.0.1:$dead" --month 2026-11 --config "$TMP/inv.yml" 2>&1); then
  fail "report succeeded without Prometheus"
fi
grep -q "no answer from" <<<"$out" || fail "unclear error without Prometheus: $out"
"$SP_BIN" report --prometheus "http://127.0.0.1:$PR/no-such-prefix" --month 2026-11 --config "$TMP/inv.yml" \
  >/dev/null 2>&1 && fail "report succeeded against a wrong path"
set +e; report --month 2026-13 >/dev/null 2>&1; rc=$?; set -e
[ $rc -eq 2 ] || fail "--month 2026-13 exited $rc, want 2"
pass "errors: no Prometheus, wrong path, bad month"
echo "PASS: sla_report"
