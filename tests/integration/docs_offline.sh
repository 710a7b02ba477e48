#!/usr/bin/env bash
# The docs open on a closed network (issue #19 item 7): no alert links to the internet; every
# runbook_url that names the siteprobe instance opens a page siteprobe serves, at an anchor that
# exists; every link between the served docs resolves; and the alerts that fire when no siteprobe
# answers link to the on-call page as a console file of the real Prometheus, checked on the
# Watchdog alert as Prometheus itself renders it.
source "$(dirname "$0")/lib.sh"
RULES=alerts/siteprobe.rules.yml
CONSOLES=$(dirname "$SP_BIN")/consoles

if grep -nE 'runbook_url:.*https?://[a-z]' "$RULES" alerts/siteprobe.sla.rules.yml; then
  fail "a runbook_url points at a fixed host (the internet?), not at the installed docs"
fi
pass "no runbook_url names a fixed host"

small_inventory "$TMP/inv.yml" "{name: r, address: 127.0.0.1, role: router}"
start_siteprobe "$TMP/inv.yml"

# Every served page, and every link and anchor in them and in the rules.
python3 - "$SP_URL" "$RULES" <<'PY' || fail "docs links"
import re, sys, urllib.request
base, rules = sys.argv[1], sys.argv[2]
pages, bad = {}, []
def page(name):
    if name not in pages:
        try:
            with urllib.request.urlopen(f"{base}/docs/{name}") as r:
                assert r.headers["Content-Type"] == "text/html; charset=utf-8", r.headers["Content-Type"]
                pages[name] = r.read().decode("utf-8")
        except Exception as e:  # noqa: BLE001 - reported below
            pages[name] = None
            bad.append(f"/docs/{name}: {e}")
    return pages[name]
def check(name, anchor, where):
    text = page(name)
    if text is not None and anchor and f'id="{anchor}"' not in text:
        bad.append(f"{where}: /docs/{name} has no #{anchor}")
index = page("")
names = re.findall(r'href="/docs/([^"#]+)"', index or "")
for want in ("oncall", "oncall.vi", "runbook", "alerts", "metrics", "inventory"):
    if want not in names:
        bad.append(f"index lacks {want}")
links = 0
for n in names:
    for target, anchor in re.findall(r'href="/docs/([^"#]*)(?:#([^"]*))?"', page(n) or ""):
        check(target, anchor, f"/docs/{n}"); links += 1
urls = re.findall(r"runbook_url: '?http://\{\{ \$labels\.instance \}\}/docs/([^#']+)#([^'\s]+)", open(rules).read())
for name, anchor in urls:
    check(name, anchor, "rules")
if len(urls) < 25:
    bad.append(f"only {len(urls)} runbook_urls name the instance")
print(f"{len(names)} pages, {links} links between them, {len(urls)} runbook_urls checked")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
pass "served docs: every page, link and runbook anchor resolves"

# The blind-monitoring alerts link to Prometheus' console: Watchdog always fires, so its rendered
# link is fetched from the real Prometheus.
PR=$(free_port)
cat >"$TMP/prom.yml" <<YAML
global: {evaluation_interval: 1s}
rule_files: ["$PWD/$RULES"]
YAML
prometheus --config.file="$TMP/prom.yml" --storage.tsdb.path="$TMP/prom" --web.listen-address="127.0.0.1:$PR" \
  --web.external-url="http://127.0.0.1:$PR" --web.console.templates="$CONSOLES" >"$TMP/prom.log" 2>&1 &
CLEANUPS+=("kill $!")
url=""
for _ in $(seq 1 60); do
  url=$(curl -fsS "http://127.0.0.1:$PR/api/v1/alerts" 2>/dev/null | python3 -c '
import json, sys
for a in json.load(sys.stdin)["data"]["alerts"]:
    if a["labels"]["alertname"] == "Watchdog": print(a["annotations"]["runbook_url"])' 2>/dev/null || true)
  [ -n "$url" ] && break
  sleep 0.5
done
[ "$url" = "http://127.0.0.1:$PR/consoles/siteprobe-oncall.html#watchdog" ] || { cat "$TMP/prom.log"; fail "Watchdog runbook_url '$url'"; }
for p in siteprobe-oncall.html siteprobe-oncall.vi.html; do
  curl -fsS "http://127.0.0.1:$PR/consoles/$p" >"$TMP/$p" || fail "Prometheus does not serve $p"
  for a in watchdog siteprobe-down site-down; do grep -q "id=\"$a\"" "$TMP/$p" || fail "$p has no #$a"; done
done
grep -q 'href="siteprobe-oncall.vi.html"' "$TMP/siteprobe-oncall.html" || fail "no link to the Vietnamese page"
pass "Watchdog links to $url, served by Prometheus in both languages"
