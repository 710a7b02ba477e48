#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_icmp (see icmp_fuzz.cpp for the opcodes) to corpus/icmp/.

Programs that start rounds and answer them in the ways the engine distinguishes, plus real packets
captured on loopback (needs root for raw sockets): an echo reply with its IPv4 header, an ICMPv6
echo reply, and a port unreachable quoting a UDP datagram. Run again to refresh; only loopback."""
import os, socket, struct, sys, time

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "icmp")
os.makedirs(out, exist_ok=True)
def adv(ms): return bytes([0]) + struct.pack(">H", ms)
def reply(i, how=0, *args): return bytes([1, i, how, *args, 10])  # last operand: RTT + 2 ms
def error(i, op=3): return bytes([op, i, 0])
def raw(data, op=2, src=0): return bytes([op, len(data)]) + data + bytes([src])
seeds = {
    "round-all-answered": adv(1000) + reply(0) + adv(10) + reply(1) + adv(10) + reply(2) + adv(500),
    "duplicate-and-late": adv(1000) + reply(0) + reply(0) + adv(2000) + reply(0),
    "wrong-source": adv(1000) + reply(0, 4, 1) + adv(400),
    "one-byte-changed": adv(1000) + reply(0, 1, 12, 0xff) + reply(0, 1, 20, 0x7f),
    "truncated-reply": adv(1000) + reply(0, 2, 20),
    "unreachable-and-ttl": adv(1000) + error(0) + error(1, 3 | 8) + adv(500),
    "reload-mid-round": adv(1000) + bytes([4, 3]) + reply(0) + bytes([4, 7]) + adv(2000),
    "address-change": adv(1000) + bytes([5, 0, 3]) + adv(1000) + bytes([5, 0, 0]) + adv(1000) + reply(3),
}

def capture(family, proto, send):
    s = socket.socket(family, socket.SOCK_RAW, proto)
    s.settimeout(1)
    send()
    deadline = time.time() + 1
    while time.time() < deadline:
        data = s.recv(2048)
        if family == socket.AF_INET6 and data[0] == 129: return data
        if family == socket.AF_INET and data[20] in (0, 3): return data

def echo(family, ident=0x4242):
    typ = 8 if family == socket.AF_INET else 128
    body = struct.pack(">HH", ident, 1) + b"siteprobe-seed-payload!!"
    csum = sum(struct.unpack(">%dH" % ((4 + len(body)) // 2), struct.pack(">BBH", typ, 0, 0) + body))
    while csum >> 16: csum = (csum & 0xffff) + (csum >> 16)
    pkt = struct.pack(">BBH", typ, 0, ~csum & 0xffff if family == socket.AF_INET else 0) + body
    dst = ("127.0.0.1", 0) if family == socket.AF_INET else ("::1", 0)
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    return lambda: socket.socket(family, socket.SOCK_RAW, proto).sendto(pkt, dst)

if os.geteuid() == 0:
    v4 = capture(socket.AF_INET, socket.IPPROTO_ICMP, echo(socket.AF_INET))
    v6 = capture(socket.AF_INET6, socket.IPPROTO_ICMPV6, echo(socket.AF_INET6))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    unreach = capture(socket.AF_INET, socket.IPPROTO_ICMP, lambda: u.sendto(b"x", ("127.0.0.1", 9)))
    seeds["real-v4-echo-reply"] = raw(v4, 2 | 16)
    seeds["real-v6-echo-reply"] = raw(v6, 2 | 8, 2)
    seeds["real-v4-port-unreachable"] = raw(unreach, 2 | 16)
else:
    print("not root: real packets not captured", file=sys.stderr)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f: f.write(data)
print(f"{len(seeds)} seeds in {out}")
