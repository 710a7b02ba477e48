#!/usr/bin/env python3
"""Stand-in video-conference endpoints for the demo, on loopback (or inside a demo namespace).

Usage: demo-endpoints.py INVENTORY [--only PREFIX] [--skip PREFIX] [--busy ADDR] [--mute ADDR]

For every vc_endpoint and mcu address in INVENTORY (whose prefix matches --only, if given, and not
--skip) it binds UDP 5060 and answers SIP OPTIONS with 200 OK, and listens on TCP 1720 (H.323)
and, for an mcu, TCP 443. A --busy address answers 503 Service Unavailable; a --mute address reads
its requests and never answers; neither of them listens on TCP. Stdlib only; runs until killed.
"""

import argparse
import re
import selectors
import socket

ap = argparse.ArgumentParser()
ap.add_argument("inventory")
ap.add_argument("--only", default="")
ap.add_argument("--skip", action="append", default=[])
ap.add_argument("--busy", action="append", default=[])
ap.add_argument("--mute", action="append", default=[])
args = ap.parse_args()

devices = re.findall(r"address: ([0-9.]+), role: (vc_endpoint|mcu)", open(args.inventory, encoding="utf-8").read())
sel = selectors.DefaultSelector()
for addr, role in devices:
    if not addr.startswith(args.only) or any(addr.startswith(p) for p in args.skip):
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
