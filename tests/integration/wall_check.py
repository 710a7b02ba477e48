#!/usr/bin/env python3
"""The NOC overview as an operator reads it during one district outage (issue #19 item 1).

Runs the queries of two panels of grafana/dashboards/noc-overview.json, taken from the dashboard
itself, against a live Prometheus, and applies what the panels do with them:
  - "Needs attention now": the rows (state from query A, 'behind it' from query C) without the up
    and unreachable sites, sorted by state descending as the panel sorts them. The down district
    must be row 1, with its contact and every one of its communes counted behind it, and no
    unreachable site listed.
  - the three "Worst sites" bar gauges: no down or unreachable site among their bars.
Usage: wall_check.py PROMETHEUS_URL DOWN_SITE BEHIND
Exit status 0 when all hold, 1 otherwise (the reason is printed).
"""
import json
import os
import sys
import urllib.parse
import urllib.request

prom, down_site, behind = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
board = json.load(open(os.path.join(root, "grafana", "dashboards", "noc-overview.json"), encoding="utf-8"))
panels = {p["title"]: p for p in board["panels"]}


def query(expr):
    # The dashboard's Vantage selector: one siteprobe without --vantage is Grafana's None, the
    # empty string, which matches the series without the label.
    expr = expr.replace("$vantage", "")
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    return json.load(urllib.request.urlopen(url, timeout=10))["data"]["result"]


def fail(msg):
    print("wall_check: FAIL: " + msg)
    sys.exit(1)


attention = panels.get("Needs attention now") or fail("no 'Needs attention now' panel")
exprs = {t["refId"]: t["expr"] for t in attention["targets"]}
behind_of = {r["metric"]["site"]: int(float(r["value"][1])) for r in query(exprs["C"])}
rows = [(int(r["value"][1]), r["metric"]["site"], r["metric"].get("name", ""), r["metric"].get("contact", ""))
        for r in query(exprs["A"])]
rows = [r for r in rows if r[0] not in (1, 4)]
rows.sort(key=lambda r: -r[0])  # the panel's sortBy: state, descending (stable, as Grafana's)
print("Needs attention now (first rows):")
for state, site, name, contact in rows[:5]:
    print(f"  state={state} site={site} name={name} behind_it={behind_of.get(site, 0)} contact={contact}")
if not rows or rows[0][1] != down_site:
    fail(f"row 1 is {rows[0] if rows else 'missing'}, wanted {down_site}")
if not rows[0][3]:
    fail(f"row 1 ({down_site}) shows no contact (the inventory's `contact` label)")
if behind_of.get(down_site) != behind:
    fail(f"{down_site}: {behind_of.get(down_site)} sites behind it, wanted {behind}")

states = {r["metric"]["site"]: int(r["value"][1]) for r in query("siteprobe_site_state")}
for title, panel in panels.items():
    if not title.startswith("Worst sites"):
        continue
    bars = [r["metric"].get("site") for r in query(panel["targets"][0]["expr"])]
    bad = [s for s in bars if states.get(s) in (3, 4)]
    if bad:
        fail(f"'{title}' shows down or unreachable sites: {bad}")
    print(f"{title}: {len(bars)} bars, none down or unreachable")
print("wall_check: ok")
