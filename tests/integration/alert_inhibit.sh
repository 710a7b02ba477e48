#!/usr/bin/env bash
# The shipped alerts/alertmanager.yml on a real Alertmanager (Debian's prometheus-alertmanager),
# fed through its API (POST /api/v2/alerts) with the alerts the shipped rules raise for each
# scenario, and delivering to webhook.py, which records every notification. On 127.0.0.1 only,
# no root. Asserts, per scenario, the notifications a NOC would get:
#  A. backbone fault: BackboneFault and the SiteDown of all 8 districts of bac-kan (the province
#     up) -> exactly 1 notification, BackboneFault, to the pager;
#  B. a lossy commune: HighPacketLoss on its router and codec, and LowVideoMOS on the codec a few
#     seconds later -> exactly 1 notification, to the chat, without LowVideoMOS (inhibited);
#  C. control: 2 districts down in another province with no BackboneFault -> 2 pages, one each;
#  D. the Watchdog -> its own receiver, heartbeat, and no other;
#  E. a flapping district: SiteFlapping, its own SiteDown and a commune's SiteDown behind it ->
#     exactly 1 notification, SiteFlapping, to the pager.
# The config is as shipped except the receiver URLs and shorter group_wait/group_interval (2 s/4 s),
# so follow-up notifications, if any, would come within the test.
source "$(dirname "$0")/lib.sh"
command -v prometheus-alertmanager >/dev/null || fail "prometheus-alertmanager not installed (scripts/install-deps.sh)"
ROOT=$(pwd)
AM=$(free_port); WH=$(free_port)

python3 - "$ROOT/alerts/alertmanager.yml" "$TMP/am.yml" "$WH" <<'PY'
import re, sys
src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3]
text, n = re.subn(r"http://127\.0\.0\.1:\d+/", f"http://127.0.0.1:{port}/", open(src).read())
assert n == 3, f"expected three receiver URLs (pager, chat, heartbeat) in alertmanager.yml, got {n}"
text = re.sub(r"(?m)^(\s*#?\s*group_wait:) \S+", r"\1 2s", text)
text = re.sub(r"(?m)^(\s*#?\s*group_interval:) \S+", r"\1 4s", text)
open(dst, "w").write(text)
PY
touch "$TMP/notes.jsonl"
python3 "$ROOT/tests/integration/webhook.py" "$WH" "$TMP/notes.jsonl" &
CLEANUPS+=("kill $!")
start_alertmanager "$TMP/am.yml"

# post 'label=value,...' ...: one alert per argument, all in one POST, firing from now.
post() {
  python3 -c 'import json, sys
print(json.dumps([{"labels": dict(kv.split("=", 1) for kv in a.split(","))} for a in sys.argv[1:]]))' "$@" |
    curl -fsS -X POST -H 'Content-Type: application/json' --data @- "http://127.0.0.1:$AM/api/v2/alerts" >/dev/null ||
    fail "POST /api/v2/alerts"
}
# notifications RECEIVER FILTER -> one line per firing notification to RECEIVER holding an alert
# whose labels include FILTER (k=v): its alert names, sorted, with counts ("SiteDown x2").
notifications() {
  python3 -c 'import collections, json, sys
receiver, (k, v) = sys.argv[2], sys.argv[3].split("=", 1)
notes = collections.defaultdict(list)
for line in open(sys.argv[1]):
    n = json.loads(line)
    if n["receiver"] == receiver and n["status"] == "firing":
        notes[n["notification"]].append(n["labels"])
for i in sorted(notes):
    if any(l.get(k) == v for l in notes[i]):
        c = collections.Counter(l["alertname"] for l in notes[i])
        print(" ".join(f"{a} x{c[a]}" for a in sorted(c)))' "$TMP/notes.jsonl" "$@"
}

J=job=siteprobe,severity=critical
I=instance=siteprobe:9723
t0=$(date +%s)
# A: Prometheus sends BackboneFault first (`for: 0s`), the districts' SiteDown after their 15 s.
post "alertname=BackboneFault,$J,$I,province=bac-kan"
districts=()
for d in ba-be bach-thong cho-don cho-moi na-ri ngan-son pac-nam tp-bac-kan; do
  districts+=("alertname=SiteDown,$J,$I,level=district,province=bac-kan,district=$d,site=$d,parent=bac-kan,name=$d")
done
post "${districts[@]}"
# C: another siteprobe's province with two districts down and no backbone alert.
post "alertname=SiteDown,$J,instance=other:9723,level=district,province=p2,district=x1,site=x1,parent=p2,name=x1" \
  "alertname=SiteDown,$J,instance=other:9723,level=district,province=p2,district=x2,site=x2,parent=p2,name=x2"
# B: a commune with 20 % loss; LowVideoMOS follows after the first message went out. From another
# siteprobe: in bac-kan every district is down (A), which silences all its communes' alerts.
W=job=siteprobe,severity=warning,instance=b:9723,level=commune,province=pb,district=na-ri,site=na-ri.cu-le,name=cu-le
post "alertname=HighPacketLoss,$W,device=router,role=router" "alertname=HighPacketLoss,$W,device=vc,role=vc_endpoint"
# D: the dead-man's switch.
post "alertname=Watchdog,severity=none"
# E: a flapping district (another siteprobe), with its SiteDown and a commune's behind it.
post "alertname=SiteFlapping,$J,instance=e:9723,level=district,province=pe,district=fl,site=fl,parent=pe,name=fl" \
  "alertname=SiteDown,$J,instance=e:9723,level=district,province=pe,district=fl,site=fl,parent=pe,name=fl" \
  "alertname=SiteDown,$J,instance=e:9723,level=commune,province=pe,district=fl,site=fl.c1,parent=fl,name=c1"

until [ -n "$(notifications chat site=na-ri.cu-le)" ]; do
  [ $(($(date +%s) - t0)) -le 20 ] || { cat "$TMP/notes.jsonl"; fail "no chat notification for the lossy commune within 20 s"; }
  sleep 0.5
done
post "alertname=LowVideoMOS,$W,device=vc,role=vc_endpoint"
sleep 14  # more than 3 group_intervals after the last alert: room for any follow-up notification

inhibited=$(curl -fsS "http://127.0.0.1:$AM/api/v2/alerts?filter=alertname%3D%22LowVideoMOS%22" |
  python3 -c 'import json,sys; print(" ".join(str(bool(a["status"]["inhibitedBy"])) for a in json.load(sys.stdin)))')
[ "$inhibited" = True ] || fail "LowVideoMOS is not shown as inhibited in Alertmanager (got '$inhibited')"

check() {  # check SCENARIO RECEIVER FILTER EXPECTED
  local got
  got=$(notifications "$2" "$3")
  echo "$1: $2 got $(grep -c . <<<"$got") notification(s): ${got//$'\n'/; }"
  [ "$got" = "$4" ] || { cat "$TMP/notes.jsonl" >&2; fail "$1: expected '$4' to $2"; }
}
check "A all 8 districts down, province up" pager province=bac-kan "BackboneFault x1"
check "B lossy commune, loss and MOS" chat site=na-ri.cu-le "HighPacketLoss x2"
check "C 2 districts down, no backbone alert" pager province=p2 "$(printf 'SiteDown x1\nSiteDown x1')"
check "E flapping district" pager province=pe "SiteFlapping x1"
[ -n "$(notifications heartbeat alertname=Watchdog)" ] || fail "D: no Watchdog notification to heartbeat"
for r in pager chat; do
  [ -z "$(notifications $r alertname=Watchdog)" ] || fail "D: Watchdog reached $r"
done
pass "D Watchdog: heartbeat only ($(notifications heartbeat alertname=Watchdog | grep -c .) notification(s))"
pass "one notification per cause: backbone fault, lossy commune, flapping district; $(($(date +%s) - t0)) s"
