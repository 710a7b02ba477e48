#!/usr/bin/env python3
"""Helper for bench/icmp/run.sh (stdlib only).

Subcommands:
  gen N INTERVAL_S DIR      write DIR/targets.txt and DIR/inventory.yml (loopback targets only)
  port                      print a free TCP port on 127.0.0.1
  scrape URL                print "sent received drops send_errors late invalid duplicates bytes
                            loop_lag_ms unanswered" (counters summed over all series)
  fping-split FILE          sum the 2nd SIGQUIT split block of fping's stderr: "hosts xmt rcv"
  fping-window FILE         final summary minus the 1st SIGQUIT split block: "hosts xmt rcv"
  fping-lines FILE          print how many per-host lines follow the last "[HH:MM:SS]" header
  add FILE k=v ...          append one result record (JSON line)
  table FILE MD             print the per-run and median tables and write them as markdown to MD
"""
import json
import re
import socket
import sys
import urllib.request

SITE_SIZE = 500  # devices per district site


def target(i):
    # as in shared/ANCHORS.md; always inside 127.0.0.0/8
    return f"127.{1 + i // 65025}.{(i // 255) % 255}.{1 + i % 255}"


def gen(n, interval_s, d):
    n, interval_s = int(n), float(interval_s)
    if n < 1 or n > 255 * 65025:
        sys.exit("gen: N out of range")
    addrs = [target(i) for i in range(n)]
    assert all(a.startswith("127.") for a in addrs)
    with open(f"{d}/targets.txt", "w") as f:
        f.write("\n".join(addrs) + "\n")
    interval = f"{int(interval_s * 1000)}ms" if interval_s < 1 else f"{int(interval_s)}s"
    pps = int(4 * n / interval_s + 1000)
    out = [
        f"# siteprobe ICMP benchmark inventory: {n} loopback targets @ 1/{interval}",
        "levels: [province, district]",
        "global:",
        f"  icmp_max_packets_per_second: {min(pps, 1000000)}",
        f"  max_devices: {max(n, 100000)}",
        "defaults:",
        "  icmp:",
        f"    interval: {interval}",
        "    timeout: 500ms",
        "    packets: 1",
        "    spacing: 10ms",
        "sites:",
        "  - {id: bench, name: Bench province, level: province}",
    ]
    for s in range(0, n, SITE_SIZE):
        out.append(f"  - id: d{s // SITE_SIZE:04d}")
        out.append(f"    name: District {s // SITE_SIZE}")
        out.append("    level: district")
        out.append("    parent: bench")
        out.append("    devices:")
        for i in range(s, min(n, s + SITE_SIZE)):
            out.append(f"      - {{name: h{i:06d}, address: {addrs[i]}, role: router}}")
    with open(f"{d}/inventory.yml", "w") as f:
        f.write("\n".join(out) + "\n")


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


WANT = {
    "siteprobe_icmp_packets_sent_total": 0,
    "siteprobe_icmp_packets_received_total": 1,
    "siteprobe_icmp_receive_queue_drops_total": 2,
    "siteprobe_icmp_send_errors_total": 3,
    "siteprobe_icmp_late_replies_total": 4,
    "siteprobe_icmp_invalid_replies_total": 5,
    "siteprobe_icmp_duplicate_replies_total": 6,
    "siteprobe_loop_lag_seconds": 7,
}


def scrape(url):
    """Sum the counters over all series. `unanswered` is the sum over targets of
    max(0, sent - received): a reply counted before its request (the two families are rendered
    one after the other while probing goes on) cancels out instead of hiding a lost packet."""
    sums = [0.0] * len(WANT)
    nbytes = 0
    per = {}  # label set -> [sent, received]
    with urllib.request.urlopen(url, timeout=120) as r:
        for line in r:
            nbytes += len(line)
            if not line.startswith(b"siteprobe_icmp_") and not line.startswith(b"siteprobe_loop"):
                continue
            brace = line.find(b"{")
            sp = line.find(b" ")
            end = brace if 0 <= brace < sp else sp
            k = WANT.get(line[:end].decode())
            if k is None:
                continue
            close = line.rfind(b"}")
            rest = line[close + 1:] if brace >= 0 else line[sp:]
            v = float(rest.split()[0])
            sums[k] += v
            if k <= 1:
                per.setdefault(line[brace:close], [0.0, 0.0])[k] = v
    unanswered = sum(max(0.0, s - r) for s, r in per.values())
    print(" ".join(str(int(x)) for x in sums[:7]), nbytes, f"{sums[7] * 1000:.1f}", int(unanswered))


HDR = re.compile(r"^\[\d\d:\d\d:\d\d\]$")
LINE = re.compile(r"^(\S+)\s+: xmt/rcv/%loss = (\d+)/(\d+)/")


def blocks(path):
    """Split blocks printed on SIGQUIT, each a list of (xmt, rcv)."""
    out, cur, seen = [], None, set()
    for line in open(path, errors="replace"):
        line = line.strip()
        if HDR.match(line):
            cur, seen = [], set()
            out.append(cur)
        elif not line:
            cur = None  # blank line ends a block (the final summary has no header)
        elif cur is not None:
            m = LINE.match(line)
            if m and m.group(1) in seen:
                cur = None  # with -Q the final summary follows the last block without a blank line
            elif m:
                seen.add(m.group(1))
                cur.append((int(m.group(2)), int(m.group(3))))
    return out


def fping_split(path):
    b = blocks(path)
    if len(b) < 2:
        print("0 0 0")
        return
    blk = b[1]
    print(len(blk), sum(x for x, _ in blk), sum(r for _, r in blk))


def fping_window(path):
    """xmt and rcv between the first SIGQUIT split block and the final summary (printed on SIGINT):
    both are cumulative since start, per host, in -q and -Q mode alike. (A second SIGQUIT split is
    not used: with -Q, fping 5.1's split after the first one does not cover the interval since it.)"""
    b = blocks(path)
    lines = [LINE.match(line.strip()) for line in open(path, errors="replace")]
    lines = [m for m in lines if m]
    if not b or len(lines) < 2 * len(b[0]):
        print("0 0 0")
        return
    first, final = b[0], lines[-len(b[0]):]
    print(len(first), sum(int(m.group(2)) for m in final) - sum(x for x, _ in first),
          sum(int(m.group(3)) for m in final) - sum(r for _, r in first))


def fping_lines(path):
    b = blocks(path)
    print(len(b[-1]) if b else 0)


def add(path, kvs):
    rec = {}
    for kv in kvs:
        k, _, v = kv.partition("=")
        rec[k] = v
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def num(r, k):
    try:
        return float(r[k])
    except (KeyError, ValueError):
        return None


def fmt(x, spec):
    return "—" if x is None else format(x, spec)


ANCHORS = ("fping-Q", "fping-loop", "floor")


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def ratio(a, b):
    return "—" if a is None or not b else f"{a / b:.2f}×"


def load1(r, k):
    try:
        return float(r[k].split()[0])
    except (KeyError, ValueError, IndexError):
        return None


def render(cols, rows):
    w = [max(len(str(c)), *(len(str(row[i])) for row in rows)) if rows else len(c)
         for i, c in enumerate(cols)]
    out = ["  ".join(str(v).rjust(w[i]) if i else str(v).ljust(w[i]) for i, v in enumerate(vals))
           for vals in [cols, ["-" * x for x in w]] + rows]
    md = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    md += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(out), "\n".join(md)


def table(path, md):
    recs = [json.loads(line) for line in open(path) if line.strip()]
    ok = [r for r in recs if r.get("status", "ok") == "ok"]
    # per run: one row per tool, round and N; siteprobe's ratios against the same round's anchors
    cols = ["tool", "round", "targets", "rate", "probes/s", "CPU ms/1k probes", "all-in ms/1k",
            "false loss %", "RSS MB", "scrape ms", "scrape MB", "vs fping -Q", "vs fping loop",
            "vs floor", "load avg start → end"]
    anchor = {(r["tool"], r.get("round"), r["n"]): num(r, "cpu_ms_per_1k") for r in ok
              if r["tool"] in ANCHORS}
    rows, notes = [], []
    for r in recs:
        n, tool, rnd = r["n"], r["tool"], r.get("round", "")
        if r.get("status") == "slow shutdown":  # a note, not a row
            notes.append(f"{tool} @ {n}, round {rnd}: slow shutdown: {r.get('msg', '').strip()}")
            continue
        if r.get("status", "ok") != "ok":
            rows.append([tool, rnd, n, r.get("rate", "")] + ["—"] * 10 + [r.get("la0", "")])
            notes.append(f"{tool} @ {n} targets, {r.get('rate', '')}, round {rnd}: {r['status']}: "
                         f"{r.get('msg', '').strip()}")
            continue
        cpu = num(r, "cpu_ms_per_1k")
        rat = ["—"] * 3
        if tool.startswith("siteprobe"):
            rat = [ratio(cpu, anchor.get((a, rnd, n))) for a in ANCHORS]
        rows.append([tool, rnd, n, r.get("rate", ""), fmt(num(r, "pps"), ".0f"), fmt(cpu, ".1f"),
                     fmt(num(r, "allin_ms_per_1k"), ".1f"), fmt(num(r, "loss_pct"), ".3f"),
                     fmt(num(r, "rss_mb"), ".1f"), fmt(num(r, "scrape_ms"), ".1f"),
                     fmt(num(r, "scrape_mb"), ".2f")] + rat +
                    [f"{r.get('la0', '?')} → {r.get('la1', '?')}"])
        if tool.startswith("siteprobe"):
            notes.append(
                f"{tool} @ {n}, round {rnd}: in window sent={r.get('sent')} received={r.get('received')} "
                f"(naive loss {r.get('naive_loss_pct')} %) "
                f"rx_queue_drops={r.get('drops')} (since start {r.get('drops_since_start')}) "
                f"send_errors={r.get('send_errors')} "
                f"late={r.get('late')} invalid={r.get('invalid')} duplicates={r.get('dups')}; "
                f"loop lag {r.get('loop_lag_ms')} ms; RSS before first scrape {r.get('rss0_mb')} MB, "
                f"peak RSS {r.get('hwm_mb')} MB; CPU per scrape {r.get('scrape_cpu_ms')} ms")
        elif tool == "floor":
            notes.append(f"floor @ {n}, round {rnd}: in window sent={r.get('sent')} "
                         f"received={r.get('received')} late={r.get('late')} "
                         f"send_errors={r.get('send_errors')}")
        else:
            notes.append(f"{tool} @ {n}, round {rnd}: in window xmt={r.get('sent')} "
                         f"rcv={r.get('received')}")
    # medians over the rounds, per N and tool; ratios are of the medians
    mcols = ["tool", "targets", "rate", "runs ok", "probes/s", "CPU ms/1k probes", "all-in ms/1k",
             "false loss %", "RSS MB", "scrape ms", "vs fping -Q", "vs fping loop", "vs floor",
             "all-in vs fping -Q", "load avg (1 min) start → end"]
    mrows = []
    order = ["siteprobe", "siteprobe-baseline", *ANCHORS]
    ns = list(dict.fromkeys(r["n"] for r in recs))
    for n in ns:
        med = {}
        for tool in order:
            rs = [r for r in ok if r["tool"] == tool and r["n"] == n]
            med[tool] = {k: median([num(r, k) for r in rs]) for k in
                         ("pps", "cpu_ms_per_1k", "allin_ms_per_1k", "loss_pct", "rss_mb", "scrape_ms")}
            med[tool]["runs"] = len(rs)
            med[tool]["total"] = len([r for r in recs if r["tool"] == tool and r["n"] == n
                                      and r.get("status") != "slow shutdown"])
            med[tool]["la"] = (median([load1(r, "la0") for r in rs]), median([load1(r, "la1") for r in rs]))
            med[tool]["rate"] = next((r.get("rate", "") for r in recs if r["n"] == n), "")
        for tool in order:
            m = med[tool]
            if not m["total"]:
                continue
            rat = ["—"] * 4
            if tool.startswith("siteprobe"):
                rat = [ratio(m["cpu_ms_per_1k"], med[a]["cpu_ms_per_1k"]) for a in ANCHORS]
                rat.append(ratio(m["allin_ms_per_1k"], med["fping-Q"]["cpu_ms_per_1k"]))
            mrows.append([tool, n, m["rate"], f"{m['runs']}/{m['total']}", fmt(m["pps"], ".0f"),
                          fmt(m["cpu_ms_per_1k"], ".1f"), fmt(m["allin_ms_per_1k"], ".1f"),
                          fmt(m["loss_pct"], ".3f"), fmt(m["rss_mb"], ".1f"), fmt(m["scrape_ms"], ".1f")]
                         + rat + [f"{fmt(m['la'][0], '.2f')} → {fmt(m['la'][1], '.2f')}"])
    txt, mdt = render(cols, rows)
    mtxt, mmd = render(mcols, mrows)
    end_load = open("/proc/loadavg").read().split()[:3]
    print("Medians over rounds:")
    print(mtxt)
    print()
    print("Each run:")
    print(txt)
    print()
    for n in notes:
        print("  " + n)
    with open(md, "w") as f:
        meta = next((r["meta"] for r in recs if r.get("meta")), "")
        f.write("# siteprobe vs fping (-Q and loop mode) and the floor, ICMP on loopback\n\n")
        if meta:
            f.write(meta + "; load average at end " + " ".join(end_load) + "\n\n")
        f.write("Generated by bench/icmp/run.sh. CPU = utime+stime per 1000 probes sent in the window; "
                "all-in adds one /metrics scrape per all-in interval (header); ratios are siteprobe's CPU over the "
                "anchor's (medians: ratio of the medians).\n\n")
        f.write("## Medians over rounds\n\n" + mmd + "\n\n## Each run (interleaved)\n\n" + mdt + "\n\n")
        for n in notes:
            f.write(f"- {n}\n")


def main(a):
    if not a:
        sys.exit(__doc__)
    cmd = a[0]
    if cmd == "gen":
        gen(*a[1:4])
    elif cmd == "port":
        port()
    elif cmd == "scrape":
        scrape(a[1])
    elif cmd == "fping-split":
        fping_split(a[1])
    elif cmd == "fping-window":
        fping_window(a[1])
    elif cmd == "fping-lines":
        fping_lines(a[1])
    elif cmd == "add":
        add(a[1], a[2:])
    elif cmd == "table":
        table(a[1], a[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
