#!/usr/bin/python3
"""Status page pollers for bench/status/run.sh: see there."""
import argparse
import http.client
import json
import os
import re
import threading
import time
from urllib.parse import urlparse

stop = threading.Event()
lock = threading.Lock()
stats = {"answers": 0, "errors": 0, "bytes": 0}


def client(k, host, port, sites):
    conn = None
    n = 0
    next_t = time.time() + (k % 10) / 10  # spread over the second, as real pages are
    paths = ["/", "/status/tree.json"]
    while not stop.is_set():
        if not paths:
            paths = ["/status/live.json"]
            if n % 5 == 0 and sites:
                paths.append("/status/site.json?id=" + sites[(k + n) % len(sites)])
            n += 1
            time.sleep(max(0, next_t - time.time()))
            next_t += 1
        path = paths.pop(0)
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=5, source_address=("127.0.1.%d" % (k % 250 + 1), 0))
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            with lock:
                stats["answers"] += 1
                stats["bytes"] += len(body)
                if r.status != 200:
                    stats["errors"] += 1
        except (OSError, http.client.HTTPException):
            with lock:
                stats["errors"] += 1
            conn = None


def scrape(url):
    c = http.client.HTTPConnection(urlparse(url).hostname, urlparse(url).port, timeout=5)
    c.request("GET", "/metrics")
    return c.getresponse().read().decode()


def value(text, name):
    m = re.search(r"^%s(?:\{\})? (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else float("nan")


def lateness(text):
    """(count over 10 ms, count) of siteprobe_loop_lateness_seconds."""
    le10 = value(text, 'siteprobe_loop_lateness_seconds_bucket{le="0.01"}')
    total = value(text, "siteprobe_loop_lateness_seconds_count")
    return total - le10, total


def proc(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open("/proc/%d/status" % pid) as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024
    return cpu, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=180)
    a = ap.parse_args()
    u = urlparse(a.url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    c.request("GET", "/status/tree.json")
    sites = [s["id"] for s in json.loads(c.getresponse().read())["sites"]]

    # Idle baseline: the same span as a warm-up would be, without clients.
    m0 = scrape(a.url)
    cpu0, rss0 = proc(a.pid)
    time.sleep(10)
    m1 = scrape(a.url)
    cpu1, rss1 = proc(a.pid)
    late_idle = [x - y for x, y in zip(lateness(m1), lateness(m0))]
    print("idle 10s: cpu %.1f%%, rss %.1f MiB, loop lateness > 10 ms: %d of %d"
          % (100 * (cpu1 - cpu0) / 10, rss1, late_idle[0], late_idle[1]), flush=True)

    threads = [threading.Thread(target=client, args=(k, u.hostname, u.port, sites), daemon=True) for k in range(a.clients)]
    for t in threads:
        t.start()
    t0 = time.time()
    lag_max, lags = 0.0, []
    rss_max = rss1
    while time.time() - t0 < a.seconds:
        time.sleep(1)
        lag = value(scrape(a.url), "siteprobe_loop_lag_seconds")
        lags.append(lag)
        lag_max = max(lag_max, lag)
        rss_max = max(rss_max, proc(a.pid)[1])
    m2 = scrape(a.url)
    cpu2, rss2 = proc(a.pid)
    stop.set()
    for t in threads:
        t.join(6)
    dt = time.time() - t0
    late = [x - y for x, y in zip(lateness(m2), lateness(m1))]
    lags.sort()
    print("%d clients, %.0fs: %d answers (%.0f/s, %.1f MB/s), %d errors"
          % (a.clients, dt, stats["answers"], stats["answers"] / dt, stats["bytes"] / dt / 1e6, stats["errors"]))
    print("loop lag (1 s gauge): median %.2f ms, p99 %.2f ms, max %.2f ms; lateness of the 50 ms timer > 10 ms: %d of %d"
          % (1000 * lags[len(lags) // 2], 1000 * lags[int(len(lags) * 0.99)], 1000 * lag_max, late[0], late[1]))
    print("daemon cpu %.1f%% of one core; rss %.1f MiB before, %.1f MiB max, %.1f MiB after"
          % (100 * (cpu2 - cpu1) / dt, rss1, rss_max, rss2))


if __name__ == "__main__":
    main()
