#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_snmp (see snmp_fuzz.cpp for the input format) to corpus/snmp/:
polls of a router with two interfaces as real agents answer them (HC counters, 32-bit counters
that wrap, a reboot, a missing column, custom objects)."""
import os, struct

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "snmp")
os.makedirs(out, exist_ok=True)
INT, UNS, C32, C64, TICKS, STR, OID = 1, 2, 3, 4, 5, 6, 7
IF = {"descr": 2, "speed": 5, "admin": 7, "oper": 8, "in": 10, "in_err": 14, "out": 16}
IFX = {"name": 1, "hc_in": 6, "hc_out": 10, "high": 15, "alias": 18}
def num(t, v): return bytes([t, 8]) + struct.pack(">Q", v)
def text(t, s): b = s.encode(); return bytes([t, 0, len(b)]) + b
def scalar(i, val): return bytes([i, 0]) + val               # 0 uptime, 1 name, 2 descr, 3 oid, 4 bytes, 5 version
def ifcol(c, row, val): return bytes([40 + [2, 5, 7, 8, 10, 11, 13, 14, 16, 17, 19, 20].index(c), row]) + val
def ifxcol(c, row, val): return bytes([160 + [1, 6, 7, 10, 11, 15, 18].index(c), row]) + val
def poll(secs, *vbs): return bytes([secs, len(vbs)]) + b"".join(vbs)
def router(up, c_in, hc=True, reboot_name="Gi0/0"):
    vbs = [scalar(0, num(TICKS, up)), scalar(1, text(STR, "router-1")), scalar(2, text(STR, "Cisco IOS")),
           scalar(3, text(OID, "1.3.6.1.4.1.9.1.1"))]
    for row, name in ((0, reboot_name), (1, "Null0")):
        vbs += [ifxcol(1, row, text(STR, name)), ifxcol(18, row, text(STR, "Uplink tới Chợ Đồn")),
                ifcol(8, row, num(INT, 1)), ifcol(7, row, num(INT, 1)), ifcol(14, row, num(C32, c_in // 1000))]
        vbs += [ifxcol(6, row, num(C64, c_in)), ifxcol(15, row, num(UNS, 1000))] if hc else \
               [ifcol(10, row, num(C32, c_in % 2**32)), ifcol(5, row, num(UNS, 10**8))]
    return vbs
seeds = {
    "hc-counters": bytes([0x0f]) + poll(60, *router(5000, 10**12)) + poll(60, *router(11000, 10**12 + 10**9)),
    "32bit-wrap": bytes([0x07]) + poll(60, *router(5000, 2**32 - 1000, False)) + poll(60, *router(11000, 2**32 + 5000, False)),
    "reboot": bytes([0x03]) + poll(60, *router(900000, 5 * 10**9, False)) + poll(60, *router(300, 1000, False)),
    "hc-then-32bit": bytes([0x00]) + poll(60, *router(5000, 10**12)) + poll(60, *router(11000, 10**12, False)),
    "custom-objects": bytes([0x08]) + poll(30, scalar(4, num(C32, 7)), scalar(5, text(STR, "v9.1 \"beta\"")),
                                         bytes([243, 1]) + num(UNS, 12), bytes([242, 2]) + text(STR, "41.5")),
    "bad-utf8-names": bytes([0x04]) + poll(10, ifxcol(1, 0, bytes([STR, 0, 4]) + b"\xff\xfe\n\""), ifcol(8, 0, num(INT, 2))),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f: f.write(data)
print(f"{len(seeds)} seeds in {out}")
