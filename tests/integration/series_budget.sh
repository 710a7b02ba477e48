#!/usr/bin/env bash
# The series budget of docs/metrics.md#series-budget (issue #12): siteprobe on the reference
# inventory (config/bac-kan.yml, every address already on loopback) with default settings. Nothing
# answers SIP, H.323 or SNMP there, so every endpoint is not ready and each check has one error
# kind: the most series a healthy or failing endpoint has. SNMP agents would add interface series,
# which are outside the budget. Counts the series of each device (the most of any device of a
# role), of each site, and all of them, and the bytes of one scrape; fails over any budget.
source "$(dirname "$0")/lib.sh"
need_root

start_siteprobe config/bac-kan.yml
# Every ICMP round, SIP and H.323 check has run once within its 10 s interval (plus a 2 s timeout).
sleep 14
scrape >"$TMP/metrics"

python3 - "$TMP/metrics" <<'PY' || fail "over budget (docs/metrics.md#series-budget)"
import collections, os, re, sys
path = sys.argv[1]
# role (or "site", "global") -> most series of one device (site): docs/metrics.md#series-budget.
budget = {"router": 28, "switch": 20, "vc_endpoint": 44, "mcu": 54, "site": 4, "global": 40}
max_series, max_bytes = 10000, 1500000
per = collections.Counter()
role_of = {}
for line in open(path, encoding="utf-8"):
    if line.startswith("#"):
        continue
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
    if "device" in labels and "site" in labels and "role" in labels:
        key = (labels["role"], labels["site"], labels["device"])
    elif "site" in labels and "device" not in labels:
        key = ("site", labels["site"], "")
    else:
        key = ("global", "", "")
    per[key] += 1
most = collections.Counter()
count = collections.Counter()
for (kind, _, _), n in per.items():
    most[kind] = max(most[kind], n)
    count[kind] += 1
total, size = sum(per.values()), os.path.getsize(path)
ok = True
print(f"{'type':12} {'count':>5} {'series (most)':>13} {'budget':>6}")
for kind in sorted(set(budget) | set(most)):
    b = budget.get(kind, 0)
    print(f"{kind:12} {count[kind]:5} {most[kind]:13} {b:6}")
    ok &= most[kind] <= b
print(f"total: {total} series (budget {max_series}), {size} bytes (budget {max_bytes})")
# The figure docs/metrics.md#series-budget gives must be current (within 2 %).
m = re.search(r"\*\*reference inventory\*\* \| \*\*([\d,]+) series, ([\d.]+) MB\*\*",
              open("docs/metrics.md", encoding="utf-8").read())  # run from the source tree
doc_series, doc_mb = int(m.group(1).replace(",", "")), float(m.group(2))
if abs(doc_series - total) > 0.02 * total or abs(doc_mb - size / 1e6) > 0.02 * size / 1e6:
    print(f"docs/metrics.md says {doc_series} series, {doc_mb} MB: out of date")
    ok = False
sys.exit(0 if ok and total <= max_series and size <= max_bytes else 1)
PY
pass "reference inventory within its series budget"
