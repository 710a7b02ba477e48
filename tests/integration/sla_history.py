#!/usr/bin/env python3
"""A month of siteprobe history with known outages, for tests/integration/sla_report.sh.

Writes DIR/inv.yml (the inventory), DIR/history.om (OpenMetrics for `promtool tsdb
create-blocks-from openmetrics`, one sample a minute from an hour before November 2026 (+07:00)
to half an hour after it) and DIR/truth.csv: what `siteprobe report --format csv` must print,
computed here minute by minute from the scenario, not from Prometheus.
"""
import datetime as dt
import sys

OUT = sys.argv[1]
TZ = dt.timezone(dt.timedelta(hours=7))
START = int(dt.datetime(2026, 11, 1, tzinfo=TZ).timestamp()) // 60  # minutes
END = int(dt.datetime(2026, 12, 1, tzinfo=TZ).timestamp()) // 60
FIRST, LAST = START - 60, END + 30
GRACE = 15  # daemon/report.h kRebootGraceMinutes
JOB = 'job="siteprobe",instance="127.0.0.1:9723"'

SITES = [  # id, name, level, parent
    ("bac-kan", "Tỉnh Bắc Kạn", "province", ""),
    ("ba-be", "Huyện Ba Bể", "district", "bac-kan"),
    ("ba-be.cho-ra", "Thị trấn Chợ Rã", "commune", "ba-be"),
    ("ba-be.khang-ninh", "Xã Khang Ninh", "commune", "ba-be"),
    ("ba-be.nam-mau", "Xã Nam Mẫu", "commune", "ba-be"),
    ("cho-don", "Huyện Chợ Đồn", "district", "bac-kan"),
    ("cho-don.bang-lang", "Thị trấn Bằng Lũng", "commune", "cho-don"),
    ("cho-don.dong-lac", "Xã Đồng Lạc", "commune", "cho-don"),
]
SLO = {"": 99.5, "ba-be": 99.0, "cho-don.bang-lang": 99.99}  # "" = sla.slo; a district's covers its communes


def m(day, hh, mm, month=11):  # a local time as a minute number
    return int(dt.datetime(2026, month, day, hh, mm, tzinfo=TZ).timestamp()) // 60


def span(a, b):  # [a, b) in minutes
    return range(a, b)


state = {s[0]: {t: 1 for t in range(FIRST, LAST)} for s in SITES}
maint = {s[0]: set() for s in SITES}        # site-wide windows
dev_maint = {s[0]: set() for s in SITES}    # a window on one device only: does not excuse the site
endpoint = {s[0]: set() for s in SITES}     # call_service_down while the site is up
reboots = {s[0]: [] for s in SITES}         # minutes the router's reboot counter goes up


def down(site, a, b, v=3):
    for t in span(a, b):
        state[site][t] = v


# 1. A commune down 95 min, and again 30 min later in the month.
down("cho-don.dong-lac", m(5, 9, 10), m(5, 10, 45))
down("cho-don.dong-lac", m(27, 10, 0), m(27, 10, 30))
# 2. A district down 40 min: its communes unreachable (held against the district only).
down("ba-be", m(12, 14, 0), m(12, 14, 40))
for c in ("ba-be.cho-ra", "ba-be.khang-ninh", "ba-be.nam-mau"):
    down(c, m(12, 14, 0), m(12, 14, 40), 4)
# 3. A 2 h maintenance window; the site is down inside it, and 10 min past its end.
maint["ba-be.khang-ninh"].update(span(m(18, 22, 0), m(19, 0, 0)))
down("ba-be.khang-ninh", m(18, 23, 0), m(18, 23, 30))
down("ba-be.khang-ninh", m(18, 23, 50), m(19, 0, 10))
# 4. A reboot: down 7 min, the agent's restart seen 3 min after; a reboot elsewhere, no outage.
down("cho-don.bang-lang", m(20, 3, 0), m(20, 3, 7))
reboots["cho-don.bang-lang"].append(m(20, 3, 9))
reboots["bac-kan"].append(m(21, 4, 0))
# 5. An endpoint's call service down 50 min while its site is up.
endpoint["ba-be.cho-ra"].update(span(m(25, 8, 0), m(25, 8, 50)))
# 6. Outages across the month's edges: only the minutes inside count.
down("ba-be.nam-mau", m(31, 23, 45, month=10), m(1, 0, 15))
down("bac-kan", m(30, 23, 50), m(1, 0, 20, month=12))
# 7. Degraded is up; a device's own window does not excuse its site's outage.
down("cho-don", m(14, 8, 0), m(14, 12, 0), 2)
dev_maint["cho-don"].update(span(m(15, 1, 0), m(15, 2, 0)))
down("cho-don", m(15, 1, 10), m(15, 1, 20))
# 8. siteprobe restarting: 3 min unknown, then 10 min without any data.
for s in state:
    down(s, m(8, 6, 0), m(8, 6, 3), 0)
    for t in span(m(8, 6, 3), m(8, 6, 13)):
        del state[s][t]

# --- the history
om = open(f"{OUT}/history.om", "w")
chain = {}
for sid, _, level, parent in SITES:
    labels = f'{JOB},site="{sid}",level="{level}",province="bac-kan"'
    district = sid if level == "district" else parent if level == "commune" else ""
    chain[sid] = labels + (f',district="{district}"' if district else "")
om.write("# TYPE siteprobe_site_state gauge\n")
for sid in state:
    for t in sorted(state[sid]):
        om.write(f"siteprobe_site_state{{{chain[sid]}}} {state[sid][t]} {t * 60}\n")
om.write("# TYPE siteprobe_maintenance gauge\n")
for sid in state:
    for t in sorted(maint[sid]):
        om.write(f'siteprobe_maintenance{{{JOB},site="{sid}",window="w-{sid}",reason="upgrade"}} 1 {t * 60}\n')
    for t in sorted(dev_maint[sid]):
        om.write(f'siteprobe_maintenance{{{JOB},site="{sid}",device="router",window="r-{sid}",reason="x"}} 1 {t * 60}\n')
om.write("# TYPE siteprobe_endpoint_not_ready_reason gauge\n")
for sid in state:
    for t in sorted(endpoint[sid]):
        om.write(f'siteprobe_endpoint_not_ready_reason{{{chain[sid]},device="vc",role="vc_endpoint",'
                 f'reason="call_service_down"}} 1 {t * 60}\n')
om.write("# TYPE siteprobe_snmp_device_reboots counter\n")
for sid in state:
    for t in range(FIRST, LAST):
        n = sum(1 for r in reboots[sid] if r <= t)
        om.write(f'siteprobe_snmp_device_reboots_total{{{chain[sid]},device="router",role="router"}} {n} {t * 60}\n')
om.write("# EOF\n")
om.close()

# --- the inventory
with open(f"{OUT}/inv.yml", "w") as f:
    f.write("sla:\n  slo: 99.5\n  time_zone: Asia/Ho_Chi_Minh\n  sites: {ba-be: 99.0, cho-don.bang-lang: 99.99}\nsites:\n")
    for i, (sid, name, level, parent) in enumerate(SITES):
        p = f", parent: {parent}" if parent else ""
        f.write(f"  - {{id: {sid}, name: {name}, level: {level}{p}, "
                f"devices: [{{name: router, address: 127.0.0.{i + 1}, role: router}}]}}\n")


# --- the truth, minute by minute
def outcome(sid):
    o = dict(counted=0, site_down=0, reboot=0, endpoint=0, parent=0, maint=0, longest=0, start=0)
    downs, bad = [], []
    for t in range(START, END):
        st = state[sid].get(t)
        if t in maint[sid]:
            o["maint"] += 1
            continue
        if st is not None and st >= 1:
            o["counted"] += 1
        if st == 3:
            downs.append(t)
            bad.append(t)
        elif st == 4:
            o["parent"] += 1
        elif st in (1, 2) and t in endpoint[sid]:
            o["endpoint"] += 1
            bad.append(t)
    for run in runs(downs):
        rb = any(run[0] <= r <= run[-1] + GRACE for r in reboots[sid])
        o["reboot" if rb else "site_down"] += len(run)
    for run in runs(bad):
        if len(run) > o["longest"]:
            o["longest"], o["start"] = len(run), run[0]
    return o


def runs(ts):
    out = []
    for t in ts:
        if out and out[-1][-1] + 1 == t:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def slo_of(sid):
    for k in (sid, sid.split(".")[0]):
        if k in SLO:
            return SLO[k]
    return SLO[""]


def row(kind, district, sid, name, level, slo, o):
    d = o["site_down"] + o["reboot"] + o["endpoint"]
    avail = "%.3f" % (100.0 * (1.0 - d / o["counted"])) if o["counted"] else "n/a"
    met = "n/a" if not o["counted"] else "yes" if 100.0 * (1.0 - d / o["counted"]) >= slo else "no"
    start = dt.datetime.fromtimestamp(o["start"] * 60, TZ).strftime("%Y-%m-%d %H:%M") if o["start"] else ""
    cells = [kind, district, sid, name, level, "%g" % slo, avail, met, o["counted"], o["site_down"], o["reboot"],
             o["endpoint"], o["parent"], o["longest"], start, o["maint"]]
    return ",".join(str(c) for c in cells) + "\r\n"


out = ["row,district,site,name,level,slo_percent,availability_percent,slo_met,counted_min,site_down_min,"
       "reboot_min,endpoint_down_min,parent_down_min,longest_outage_min,longest_outage_start,maintenance_min\r\n"]
out.append(row("site", "", "bac-kan", SITES[0][1], "province", slo_of("bac-kan"), outcome("bac-kan")))
for did, dname, _, _ in (s for s in SITES if s[2] == "district"):
    members = [s for s in SITES if s[0] == did or s[3] == did]
    os_ = {s[0]: outcome(s[0]) for s in members}
    tot = {k: sum(o[k] for o in os_.values()) for k in ("counted", "site_down", "reboot", "endpoint", "parent", "maint")}
    best = max(os_.values(), key=lambda o: o["longest"])  # first of the longest, in tree order
    tot["longest"], tot["start"] = best["longest"], best["start"]
    out.append(row("district", did, "", dname, "district", slo_of(did), tot))
    for sid, name, level, _ in members:
        out.append(row("site", did, sid, name, level, slo_of(sid), os_[sid]))
open(f"{OUT}/truth.csv", "w", newline="").write("".join(out))
print(f"history {FIRST * 60}..{LAST * 60}")
