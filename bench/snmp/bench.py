#!/usr/bin/env python3
"""SNMP benchmark: siteprobe vs prometheus-snmp-exporter against the same snmpd, then siteprobe alone
at scale. Only loopback addresses are used. Run as root via bench/snmp/run.sh.

Part 1, CPU per device poll (same snmpd, same OIDs: sysUpTime/sysName/sysDescr/sysObjectID and the
13 IF-MIB columns siteprobe walks):
  - snmp_exporter: EXPORTER_POLLS sequential /snmp?target=... scrapes, exporter CPU (utime+stime
    from /proc) divided by the scrapes;
  - siteprobe: POLL_DEVICES devices at a 10 s interval for WINDOW seconds after a warm-up, CPU
    divided by the polls it completed (siteprobe_snmp_polls_total).
Part 2, scale: siteprobe alone with N devices (NS, default "1000 10000") at a 60 s interval, spread
over AGENTS snmpd processes, each listening on ADDRS loopback addresses: CPU per poll, max open fds,
timeouts (all false: every agent answers), RSS.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SITEPROBE = os.environ.get("SITEPROBE", os.path.join(ROOT, "build/daemon/siteprobe"))
WINDOW = float(os.environ.get("WINDOW", "30"))
EXPORTER_POLLS = int(os.environ.get("EXPORTER_POLLS", "300"))
POLL_DEVICES = int(os.environ.get("POLL_DEVICES", "100"))
NS = [int(x) for x in os.environ.get("NS", "1000 10000").split()]
AGENTS = int(os.environ.get("AGENTS", "4"))
ADDRS = int(os.environ.get("ADDRS", "50"))
HZ = os.sysconf("SC_CLK_TCK")
WORK = tempfile.mkdtemp(prefix="siteprobe-bench-snmp.")
PROCS = []
ENV = dict(os.environ, MIBS="")

IF_COLS = ["1.3.6.1.2.1.31.1.1.1.%d" % c for c in (1, 18, 6, 10, 7, 11, 15)] + [
    "1.3.6.1.2.1.2.2.1.%d" % c for c in (7, 8, 14, 20, 13, 19)]
SYS = ["1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def ticks(pid):
    s = open(f"/proc/{pid}/stat").read()
    f = s[s.rindex(")") + 2:].split()
    return int(f[11]) + int(f[12])


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def spawn(cmd, log):
    p = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=ENV)
    PROCS.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def start_snmpd(addrs, port, name):
    conf = os.path.join(WORK, f"{name}.conf")
    open(conf, "w").write("rocommunity public 127.0.0.0/8\n")
    endpoints = ",".join(f"udp:{a}:{port}" for a in addrs)
    p = spawn(["snmpd", "-f", "-C", "-c", conf, "-M", "/nonexistent", "-Lf", os.path.join(WORK, f"{name}.log"),
               endpoints], os.path.join(WORK, f"{name}.out"))
    for _ in range(100):
        r = subprocess.run(["snmpget", "-v2c", "-c", "public", "-t", "0.2", "-r", "0", f"{addrs[-1]}:{port}",
                            "1.3.6.1.2.1.1.3.0"], capture_output=True, env=ENV)
        if r.returncode == 0:
            return p
        time.sleep(0.1)
    sys.exit(f"snmpd {name} did not start")


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
        return r.read().decode()


def total(text, metric, match=""):
    t = 0.0
    for line in text.splitlines():
        if line.startswith(metric + "{") and match in line:
            t += float(line.rsplit(" ", 1)[1])
    return t


def inventory(devices, interval):
    lines = ["auth:", "  v2: {version: 2c, community: public}", "defaults:",
             "  icmp: {interval: 1h, timeout: 1s, packets: 1}",
             f"  snmp: {{auth: v2, port: {{port}}, interval: {interval}, timeout: 2s, retries: 1, max_repetitions: 10}}",
             "sites:", "  - id: p", "    name: P", "    level: province", "    devices:"]
    for i, (addr, port) in enumerate(devices):
        lines.append(f"      - {{name: d{i}, address: {addr}, role: router, snmp: {{port: {port}}}}}")
    return "\n".join(lines).replace("{port}", str(devices[0][1])) + "\n"


def run_siteprobe(devices, interval, window, warmup, tag):
    inv = os.path.join(WORK, f"{tag}.yml")
    open(inv, "w").write(inventory(devices, interval))
    port = free_port()
    p = spawn([SITEPROBE, "--config", inv, "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warn"],
              os.path.join(WORK, f"{tag}.log"))
    for _ in range(100):
        try:
            scrape(port)
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(warmup)
    t0, m0, c0 = time.time(), scrape(port), ticks(p.pid)
    max_fds = 0
    while time.time() - t0 < window:
        max_fds = max(max_fds, fds(p.pid))
        time.sleep(0.5)
    c1 = ticks(p.pid)
    m1 = scrape(port)
    polls = total(m1, "siteprobe_snmp_polls_total") - total(m0, "siteprobe_snmp_polls_total")
    res = {
        "tool": "siteprobe", "devices": len(devices), "interval_s": interval, "window_s": round(time.time() - t0, 1),
        "polls": int(polls), "cpu_ms_per_poll": round((c1 - c0) / HZ * 1000 / max(polls, 1), 3),
        "timeouts": int(total(m1, "siteprobe_snmp_errors_total", 'kind="timeout"')),
        "errors": int(total(m1, "siteprobe_snmp_errors_total")),
        "up": int(total(m1, "siteprobe_snmp_up")), "max_open_fds": max_fds, "rss_mb": round(rss_mb(p.pid), 1),
    }
    stop(p)
    return res


def exporter_config():
    walks = "\n".join(f"  - {c}" for c in IF_COLS)
    gets = "\n".join(f"  - {g}" for g in SYS)
    metrics = [("sysUpTime", "1.3.6.1.2.1.1.3", "gauge", False)]
    names = {1: "ifName", 18: "ifAlias", 6: "ifHCInOctets", 10: "ifHCOutOctets", 7: "ifHCInUcastPkts",
             11: "ifHCOutUcastPkts", 15: "ifHighSpeed"}
    for c, n in names.items():
        t = "DisplayString" if c in (1, 18) else ("counter" if c not in (15,) else "gauge")
        metrics.append((n, f"1.3.6.1.2.1.31.1.1.1.{c}", t, True))
    for c, n in {7: "ifAdminStatus", 8: "ifOperStatus", 14: "ifInErrors", 20: "ifOutErrors", 13: "ifInDiscards",
                 19: "ifOutDiscards"}.items():
        metrics.append((n, f"1.3.6.1.2.1.2.2.1.{c}", "gauge" if c in (7, 8) else "counter", True))
    for n, o in (("sysName", "1.3.6.1.2.1.1.5"), ("sysDescr", "1.3.6.1.2.1.1.1")):
        metrics.append((n, o, "DisplayString", False))
    out = ["if_mib:", "  walk:", walks, "  get:", gets, "  metrics:"]
    for n, o, t, idx in metrics:
        out += [f"  - name: {n}", f"    oid: {o}", f"    type: {t}", "    help: x"]
        if idx:
            out += ["    indexes:", "    - labelname: ifIndex", "      type: gauge"]
    out += ["  version: 2", "  max_repetitions: 10", "  retries: 1", "  timeout: 2s", "  auth:",
            "    community: public"]
    return "\n".join(out) + "\n"


def run_exporter(agent):
    cfg = os.path.join(WORK, "snmp.yml")
    open(cfg, "w").write(exporter_config())
    port = free_port()
    p = spawn(["prometheus-snmp-exporter", f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}"],
              os.path.join(WORK, "exporter.log"))
    url = f"http://127.0.0.1:{port}/snmp?target={agent}&module=if_mib"
    for _ in range(100):
        try:
            body = urllib.request.urlopen(url, timeout=10).read().decode()
            break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit("snmp_exporter did not answer; see " + os.path.join(WORK, "exporter.log"))
    if "ifOperStatus{" not in body:
        sys.exit("snmp_exporter returned no interface data:\n" + body[:2000])
    for _ in range(20):
        urllib.request.urlopen(url, timeout=10).read()
    c0, t0 = ticks(p.pid), time.time()
    for _ in range(EXPORTER_POLLS):
        urllib.request.urlopen(url, timeout=10).read()
    c1 = ticks(p.pid)
    res = {"tool": "snmp_exporter", "devices": 1, "polls": EXPORTER_POLLS,
           "window_s": round(time.time() - t0, 1),
           "cpu_ms_per_poll": round((c1 - c0) / HZ * 1000 / EXPORTER_POLLS, 3), "rss_mb": round(rss_mb(p.pid), 1)}
    stop(p)
    return res


def main():
    results = []
    port = 16100 + os.getpid() % 1000
    # Part 1: one snmpd on 127.0.0.1, both tools, same OIDs.
    a = start_snmpd(["127.0.0.1"], port, "agent1")
    e = run_exporter(f"127.0.0.1:{port}")
    print(json.dumps(e), flush=True)
    s = run_siteprobe([("127.0.0.1", port)] * POLL_DEVICES, "10s", WINDOW, 12, "same")
    print(json.dumps(s), flush=True)
    results += [e, s]
    stop(a)
    # Part 2: scale, AGENTS snmpd processes x ADDRS loopback addresses each.
    addrs = [[f"127.30.{k}.{j + 1}" for j in range(ADDRS)] for k in range(AGENTS)]
    agents = [start_snmpd(addrs[k], port, f"agent-scale{k}") for k in range(AGENTS)]
    flat = [x for group in addrs for x in group]
    for n in NS:
        devs = [(flat[i % len(flat)], port) for i in range(n)]
        r = run_siteprobe(devs, "60s", max(WINDOW, 120), 65, f"scale{n}")
        r["agent_cpu_note"] = f"{AGENTS} snmpd x {ADDRS} addresses"
        print(json.dumps(r), flush=True)
        results.append(r)
    for a in agents:
        stop(a)
    with open(os.path.join(os.path.dirname(__file__), "results-latest.json"), "w") as f:
        json.dump(results, f, indent=1)
    ratio = s["cpu_ms_per_poll"] / e["cpu_ms_per_poll"]
    print()
    print("| tool | devices | interval | polls | CPU ms/poll | ratio vs snmp_exporter | timeouts | max fds | RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rr = r["cpu_ms_per_poll"] / e["cpu_ms_per_poll"]
        print(f"| {r['tool']} | {r['devices']} | {r.get('interval_s', 'scrape')} | {r['polls']} | {r['cpu_ms_per_poll']} "
              f"| {rr:.3f}x | {r.get('timeouts', '-')} | {r.get('max_open_fds', '-')} | {r['rss_mb']} |")
    print(f"\nsiteprobe / snmp_exporter CPU per device poll: {ratio:.3f}x (goal <= 0.1x)")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in PROCS:
            stop(p)
        if os.environ.get("KEEP") != "1":
            subprocess.run(["rm", "-rf", WORK])
        else:
            print("work directory kept:", WORK)
