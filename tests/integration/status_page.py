#!/usr/bin/python3
"""Drives headless Chromium over the DevTools protocol against siteprobe's status page.

Run by status_page.sh inside the test's namespace. Asserts, printing one `ok:` line each:
 - every request the page makes goes to 127.0.0.1 (Fetch interception: others are failed and
   reported);
 - no JavaScript console error or exception;
 - the Vietnamese page (Accept-Language: vi) and the English one (the switch) render with no
   missing translation key;
 - during the district-down step the sites drawn per state equal siteprobe_site_state in /metrics,
   the district is drawn down and its communes unreachable;
 - after the link comes back the page shows the district up within 2 s of /metrics;
 - when the daemon stops answering, the "mất kết nối / connection lost since HH:MM" banner shows.
"""
import argparse
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlparse

import websocket

STATES = ["unknown", "up", "degraded", "down", "unreachable"]


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def ok(msg):
    print("ok: " + msg, flush=True)


class Cdp:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.errors, self.requests, self.foreign = [], [], []

    def on_event(self, m):
        method, p = m.get("method"), m.get("params", {})
        if method == "Fetch.requestPaused":
            url = p["request"]["url"]
            self.requests.append(url)
            host = urlparse(url).hostname
            if host == "127.0.0.1" or url.startswith("data:"):
                self.send_nowait("Fetch.continueRequest", {"requestId": p["requestId"]})
            else:
                self.foreign.append(url)
                self.send_nowait("Fetch.failRequest", {"requestId": p["requestId"], "errorReason": "BlockedByClient"})
        elif method == "Runtime.consoleAPICalled" and p.get("type") == "error":
            self.errors.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        elif method == "Runtime.exceptionThrown":
            self.errors.append("exception: " + json.dumps(p["exceptionDetails"])[:500])
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            e = p["entry"]
            # The banner test stops the daemon on purpose: its failed fetches are expected then.
            if not getattr(self, "expect_net_errors", False):
                self.errors.append("log: %s %s" % (e.get("text"), e.get("url", "")))

    def send_nowait(self, method, params=None):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        return self.next_id

    def call(self, method, params=None):
        i = self.send_nowait(method, params)
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == i:
                if "error" in m:
                    fail("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            if "method" in m:
                self.on_event(m)

    def pump(self, seconds):
        end = time.time() + seconds
        self.ws.settimeout(0.05)
        while time.time() < end:
            try:
                m = json.loads(self.ws.recv())
                if "method" in m:
                    self.on_event(m)
            except websocket.WebSocketTimeoutException:
                pass
        self.ws.settimeout(30)

    def js(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            fail("JS %s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def shot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def metric_states(base):
    """siteprobe_site_state by site from /metrics."""
    out = {}
    for line in get(base + "/metrics").splitlines():
        if line.startswith("siteprobe_site_state{"):
            site = re.search(r'site="([^"]*)"', line).group(1)
            out[site] = STATES[int(float(line.rsplit(" ", 1)[1]))]
    return out


def counts(states):
    c = {s: 0 for s in STATES}
    for v in states.values():
        c[v] += 1
    return c


def drawn(cdp):
    return cdp.js("Object.fromEntries([...document.querySelectorAll('circle.site')].map(c => [c.dataset.site, c.dataset.state]))")


def wait(what, cond, timeout, cdp=None, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        if cdp:
            cdp.pump(step)
        else:
            time.sleep(step)
    fail("%s: not within %gs" % (what, timeout))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--down", required=True)
    ap.add_argument("--up", required=True)
    ap.add_argument("--district", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--shots")
    a = ap.parse_args()
    t_start = time.time()

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    chrome = subprocess.Popen(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1600,1000", "--remote-debugging-port=%d" % port,
         "--remote-allow-origins=*", "--user-data-dir=" + a.profile, "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        targets = wait("chromium DevTools", lambda: _targets(port), 20)
        page = [t for t in targets if t["type"] == "page"][0]
        cdp = Cdp(page["webSocketDebuggerUrl"])
        run(cdp, a)
    finally:
        chrome.terminate()
        try:
            chrome.wait(5)
        except subprocess.TimeoutExpired:
            chrome.kill()
    ok("browser test took %.0fs" % (time.time() - t_start))


def _targets(port):
    try:
        return json.loads(get("http://127.0.0.1:%d/json/list" % port)) or None
    except OSError:
        return None


def run(cdp, a):
    for d in ("Runtime", "Log", "Page", "Network"):
        cdp.call(d + ".enable")
    cdp.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
    cdp.call("Emulation.setUserAgentOverride", {"userAgent": "siteprobe-test", "acceptLanguage": "vi-VN,vi;q=0.9"})
    cdp.call("Emulation.setDeviceMetricsOverride", {"width": 1600, "height": 1000, "deviceScaleFactor": 1, "mobile": False})

    # Everything known before the link goes down.
    wait("all sites up in /metrics", lambda: all(v == "up" for v in metric_states(a.url).values()), 30)
    cdp.call("Page.navigate", {"url": a.url + "/"})
    wait("page drawn", lambda: cdp.js("document.querySelectorAll('circle.site[data-state=up]').length") > 0, 10, cdp)
    if cdp.js("document.documentElement.lang") != "vi":
        fail("Accept-Language vi did not give the Vietnamese page")
    if "Trạng thái" not in cdp.js("document.querySelector('h1').textContent"):
        fail("Vietnamese heading missing")
    ok("Vietnamese page from Accept-Language")

    subprocess.check_call(a.down, shell=True)
    communes = [sid for sid in metric_states(a.url) if sid.startswith(a.district + ".")]
    if not communes:
        fail("no communes of " + a.district)

    def district_down():
        m = metric_states(a.url)
        return m if m[a.district] == "down" and all(m[c] == "unreachable" for c in communes) else None
    wait("%s down and its communes unreachable in /metrics" % a.district, district_down, 30)

    # The page against /metrics: equal once both have settled (the page polls every second).
    def same():
        m1 = metric_states(a.url)
        d = drawn(cdp)
        m2 = metric_states(a.url)
        return (m1, d) if m1 == m2 and d == m1 else None
    m, d = wait("page states equal to /metrics", same, 6, cdp, 0.3)
    c = counts(m)
    dc = counts(d)
    if c != dc:
        fail("counts drawn %s != metrics %s" % (dc, c))
    chips = cdp.js("Object.fromEntries([...document.querySelectorAll('[data-count]')].map(e => [e.dataset.count, parseInt(e.textContent.split(':')[1])]))")
    if chips != c:
        fail("count chips %s != metrics %s" % (chips, c))
    ok("sites drawn per state equal siteprobe_site_state: %s" % json.dumps(c))
    if d[a.district] != "down" or any(d[x] != "unreachable" for x in communes):
        fail("district/communes drawn as %s" % {k: d[k] for k in [a.district] + communes})
    ok("%s drawn down, its %d communes unreachable" % (a.district, len(communes)))
    if "cấp trên mất kết nối" not in cdp.js("document.getElementById('changebox').textContent"):
        fail("no 'parent down' reason in the last changes (vi)")
    ok("last changes give the reason (cấp trên mất kết nối)")
    missing = cdp.js("window.missingKeys")
    if missing:
        fail("missing vi keys: %s" % missing)
    if a.shots:
        cdp.pump(0.5)
        cdp.shot(os.path.join(a.shots, "status-vi.png"))

    # English by the switch; then the district and site views, and wall mode.
    cdp.js("document.getElementById('langbtn').click()")
    cdp.pump(0.5)
    if cdp.js("document.documentElement.lang") != "en" or cdp.js("document.querySelector('h1').textContent") != "siteprobe status":
        fail("the language switch did not give the English page")
    if "parent down" not in cdp.js("document.getElementById('changebox').textContent"):
        fail("no 'parent down' reason in English")
    if cdp.js("window.missingKeys"):
        fail("missing en keys: %s" % cdp.js("window.missingKeys"))
    ok("English page by the switch, no missing keys in vi or en")
    if a.shots:
        cdp.shot(os.path.join(a.shots, "status-en.png"))
    cdp.js("location.hash = '#/site/%s'" % a.district)
    wait("site view", lambda: cdp.js("!document.getElementById('detail').hidden && document.querySelectorAll('#detail svg.spark').length > 0"), 5, cdp)
    ok("site view with devices and sparklines")
    if a.shots:
        cdp.shot(os.path.join(a.shots, "status-site.png"))
    cdp.js("location.hash = ''")
    cdp.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'w'}))")  # the keyboard
    cdp.pump(0.5)
    if not cdp.js("document.body.classList.contains('wall')"):
        fail("'w' did not turn on wall mode")
    if a.shots:
        cdp.shot(os.path.join(a.shots, "status-wall.png"))
    cdp.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))")
    ok("wall mode by the keyboard")

    # The link comes back: the page follows /metrics within 2 s.
    subprocess.check_call(a.up, shell=True)
    wait("%s up in /metrics" % a.district, lambda: metric_states(a.url)[a.district] == "up", 30, step=0.05)
    t0 = time.time()
    wait("%s drawn up" % a.district, lambda: drawn(cdp)[a.district] == "up", 2.0, cdp, 0.05)
    ok("page updated %.2fs after /metrics showed %s up" % (time.time() - t0, a.district))

    # The daemon stops answering: the banner says since when.
    cdp.expect_net_errors = True
    os.kill(a.pid, signal.SIGSTOP)
    try:
        banner = wait("connection-lost banner",
                      lambda: cdp.js("document.getElementById('banner').className === 'on' && document.getElementById('banner').textContent"), 6, cdp)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    if not re.search(r"mất kết nối từ / connection lost since \d\d:\d\d", banner):
        fail("banner: %r" % banner)
    wait("banner gone", lambda: cdp.js("document.getElementById('banner').className === ''"), 6, cdp)
    cdp.expect_net_errors = False
    ok("banner %r while the daemon was stopped, gone after" % banner)

    cdp.pump(0.3)
    if cdp.foreign:
        fail("requests leaving the host: %s" % cdp.foreign)
    ok("all %d requests went to 127.0.0.1" % len(cdp.requests))
    if cdp.errors:
        fail("JavaScript errors: %s" % cdp.errors)
    ok("no JavaScript console errors")


if __name__ == "__main__":
    main()
