#!/usr/bin/env python3
"""Checks the siteprobe Grafana dashboards and provisioning files (python3 standard library only).

Static checks (always):
  - every grafana/dashboards/*.json is canonical JSON: byte-identical to
    json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\\n", which is also what
    `jq --sort-keys --indent 2 .` prints;
  - uids are unique, panel ids unique per dashboard, every panel has a gridPos;
  - dashboards/vi/ is what grafana/translate.py makes of the English dashboards, and every text
    a person reads has its Vietnamese in i18n/vi.json;
  - every `datasource` anywhere in a dashboard is {"type": "prometheus", "uid": UID}, and every
    panel (rows included), target and query variable names it; the datasource provisioning file
    declares that uid and the dashboard provider reads files with foldersFromFilesStructure.

Live checks (with --prometheus URL):
  - the template variables of each dashboard are resolved in order against the running
    Prometheus (label_values(expr, label) runs as `group by (label) (expr)`); the first value in
    sort order is used, or "All" where the dashboard's saved current value is All;
  - every annotation query must parse on /api/v1/query (it may be empty);
  - every targets[].expr is run on /api/v1/query after substituting the variables and
    $__rate_interval=1m, $__interval=15s, $__range=5m. Each must parse and return data; in
    tables that merge several queries, no result may keep __name__ (rows would not merge).

Usage:
  check-dashboards.py [--prometheus http://127.0.0.1:9090] [--format] [--dir GRAFANA_DIR]
  --format rewrites the dashboards canonically instead of failing on formatting.
Exit status: 0 all good, 1 some check failed, 2 usage error or Prometheus unreachable.
"""
import argparse
import glob
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import translate  # noqa: E402  (grafana/translate.py: the Vietnamese dashboards)

DS_UID = "siteprobe-prometheus"
DS = {"type": "prometheus", "uid": DS_UID}
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}
OPTIONAL_VARS = {"vantage"}  # may have no values (see resolve_variable)
VAR_RE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(\w+)")
REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|{}\[\]])")


def canonical(obj):
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def all_panels(panels):
    for p in panels or []:
        yield p
        yield from all_panels(p.get("panels"))


def walk_datasources(node, path="$"):
    """Yields (path, value) of every "datasource" key in a JSON tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource":
                yield f"{path}.{k}", v
            yield from walk_datasources(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_datasources(v, f"{path}[{i}]")


# ------------------------------------------------------------------------------------------------
# Static checks
# ------------------------------------------------------------------------------------------------
def check_static(gdir, fix):
    errors = []
    dashboards = {}
    files = sorted(glob.glob(os.path.join(gdir, "dashboards", "**", "*.json"), recursive=True))
    if not files:
        errors.append(f"{gdir}/dashboards: no *.json dashboards")
    uids = {}
    for path in files:
        rel = os.path.relpath(path, gdir)
        raw = open(path, "rb").read()
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            errors.append(f"{rel}: not valid UTF-8 JSON: {e}")
            continue
        want = canonical(obj).encode("utf-8")
        if raw != want:
            if fix:
                open(path, "wb").write(want)
                print(f"formatted {rel}")
            else:
                line = next((i + 1 for i, (a, b) in enumerate(
                    zip(raw.split(b"\n"), want.split(b"\n"))) if a != b),
                    min(raw.count(b"\n"), want.count(b"\n")) + 1)
                errors.append(f"{rel}:{line}: not canonical (run: {sys.argv[0]} --format, or "
                              f"jq --sort-keys --indent 2 . {rel})")
        dashboards[rel] = obj
        for key in ("title", "uid", "schemaVersion", "panels"):
            if key not in obj:
                errors.append(f"{rel}: missing top-level {key!r}")
        uid = obj.get("uid")
        if uid in uids:
            errors.append(f"{rel}: uid {uid!r} also used by {uids[uid]}")
        uids[uid] = rel
        for p, v in walk_datasources(obj):
            if v != DS:
                errors.append(f"{rel}: {p} is {json.dumps(v, ensure_ascii=False)}, "
                              f"want {json.dumps(DS)}")
        ids = set()
        for p in all_panels(obj.get("panels")):
            title = p.get("title", "?")
            if p.get("id") in ids:
                errors.append(f"{rel}: panel {title!r}: duplicate id {p.get('id')}")
            ids.add(p.get("id"))
            if "gridPos" not in p:
                errors.append(f"{rel}: panel {title!r}: no gridPos")
            if p.get("datasource") != DS:
                errors.append(f"{rel}: panel {title!r}: no siteprobe datasource")
            if p.get("type") not in ("row", "text") and not p.get("targets"):
                errors.append(f"{rel}: panel {title!r}: no targets")
            refids = set()
            for t in p.get("targets", []):
                if t.get("datasource") != DS:
                    errors.append(f"{rel}: panel {title!r} target {t.get('refId')}: "
                                  "no siteprobe datasource")
                if not t.get("expr", "").strip():
                    errors.append(f"{rel}: panel {title!r} target {t.get('refId')}: empty expr")
                if t.get("refId") in refids:
                    errors.append(f"{rel}: panel {title!r}: duplicate refId {t.get('refId')}")
                refids.add(t.get("refId"))
        for v in obj.get("templating", {}).get("list", []):
            if v.get("type") == "query" and v.get("datasource") != DS:
                errors.append(f"{rel}: variable {v.get('name')}: no siteprobe datasource")

    ds_file = os.path.join(gdir, "provisioning", "datasources", "siteprobe.yml")
    db_file = os.path.join(gdir, "provisioning", "dashboards", "siteprobe.yml")
    for f in (ds_file, db_file):
        if not os.path.isfile(f):
            errors.append(f"{os.path.relpath(f, gdir)}: missing")
    if os.path.isfile(ds_file):
        text = open(ds_file, encoding="utf-8").read()
        found = re.findall(r"^\s*(?:-\s*)?uid:\s*['\"]?([^'\"\s#]+)", text, re.M)
        if not found:
            errors.append("provisioning/datasources/siteprobe.yml: no uid")
        for u in found:
            if u != DS_UID:
                errors.append(f"provisioning/datasources/siteprobe.yml: uid {u!r}, want {DS_UID!r}")
        if not re.search(r"^\s*(?:-\s*)?type:\s*prometheus\s*$", text, re.M):
            errors.append("provisioning/datasources/siteprobe.yml: no `type: prometheus`")
    if os.path.isfile(db_file):
        text = open(db_file, encoding="utf-8").read()
        for u in re.findall(r"^\s*(?:-\s*)?(?:folderUid|uid):\s*['\"]?([^'\"\s#]+)", text, re.M):
            if u != DS_UID:
                errors.append(f"provisioning/dashboards/siteprobe.yml: uid {u!r}, want {DS_UID!r}")
        for pat, what in ((r"^\s*(?:-\s*)?type:\s*file\s*$", "`type: file`"),
                          (r"^\s*foldersFromFilesStructure:\s*true\s*$",
                           "`foldersFromFilesStructure: true`"),
                          (r"^\s*path:\s*\S+", "`path:`")):
            if not re.search(pat, text, re.M):
                errors.append(f"provisioning/dashboards/siteprobe.yml: no {what}")
    errors += check_thresholds(gdir, dashboards)
    errors += translate.check(gdir)
    return dashboards, errors


# Panel colours that say what an alert rule says (issue #19 item 4): (dashboard, panel title,
# alert, the pattern of its threshold in the rule's expr, the panel's colour at that threshold).
# "red": the panel turns red exactly where the alert fires. "green": the panel is green from the
# threshold on and red just below it (no yellow band that looks fine while the alert fires).
AGREE = [
    ("noc-overview", "Worst sites by loss (10 min)", "HighPacketLoss", r"\)\s*>\s*([0-9.]+)", "red"),
    ("site-detail", "Loss (range)", "HighPacketLoss", r"\)\s*>\s*([0-9.]+)", "red"),
    ("noc-overview", "Worst sites by mean RTT (10 min)", "HighLatency", r"\)\s*>\s*([0-9.]+)", "red"),
    ("noc-overview", "Worst sites by jitter (10 min)", "HighJitter", r"\)\s*>\s*([0-9.]+)", "red"),
    ("self-health", "Event loop lag", "SiteprobeLoopLag", r"\)\s*>\s*([0-9.]+)", "red"),
    ("district", "MOS per site (worst VC endpoint or MCU)", "LowVideoMOS", r"\)\s*<\s*([0-9.]+)", "green"),
    ("site-detail", "MOS", "LowVideoMOS", r"\)\s*<\s*([0-9.]+)", "green"),
    ("vc-readiness", "Lowest MOS now", "LowVideoMOS", r"\)\s*<\s*([0-9.]+)", "green"),
]


def rule_exprs(rules_text):
    """alert name -> its expr (block scalar or one line), from alerts/siteprobe.rules.yml."""
    out = {}
    for m in re.finditer(r"^(\s*)- alert: (\S+)\n((?:\1  .*\n|\s*\n)*)", rules_text, re.M):
        body = m.group(3)
        e = re.search(r"^\s*expr: \|?(.*(?:\n\s{10,}.*)*)", body, re.M)
        if e:
            out.setdefault(m.group(2), []).append(e.group(1))
    return out


def check_thresholds(gdir, dashboards):
    errors = []
    rules_file = os.path.join(gdir, "..", "alerts", "siteprobe.rules.yml")
    if not os.path.isfile(rules_file):
        return [f"{rules_file}: missing (thresholds cannot be checked against the rules)"]
    exprs = rule_exprs(open(rules_file, encoding="utf-8").read())
    # The English dashboards (the vi/ ones are generated from them by translate.py).
    by_uid = {os.path.splitext(os.path.basename(rel))[0]: obj for rel, obj in dashboards.items()
              if os.path.dirname(rel) == "dashboards"}
    for dash, title, alert, pattern, colour in AGREE:
        where = f"dashboards/{dash}.json: panel {title!r}"
        panel = next((p for p in all_panels(by_uid.get(dash, {}).get("panels")) if p.get("title") == title), None)
        if panel is None:
            errors.append(f"{where}: missing (grafana/check-dashboards.py AGREE names it)")
            continue
        found = {float(v) for e in exprs.get(alert, []) for v in re.findall(pattern, e)}
        if len(found) != 1:
            errors.append(f"{where}: alert {alert}: {len(found)} thresholds match {pattern!r}, want one")
            continue
        want = found.pop()
        steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
        at = [i for i, st in enumerate(steps) if st.get("value") is not None and abs(st["value"] - want) < 1e-9]
        if not at or steps[at[0]].get("color") != colour:
            got = ", ".join(f"{st.get('color')} from {st.get('value')}" for st in steps)
            errors.append(f"{where}: turns {colour} at {want} when {alert} fires there? steps: {got}")
        elif colour == "green" and steps[at[0] - 1].get("color") != "red":
            errors.append(f"{where}: {steps[at[0] - 1].get('color')} just below {want}, where {alert} "
                          "fires: want red")
    return errors


# ------------------------------------------------------------------------------------------------
# Live checks
# ------------------------------------------------------------------------------------------------
class Prom:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.cache = {}

    def _get(self, path, params, post=True):
        data = urllib.parse.urlencode(params)
        if post:
            req = urllib.request.Request(self.url + path, data=data.encode(), method="POST")
        else:
            req = urllib.request.Request(self.url + path + ("?" + data if data else ""))
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:  # 400/422 carry a JSON error body
            try:
                return json.load(e)
            except ValueError:
                return {"status": "error", "error": f"HTTP {e.code}"}

    def query(self, expr):
        if expr not in self.cache:
            self.cache[expr] = self._get("/api/v1/query", {"query": expr})
        return self.cache[expr]

    def label_values(self, label):
        return self._get(f"/api/v1/label/{urllib.parse.quote(label)}/values", {}, post=False)


def result_count(resp):
    """(number of results, number of NaN results) of a /api/v1/query answer."""
    d = resp.get("data") or {}
    res = d.get("result")
    if d.get("resultType") in ("scalar", "string"):
        return 1, int(str(res[1]).lower() == "nan")
    res = res or []
    nan = 0
    for r in res:
        v = r.get("value") or (r.get("values") or [[0, "0"]])[-1]
        nan += str(v[1]).lower() == "nan"
    return len(res), nan


class Vars:
    def __init__(self):
        self.vals = {}  # name -> dict(values, multi, all, all_value)

    def render(self, name, fmt):
        v = self.vals[name]
        if fmt == "raw":
            return "|".join(v["values"])
        if v["all"] and v["all_value"] is not None:
            return v["all_value"]
        if v["multi"] or fmt in ("regex", "pipe"):
            esc = [REGEX_SPECIAL.sub(r"\\\\\1", x) for x in v["values"]]
            return esc[0] if len(esc) == 1 else "(" + "|".join(esc) + ")"
        if fmt == "csv":
            return ",".join(v["values"])
        return "|".join(x.replace("\\", "\\\\").replace("'", "\\\\'") for x in v["values"])

    def substitute(self, text):
        unknown = []

        def repl(m):
            name = m.group(1) or m.group(3) or m.group(5)
            fmt = m.group(2) or m.group(4)
            if name in BUILTINS:
                return BUILTINS[name]
            if name in self.vals:
                return self.render(name, fmt)
            if not name[0].isdigit():  # $1 in label_replace is not a variable
                unknown.append(name)
            return m.group(0)

        return VAR_RE.sub(repl, text), unknown


def grafana_text(r):
    """One query_result() row as Grafana's variable editor sees it: name{a="x",b="y"} value ms."""
    m = dict(r["metric"])
    name = m.pop("__name__", "")
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(m.items()))
    return f"{name}{{{labels}}} {r['value'][1]} {int(float(r['value'][0]) * 1000)}"


def resolve_variable(prom, var, vs):
    """Returns (check row or None, error or None); stores the chosen value in vs."""
    name, typ = var.get("name"), var.get("type")
    q = var.get("query", "")
    if isinstance(q, dict):
        q = q.get("query", "")
    multi = bool(var.get("multi") or var.get("includeAll"))
    values, row = [], None
    if typ == "query":
        qs, unknown = vs.substitute(q)
        if unknown:
            return None, f"variable ${name}: unknown variables {unknown} in {q!r}"
        m = re.fullmatch(r"\s*label_values\(\s*(.*\S)\s*,\s*([A-Za-z_]\w*)\s*\)\s*", qs, re.S)
        m1 = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_]\w*)\s*\)\s*", qs)
        m2 = re.fullmatch(r"\s*query_result\((.*)\)\s*", qs, re.S)
        if m:
            expr, label = m.group(1), m.group(2)
            promql = f"group by ({label}) ({expr})"
            resp = prom.query(promql)
            values = [r["metric"][label] for r in (resp.get("data") or {}).get("result", [])
                      if r["metric"].get(label)]
        elif m1:
            promql = f"/api/v1/label/{m1.group(1)}/values"
            resp = prom.label_values(m1.group(1))
            values = [x for x in resp.get("data") or [] if x]
        elif m2:
            promql = m2.group(1)
            resp = prom.query(promql)
            values = [grafana_text(r) for r in (resp.get("data") or {}).get("result", [])]
        else:
            return None, f"variable ${name}: unsupported query {q!r}"
        if var.get("regex"):
            rm = re.fullmatch(r"/(.*)/([a-z]*)", var["regex"])
            rx = re.compile(re.sub(r"\(\?<(?=[A-Za-z])", "(?P<", rm.group(1) if rm else var["regex"]),
                            re.I if rm and "i" in rm.group(2) else 0)
            kept = []
            for x in values:
                mm = rx.search(x)
                if mm:  # Grafana's named groups: `value` is the value, `text` what the list shows
                    kept.append(mm.group("value") if "value" in rx.groupindex else
                                mm.group(1) if mm.groups() else x)
            values = kept
        row = {"panel": f"variable ${name}", "ref": "", "expr": promql, "resp": resp,
               "count": (len(values), 0)}
    elif typ == "custom" or typ == "interval":
        values = [x.split(" : ")[-1].strip() for x in q.split(",") if x.strip()]
    elif typ in ("constant", "textbox"):
        values = [q]
    else:
        return None, None  # datasource, adhoc: nothing to substitute
    values = sorted(dict.fromkeys(values), reverse=var.get("sort", 0) in (2, 4, 6, 8))
    cur = (var.get("current") or {}).get("value")
    cur = cur if isinstance(cur, list) else [cur] if cur else []
    is_all = "$__all" in cur and var.get("includeAll")
    if is_all:
        chosen = values
    elif cur and all(c in values for c in cur):
        chosen = cur
    else:
        chosen = values[:1]
    # Grafana's None: a query variable without values is the empty string (NONE_VARIABLE_VALUE),
    # which `label=""` matches on series without the label: one siteprobe without --vantage.
    vs.vals[name] = {"values": chosen or ["" if name in OPTIONAL_VARS else "__no_value__"], "multi": multi, "all": bool(is_all),
                     "all_value": var.get("allValue")}
    err = None
    if row is not None and row["resp"].get("status") != "success":
        err = f"{row['resp'].get('errorType', 'error')}: {row['resp'].get('error')}"
    elif row is not None and not values and name not in OPTIONAL_VARS:
        err = "empty result"
    shown = var.get("allValue") if is_all and var.get("allValue") is not None else \
        "|".join(chosen) if chosen else "(none)"
    if row is not None:
        row["note"] = f"${name} = {shown}"
    return row, err


def check_live(prom, dashboards):
    rows, failures = [], []
    for rel, dash in sorted(dashboards.items()):
        dname = os.path.splitext(os.path.basename(rel))[0]
        vs = Vars()
        for var in dash.get("templating", {}).get("list", []):
            row, err = resolve_variable(prom, var, vs)
            if row is not None:
                row["dash"] = dname
                rows.append(row)
            if err:
                failures.append((dname, f"variable ${var.get('name')}", "",
                                 row["expr"] if row else "", err))
        for p in all_panels(dash.get("panels")):
            merged = any(tr.get("id") == "merge" for tr in p.get("transformations", []))
            for t in p.get("targets", []):
                expr, unknown = vs.substitute(t.get("expr", ""))
                title = p.get("title", "?")
                if unknown:
                    failures.append((dname, title, t.get("refId", ""), expr,
                                     f"unknown variables {unknown}"))
                    continue
                resp = prom.query(expr)
                row = {"dash": dname, "panel": title, "ref": t.get("refId", ""), "expr": expr,
                       "resp": resp, "count": result_count(resp)}
                rows.append(row)
                if resp.get("status") != "success":
                    failures.append((dname, title, row["ref"], expr,
                                     f"{resp.get('errorType', 'error')}: {resp.get('error')}"))
                elif row["count"][0] == 0:
                    failures.append((dname, title, row["ref"], expr, "empty result"))
                elif merged and any("__name__" in r.get("metric", {})
                                    for r in resp["data"].get("result", [])):
                    # Grafana makes __name__ a column; differing names stop the merge of rows.
                    failures.append((dname, title, row["ref"], expr,
                                     "merged table, but the result keeps __name__ "
                                     "(aggregate it, e.g. max by (site, device) (...))"))
        # Annotation queries must parse; they are often empty (no reload in the last minute).
        for a in dash.get("annotations", {}).get("list", []):
            if "expr" not in a:
                continue
            resp = prom.query(a["expr"])
            if resp.get("status") != "success":
                failures.append((dname, f"annotation {a.get('name')!r}", "", a["expr"],
                                 f"{resp.get('errorType', 'error')}: {resp.get('error')}"))
    return rows, failures


def clip(s, n):
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n - 1] + "…"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=here, help="grafana directory (default: this script's)")
    ap.add_argument("--prometheus", default=os.environ.get("PROMETHEUS_URL"),
                    help="Prometheus base URL; without it only the static checks run")
    ap.add_argument("--format", action="store_true", help="rewrite dashboards canonically")
    ap.add_argument("--width", type=int, default=110, help="query column width")
    args = ap.parse_args()

    dashboards, errors = check_static(args.dir, args.format)
    print(f"static: {len(dashboards)} dashboards, {len(errors)} problems")
    for e in errors:
        print(f"  FAIL {e}")
    failures = []
    if args.prometheus:
        prom = Prom(args.prometheus)
        try:
            b = prom._get("/api/v1/status/buildinfo", {}, post=False)
        except (urllib.error.URLError, OSError) as e:
            print(f"cannot reach Prometheus at {args.prometheus}: {e}", file=sys.stderr)
            return 2
        print(f"live: Prometheus {b.get('data', {}).get('version', '?')} at {args.prometheus}")
        rows, failures = check_live(prom, dashboards)
        print(f"{'dashboard':<13} {'panel':<34} {'ref':<3} {'n':>5}  query")
        for r in rows:
            n, nan = r["count"]
            ok = r["resp"].get("status") == "success"
            cnt = "ERR" if not ok else f"{n}" + ("" if not nan else f"({nan}NaN)" if nan < n
                                                 else "NaN")
            note = f"   [{r['note']}]" if r.get("note") else ""
            print(f"{r['dash']:<13} {clip(r['panel'], 34):<34} {r['ref']:<3} {cnt:>5}  "
                  f"{clip(r['expr'], args.width)}{note}")
        nq = len(rows)
        print(f"live: {nq} queries, {nq - len(failures)} ok, {len(failures)} bad "
              f"({sum(1 for f in failures if f[4] == 'empty result')} empty)")
        for dname, title, ref, expr, why in failures:
            print(f"  BAD {dname} / {title} {ref}: {why}\n      {expr}")
    return 1 if errors or failures else 0


if __name__ == "__main__":
    sys.exit(main())
