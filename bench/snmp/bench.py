#!/usr/bin/env python3
"""SNMP benchmark: siteprobe vs prometheus-snmp-exporter against the same snmpd, then siteprobe alone
at scale. Only loopback addresses are used. Run as root via bench/snmp/run.sh.

Part 1, CPU per device poll (same snmpd, same OIDs: sysUpTime/sysName/sysDescr/sysObjectID and the
13 IF-MIB columns siteprobe walks), REPEAT interleaved rounds (siteprobe, then snmp_exporter, then
siteprobe again...), each round with the same number of device polls for both tools:
  - siteprobe: POLL_DEVICES devices at a 10 s interval for WINDOW seconds after a warm-up, CPU
    divided by the polls it completed (siteprobe_snmp_polls_total);
  - snmp_exporter: as many sequential /snmp?target=... scrapes as siteprobe completed in that round
    (at least EXPORTER_POLLS_MIN), exporter CPU (utime+stime from /proc) divided by the scrapes;
  - agent load: for both, the CPU of the snmpd serving them (utime+stime from /proc/<pid>/stat)
    over the same window, divided by the same polls: what each poll costs the device.
Medians over the rounds and the ratios siteprobe / snmp_exporter (tool CPU and agent CPU) are
printed and written to results-latest.json.
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
EXPORTER_POLLS_MIN = int(os.environ.get("EXPORTER_POLLS_MIN", "100"))
REPEAT = int(os.environ.get("REPEAT", "3"))
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


def binary_commit(path):
    """The commit the binary's checkout had when the binary was written (the binary embeds none)."""
    d = os.path.dirname(os.path.realpath(path))
    mtime = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(path)))
    r = subprocess.run(["git", "-C", d, "log", "-1", f"--until={mtime}", "--format=%h"],
                       capture_output=True, text=True)
    return f"{r.stdout.strip() or '?'} (binary {path}, built {mtime})"


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def median(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


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


def run_siteprobe(devices, interval, window, warmup, tag, agents=()):
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
    la0 = loadavg()
    t0, m0, c0 = time.time(), scrape(port), ticks(p.pid)
    a0 = sum(ticks(a) for a in agents)
    max_fds = 0
    while time.time() - t0 < window:
        max_fds = max(max_fds, fds(p.pid))
        time.sleep(0.5)
    c1 = ticks(p.pid)
    a1 = sum(ticks(a) for a in agents)
    m1 = scrape(port)
    polls = total(m1, "siteprobe_snmp_polls_total") - total(m0, "siteprobe_snmp_polls_total")
    res = {
        "tool": "siteprobe", "devices": len(devices), "interval_s": interval, "window_s": round(time.time() - t0, 1),
        "polls": int(polls), "cpu_ms_per_poll": round((c1 - c0) / HZ * 1000 / max(polls, 1), 3),
        "timeouts": int(total(m1, "siteprobe_snmp_errors_total", 'kind="timeout"')),
        "errors": int(total(m1, "siteprobe_snmp_errors_total")),
        "up": int(total(m1, "siteprobe_snmp_up")), "max_open_fds": max_fds, "rss_mb": round(rss_mb(p.pid), 1),
        "load_avg": f"{la0} -> {loadavg()}",
    }
    if agents:
        res["agent_cpu_ms_per_poll"] = round((a1 - a0) / HZ * 1000 / max(polls, 1), 3)
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


def run_exporter(agent, polls, agent_pid):
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
    la0 = loadavg()
    c0, a0, t0 = ticks(p.pid), ticks(agent_pid), time.time()
    for _ in range(polls):
        urllib.request.urlopen(url, timeout=10).read()
    c1, a1 = ticks(p.pid), ticks(agent_pid)
    res = {"tool": "snmp_exporter", "devices": 1, "polls": polls,
           "window_s": round(time.time() - t0, 1),
           "cpu_ms_per_poll": round((c1 - c0) / HZ * 1000 / polls, 3), "rss_mb": round(rss_mb(p.pid), 1),
           "agent_cpu_ms_per_poll": round((a1 - a0) / HZ * 1000 / polls, 3),
           "load_avg": f"{la0} -> {loadavg()}"}
    stop(p)
    return res


def main():
    results = []
    port = 16100 + os.getpid() % 1000
    meta = {"tool": "meta", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "siteprobe_commit": binary_commit(SITEPROBE), "load_avg_start": loadavg(),
            "env": {k: os.environ.get(k) for k in ("NS", "WINDOW", "REPEAT", "POLL_DEVICES",
                                                     "EXPORTER_POLLS_MIN") if k in os.environ}}
    print(json.dumps(meta), flush=True)
    # Part 1: one snmpd on 127.0.0.1, both tools, same OIDs, interleaved rounds, same polls.
    a = start_snmpd(["127.0.0.1"], port, "agent1")
    rounds = []
    for rnd in range(1, REPEAT + 1):
        s = run_siteprobe([("127.0.0.1", port)] * POLL_DEVICES, "10s", WINDOW, 12, f"same{rnd}", [a.pid])
        s["round"] = rnd
        print(json.dumps(s), flush=True)
        e = run_exporter(f"127.0.0.1:{port}", max(EXPORTER_POLLS_MIN, s["polls"]), a.pid)
        e["round"] = rnd
        print(json.dumps(e), flush=True)
        rounds.append((s, e))
        results += [s, e]
    stop(a)
    med = {}
    for k, tool in ((0, "siteprobe"), (1, "snmp_exporter")):
        med[tool] = {f: median([r[k][f] for r in rounds]) for f in ("cpu_ms_per_poll", "agent_cpu_ms_per_poll")}
    summary = {
        "tool": "median", "rounds": REPEAT, "poll_devices": POLL_DEVICES,
        "siteprobe_cpu_ms_per_poll": med["siteprobe"]["cpu_ms_per_poll"],
        "exporter_cpu_ms_per_poll": med["snmp_exporter"]["cpu_ms_per_poll"],
        "cpu_ratio": round(med["siteprobe"]["cpu_ms_per_poll"] / med["snmp_exporter"]["cpu_ms_per_poll"], 3),
        "siteprobe_agent_cpu_ms_per_poll": med["siteprobe"]["agent_cpu_ms_per_poll"],
        "exporter_agent_cpu_ms_per_poll": med["snmp_exporter"]["agent_cpu_ms_per_poll"],
        "agent_cpu_ratio": round(med["siteprobe"]["agent_cpu_ms_per_poll"]
                                 / max(med["snmp_exporter"]["agent_cpu_ms_per_poll"], 1e-9), 3),
    }
    # Part 2: scale, AGENTS snmpd processes x ADDRS loopback addresses each.
    if NS:
        addrs = [[f"127.30.{k}.{j + 1}" for j in range(ADDRS)] for k in range(AGENTS)]
        agents = [start_snmpd(addrs[k], port, f"agent-scale{k}") for k in range(AGENTS)]
        flat = [x for group in addrs for x in group]
        for n in NS:
            devs = [(flat[i % len(flat)], port) for i in range(n)]
            r = run_siteprobe(devs, "60s", max(WINDOW, 120), 65, f"scale{n}", [g.pid for g in agents])
            r["agent_cpu_note"] = f"{AGENTS} snmpd x {ADDRS} addresses"
            print(json.dumps(r), flush=True)
            results.append(r)
        for g in agents:
            stop(g)
    meta["load_avg_end"] = loadavg()
    results = [meta] + results + [summary]
    with open(os.path.join(os.path.dirname(__file__), "results-latest.json"), "w") as f:
        json.dump(results, f, indent=1)
    e_cpu, e_agent = med["snmp_exporter"]["cpu_ms_per_poll"], med["snmp_exporter"]["agent_cpu_ms_per_poll"]
    print()
    print("| tool | round | devices | interval | polls | CPU ms/poll | ratio vs snmp_exporter (median) "
          "| snmpd CPU ms/poll | agent ratio vs snmp_exporter (median) | timeouts | max fds | RSS MB | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results[1:-1]:
        ag = r.get("agent_cpu_ms_per_poll")
        print(f"| {r['tool']} | {r.get('round', '-')} | {r['devices']} | {r.get('interval_s', 'scrape')} | {r['polls']} "
              f"| {r['cpu_ms_per_poll']} | {r['cpu_ms_per_poll'] / e_cpu:.3f}x "
              f"| {ag if ag is not None else '-'} | {(ag / e_agent if ag is not None and e_agent else float('nan')):.3f}x "
              f"| {r.get('timeouts', '-')} | {r.get('max_open_fds', '-')} | {r['rss_mb']} | {r.get('load_avg', '')} |")
    print(f"\n{meta['date']}, siteprobe {meta['siteprobe_commit']}, load average {meta['load_avg_start']} -> "
          f"{meta['load_avg_end']}")
    print(f"medians over {REPEAT} interleaved rounds, same device polls per round:")
    print(f"  tool CPU per device poll:  siteprobe {summary['siteprobe_cpu_ms_per_poll']} ms, "
          f"snmp_exporter {summary['exporter_cpu_ms_per_poll']} ms: {summary['cpu_ratio']:.3f}x (goal <= 0.1x)")
    print(f"  snmpd CPU per device poll: siteprobe {summary['siteprobe_agent_cpu_ms_per_poll']} ms, "
          f"snmp_exporter {summary['exporter_agent_cpu_ms_per_poll']} ms: {summary['agent_cpu_ratio']:.3f}x")


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
