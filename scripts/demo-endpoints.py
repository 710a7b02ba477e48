#!/usr/bin/env python3
"""Stand-in endpoints and routers for the demo, on loopback (or inside a demo namespace).

Usage: demo-endpoints.py INVENTORY [--only PREFIX] [--skip PREFIX] [--busy ADDR] [--mute ADDR]

For every vc_endpoint and mcu address in INVENTORY (whose prefix matches --only, if given, and not
--skip) it binds UDP 5060 and answers SIP OPTIONS with 200 OK, and listens on TCP 1720 (H.323)
and, for an mcu, TCP 443. A --busy address answers 503 Service Unavailable; a --mute address reads
its requests and never answers; neither of them listens on TCP.

For the router addresses (same filters) it runs Debian's snmpd, one process listening on UDP 161 of
each, read-only community "siteprobe-demo" (config/bac-kan.yml's `demo-ro`); its state lives in a
temporary directory. Its `lo` (ifIndex 1), every router's stand-in uplink, reports 10 Gbit/s
(ifHighSpeed 10000, ifSpeed 4294967295) instead of snmpd's 10 Mbit/s guess: the host's loopback
traffic then fits its speed, as a real uplink's would, and InterfaceSaturated stays quiet. Stdlib only; runs until killed (SIGTERM or SIGINT), and takes snmpd with it.
"""

import argparse
import ctypes
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("inventory")
ap.add_argument("--only", default="")
ap.add_argument("--skip", action="append", default=[])
ap.add_argument("--busy", action="append", default=[])
ap.add_argument("--mute", action="append", default=[])
args = ap.parse_args()

inventory = open(args.inventory, encoding="utf-8").read()


def wanted(addr):
    return addr.startswith(args.only) and not any(addr.startswith(p) for p in args.skip)


routers = [a for a in re.findall(r"address: ([0-9.]+), role: router\b", inventory) if wanted(a)]
snmpd = None
if routers:
    state = tempfile.mkdtemp(prefix="siteprobe-demo-snmpd.")
    with open(os.path.join(state, "snmpd.conf"), "w") as f:
        f.write("rocommunity siteprobe-demo\nsysLocation siteprobe demo stand-in router\n"
                "override .1.3.6.1.2.1.2.2.1.5.1 unsigned 4294967295\n"
                "override .1.3.6.1.2.1.31.1.1.1.15.1 unsigned 10000\n")
    die_with_parent = lambda: ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    snmpd = subprocess.Popen(
        ["snmpd", "-f", "-C", "-c", os.path.join(state, "snmpd.conf"), "-M", "/nonexistent", "-LE", "4",
         ",".join("udp:%s:161" % a for a in routers)],
        env=dict(os.environ, MIBS="", SNMP_PERSISTENT_DIR=state), preexec_fn=die_with_parent)


def stop(*_):
    # Once only: a second signal (Ctrl-C reaches the whole process group, then the demo's cleanup
    # sends SIGTERM) must not re-enter wait() while the first call holds its lock.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if snmpd:
        snmpd.terminate()
        try:
            snmpd.wait(timeout=5)
        except subprocess.TimeoutExpired:
            snmpd.kill()
            snmpd.wait()
        shutil.rmtree(state, ignore_errors=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)

devices = re.findall(r"address: ([0-9.]+), role: (vc_endpoint|mcu)", inventory)
sel = selectors.DefaultSelector()
for addr, role in devices:
    if not wanted(addr):
        continue
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((addr, 5060))
    sel.register(u, selectors.EVENT_READ, ("udp", addr))
    if addr in args.busy + args.mute:
        continue  # no H.323 either, so its call service is down
    for port in (1720, 443) if role == "mcu" else (1720,):
        t = socket.socket()
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, port))
        t.listen(16)
        sel.register(t, selectors.EVENT_READ, ("tcp", addr))


def answer(req, code):
    lines = req.decode("latin-1").split("\r\n")
    keep = [l for l in lines if re.match(r"(via|from|to|call-id|cseq|v|f|t|i):", l, re.I)]
    keep = [l + ";tag=demo" if re.match(r"(to|t):", l, re.I) else l for l in keep]
    return ("SIP/2.0 %s\r\n%s\r\nContent-Length: 0\r\n\r\n" % (code, "\r\n".join(keep))).encode("latin-1")


while True:
    for key, _ in sel.select():
        kind, addr = key.data
        if kind == "tcp":
            c, _ = key.fileobj.accept()
            c.close()
            continue
        data, peer = key.fileobj.recvfrom(65535)
        if addr in args.mute or not data.startswith(b"OPTIONS "):
            continue
        key.fileobj.sendto(answer(data, "503 Service Unavailable" if addr in args.busy else "200 OK"), peer)
