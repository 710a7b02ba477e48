#!/usr/bin/env bash
# Alerting rules and the example Alertmanager config: promtool check rules, promtool test rules,
# amtool check-config, and every alert covered by at least one test in which it fires.
# Takes the siteprobe binary as $1 like the other integration tests, and does not use it.
# Needs promtool and amtool (Debian: prometheus, prometheus-alertmanager; scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

RULES=alerts/siteprobe.rules.yml
TESTS=alerts/siteprobe.rules.test.yml
AM=alerts/alertmanager.yml
RUNBOOK=docs/runbook.md

failed=()

for tool in promtool amtool; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "FAIL: $tool not found (apt-get install prometheus prometheus-alertmanager, or scripts/install-deps.sh)" >&2
    exit 1
  fi
done

run() {  # run NAME COMMAND...: runs it, shows its output, records a failure
  local name=$1
  shift
  echo "--- $name: $*"
  if "$@"; then
    echo "ok: $name"
  else
    echo "FAIL: $name (exit $?)" >&2
    failed+=("$name")
  fi
}

run "promtool check rules" promtool check rules "$RULES"
run "promtool test rules" promtool test rules "$TESTS"
# The availability recording rules (issue #15 item 4): their own file and tests.
run "promtool check rules (sla)" promtool check rules alerts/siteprobe.sla.rules.yml
run "promtool test rules (sla)" promtool test rules alerts/siteprobe.sla.rules.test.yml
# Quorum across vantages (issue #14, docs/scale-out.md): for a ruler that sees every vantage.
run "promtool check rules (quorum)" promtool check rules alerts/siteprobe.quorum.rules.yml
run "promtool test rules (quorum)" promtool test rules alerts/siteprobe.quorum.rules.test.yml
# Every paging alert has its night-shift page in English and Vietnamese (docs/oncall*.md).
run "on-call pages" python3 scripts/check-oncall.py
# Every alert speaks both languages: summary and description, summary_vi and description_vi, each
# non-empty, and the Vietnamese one templated from the same labels (no label only one side uses).
run "alert texts in English and Vietnamese" python3 - "$RULES" <<'PY'
import re, sys, yaml
bad = []
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        if "alert" not in r:
            continue
        a = r.get("annotations", {})
        for k in ("summary", "description", "summary_vi", "description_vi"):
            if not str(a.get(k, "")).strip():
                bad.append(f"{r['alert']}: no {k}")
        labels = lambda t: set(re.findall(r"\$labels\.(\w+)", t))
        if labels(a.get("description", "")) != labels(a.get("description_vi", "")):
            bad.append(f"{r['alert']}: description and description_vi use different labels")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
for f in "$AM" alerts/*.example.yml; do run "amtool check-config $f" amtool check-config "$f"; done
# The documented office-hours option, uncommented, must load too (and route as documented).
office=$(mktemp /tmp/siteprobe-am-office.XXXXXX.yml)
trap 'rm -f "$office"' EXIT
sed '/OPTION (off)/,/^    - matchers/ s/^    # \([- ] \)/    \1/' "$AM" >"$office"
if cmp -s "$AM" "$office"; then
  echo "FAIL: no commented office-hours option found in $AM" >&2
  failed+=("office-hours option")
else
  run "amtool check-config (office-hours option)" amtool check-config "$office"
  route() { amtool config routes test --config.file="$1" "${@:2}" 2>/dev/null; }
  for want in "$AM|pager|alertname=SiteDown level=commune severity=critical" \
    "$office|pager,chat|alertname=SiteDown level=commune severity=critical" \
    "$office|pager|alertname=SiteDown level=district severity=critical" \
    "$AM|heartbeat|alertname=Watchdog severity=none" \
    "$AM|chat|alertname=HighPacketLoss severity=warning"; do
    IFS='|' read -r file receivers labels <<<"$want"
    # shellcheck disable=SC2086 # labels are separate words on purpose
    got=$(route "$file" $labels)
    if [ "$got" = "$receivers" ]; then
      echo "ok: route $labels -> $got"
    else
      echo "FAIL: route $labels in $file: got '$got', want '$receivers'" >&2
      failed+=("route $labels")
    fi
  done
fi

# Every alert name must have at least one test case that expects it to fire (a non-empty
# exp_alerts under its alertname).
echo "--- coverage: every alert of $RULES fires in $TESTS"
alerts=$(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' "$RULES" | sort -u)
fired=$(awk '
  /^ *alertname:/ { name = $2 }
  /^ *exp_alerts: *(&[A-Za-z0-9_-]+)? *$/ { if (name != "") print name }
' "$TESTS" | sort -u)
missing=$(comm -23 <(echo "$alerts") <(echo "$fired"))
if [ -n "$missing" ]; then
  echo "FAIL: no test where these alerts fire: ${missing//$'\n'/ }" >&2
  failed+=("coverage")
else
  echo "ok: all $(echo "$alerts" | wc -l) alerts fire in at least one test"
fi

# Every runbook_url anchor must exist as a heading in docs/runbook.md (GitHub anchor rules; the
# served pages themselves are checked by docs_offline.sh).
echo "--- runbook anchors"
anchors=$(sed -n 's/^#\{1,6\} \(.*\)$/\1/p' "$RUNBOOK" |
  tr '[:upper:]' '[:lower:]' | sed 's/[^a-z0-9 _-]//g; s/ /-/g' | sort -u)
while read -r a; do
  if ! grep -qx -- "$a" <<<"$anchors"; then
    echo "FAIL: $RUNBOOK has no section for #$a" >&2
    failed+=("runbook #$a")
  fi
done < <(sed -n 's/.*runbook_url:.*docs\/runbook#\([A-Za-z0-9_-]*\).*/\1/p' "$RULES" | sort -u)
# Paging alerts link to their night-shift page (docs/oncall.md, explicit anchors).
while read -r a; do
  if ! grep -q "^<a id=\"$a\"></a>$" docs/oncall.md; then
    echo "FAIL: docs/oncall.md has no section for #$a" >&2
    failed+=("oncall #$a")
  fi
done < <(sed -n 's/.*runbook_url:.*\(docs\/oncall\|siteprobe-oncall\.html\)#\([A-Za-z0-9_-]*\).*/\2/p' "$RULES" | sort -u)
[ "$(grep -cE 'runbook_url:.*(docs/oncall|siteprobe-oncall\.html)#' "$RULES")" -ge 10 ] || { echo "FAIL: paging alerts do not link to docs/oncall.md" >&2; failed+=("oncall links"); }

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "PASS: alert rules, rule tests and Alertmanager config"
