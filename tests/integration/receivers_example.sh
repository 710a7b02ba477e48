#!/usr/bin/env bash
# The receiver example (alerts/receivers.example.yml with alerts/templates/siteprobe.tmpl) on a
# real Alertmanager: a commune's SiteDown page, with the annotations the shipped rules give it
# (taken from their promtool test), reaches the SMS bridge, and the Telegram message (to a local
# stand-in for the Bot API) is the Vietnamese text with the site's name, contact, circuit and the
# on-call link. On 127.0.0.1 only, no root.
source "$(dirname "$0")/lib.sh"
command -v prometheus-alertmanager >/dev/null || fail "prometheus-alertmanager not installed (scripts/install-deps.sh)"
ROOT=$(pwd)
AM=$(free_port); REC=$(free_port)

# The example with every placeholder URL pointed at the recorder, the template by absolute path,
# and short group waits so the test does not wait 30 s.
python3 - "$ROOT/alerts/receivers.example.yml" "$TMP/am.yml" "$REC" "$ROOT/alerts/templates" <<'PY'
import re, sys
src, dst, port, tmpl = sys.argv[1:]
text, n = re.subn(r"http://127\.0\.0\.1:\d+", f"http://127.0.0.1:{port}", open(src).read())
assert n == 4, f"expected four placeholder URLs, got {n}"
text, n = re.subn(r"(?m)^  - templates/\*\.tmpl$", f"  - {tmpl}/*.tmpl", text)
assert n == 1
text = re.sub(r"(?m)^(\s*group_wait:) \S+", r"\1 1s", text)
text = re.sub(r"(?m)^(  group_by: .*)$", r"\1\n  group_wait: 1s\n  group_interval: 2s", text, count=1)
open(dst, "w").write(text)
PY
touch "$TMP/posts.jsonl"
python3 - "$REC" "$TMP/posts.jsonl" <<'PY' &
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port, out = int(sys.argv[1]), sys.argv[2]
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8")
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "type": self.headers.get("Content-Type"), "body": body}) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        # What the Bot API answers to sendMessage.
        self.wfile.write(b'{"ok":true,"result":{"message_id":1,"date":0,"chat":{"id":-1000000000000,"type":"group"}}}')
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
CLEANUPS+=("kill $!")
start_alertmanager "$TMP/am.yml"

# A commune's SiteDown exactly as the shipped rules raise it (the promtool case with a contact).
python3 - "$ROOT/alerts/siteprobe.rules.test.yml" >"$TMP/alert.json" <<'PY'
import json, sys, yaml
for t in yaml.safe_load(open(sys.argv[1]))["tests"]:
    for c in t.get("alert_rule_test", []):
        for a in c.get("exp_alerts") or []:
            ann = a.get("exp_annotations", {})
            if c["alertname"] == "SiteDown" and "Liên hệ" in ann.get("description_vi", ""):
                print(json.dumps([{"labels": dict(a["exp_labels"], alertname="SiteDown"), "annotations": ann}]))
                sys.exit(0)
sys.exit("no SiteDown case with a contact in the rule tests")
PY
curl -fsS -X POST -H 'Content-Type: application/json' --data @"$TMP/alert.json" "http://127.0.0.1:$AM/api/v2/alerts" >/dev/null ||
  fail "POST /api/v2/alerts"

for _ in $(seq 1 100); do
  grep -q sendMessage "$TMP/posts.jsonl" && grep -q '"/sms"' "$TMP/posts.jsonl" && break
  sleep 0.1
done
python3 - "$TMP/posts.jsonl" "$TMP/alert.json" <<'PY' || { cat "$TMP/am.log"; fail "notifications"; }
import json, sys, urllib.parse
posts = [json.loads(l) for l in open(sys.argv[1])]
alert = json.load(open(sys.argv[2]))[0]
lab, ann = alert["labels"], alert["annotations"]
tg = [p for p in posts if p["path"].endswith("/sendMessage")]
sms = [p for p in posts if p["path"] == "/sms"]
assert len(tg) == 1 and len(sms) == 1, [p["path"] for p in posts]
b = tg[0]["body"]
text = json.loads(b)["text"] if b.lstrip().startswith("{") else urllib.parse.parse_qs(b)["text"][0]
print("--- the Telegram message\n" + text + "\n---")
want = [f"[CRITICAL] SiteDown {lab['name']} ({lab['site']})", ann["summary_vi"], ann["description_vi"],
        ann["runbook_url"], "Liên hệ: ", "Mã kênh: "]
missing = [w for w in want if w not in text]
assert not missing, f"missing from the Telegram message: {missing}"
hook = json.loads(sms[0]["body"])
assert hook["alerts"][0]["annotations"]["description_vi"] == ann["description_vi"]
PY
pass "the example's Telegram message is the Vietnamese page with contact, circuit and link; the SMS bridge got the alert"
