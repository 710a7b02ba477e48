#!/usr/bin/env python3
"""A hostile SNMPv2c agent on loopback, for tests: hostile_agent.py ADDRESS PORT MODE

It serves the system group and an IF-MIB table (ifTable and ifXTable columns) computed on the fly,
so it can claim any number of rows without holding them, and answers GET, GETNEXT and GETBULK
(its non-repeaters once, as RFC 3416 says, the other varbinds max-repetitions times).

MODE normal:    2 interfaces ("eth0", "lo"), well-formed.
MODE longname:  2 interfaces; ifName of the second is "lo" followed by 30,000 bytes of "x" (the
                std::regex stack overflow), ifAlias 20,000 bytes of invalid UTF-8, ifDescr 3,000 bytes,
                sysDescr 30,000 bytes.
MODE rows:      100,000 interfaces.
MODE endless:   a walk that never ends: every column has rows 1, 2, 3, ... without limit.
MODE fat:       answers every GETBULK with far more varbinds than asked (as many rows as fit).
MODE getspam:   answers a GET with 2,000 varbinds nobody asked for, besides those asked.
MODE bulkbug:   2 interfaces, but repeats a GETBULK's non-repeaters as if they were repeaters (a bug
                of some agents), and cuts its answer to 40 varbinds as if for a small message size.
"""
import socket
import sys

SYS = (1, 3, 6, 1, 2, 1, 1)
IF_TABLE = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_TABLE = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
IF_COLS = [2, 5, 7, 8, 10, 11, 13, 14, 16, 17, 19, 20]
IFX_COLS = [1, 6, 7, 10, 11, 15, 18]
COLUMNS = sorted([IF_TABLE + (c,) for c in IF_COLS] + [IFX_TABLE + (c,) for c in IFX_COLS])
END = None  # endOfMibView


def tlv(tag, body):
    n = len(body)
    if n < 128:
        ln = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        ln = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + ln + body


def read_tlv(buf, i):
    tag, n = buf[i], buf[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[i:i + k], "big")
        i += k
    return tag, buf[i:i + n], i + n


def integer(v, tag=0x02):
    return tlv(tag, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))


def unsigned(v, tag):
    b = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")
    if b[0] & 0x80:
        b = b"\x00" + b
    return tlv(tag, b)


def enc_oid(o):
    body = bytes([o[0] * 40 + o[1]])
    for x in o[2:]:
        part = [x & 0x7F]
        x >>= 7
        while x:
            part.insert(0, 0x80 | (x & 0x7F))
            x >>= 7
        body += bytes(part)
    return tlv(0x06, body)


def dec_oid(b):
    o = [b[0] // 40, b[0] % 40]
    x = 0
    for c in b[1:]:
        x = (x << 7) | (c & 0x7F)
        if not c & 0x80:
            o.append(x)
            x = 0
    return tuple(o)


class Mib:
    def __init__(self, mode):
        self.mode = mode
        self.rows = {"rows": 100000, "endless": 1 << 62}.get(mode, 2)

    def name(self, i):
        if i == 1:
            return b"eth0"
        if self.mode == "longname" and i == 2:
            return b"lo" + b"x" * 30000
        return b"lo" if i == 2 else b"if%d" % i

    def value(self, o):
        if o[:len(SYS)] == SYS and len(o) == len(SYS) + 2 and o[-1] == 0:
            k = o[len(SYS)]
            if k == 1:
                return tlv(0x04, b"d" * 30000 if self.mode == "longname" else b"hostile agent")
            if k == 2:
                return enc_oid((1, 3, 6, 1, 4, 1, 8072, 3, 2, 10))
            if k == 3:
                return unsigned(12345, 0x43)
            if k == 5:
                return tlv(0x04, b"hostile")
            return None
        for c in COLUMNS:
            if o[:len(c)] == c and len(o) == len(c) + 1 and 1 <= o[-1] <= self.rows:
                return self.column_value(c, o[-1])
        return None

    def column_value(self, c, i):
        if c == IFX_TABLE + (1,):
            return tlv(0x04, self.name(i))
        if c == IFX_TABLE + (18,):
            return tlv(0x04, b"\xff\xfe" * 10000 if self.mode == "longname" and i == 2 else b"")
        if c == IF_TABLE + (2,):  # ifDescr
            return tlv(0x04, b"D" * 3000 if self.mode == "longname" else self.name(i))
        if c in (IF_TABLE + (7,), IF_TABLE + (8,)):
            return integer(1)
        if c == IF_TABLE + (5,) or c == IFX_TABLE + (15,):
            return unsigned(1000 if c[-1] == 15 else 1000000000, 0x42)
        if c[:len(IFX_TABLE)] == IFX_TABLE:
            return unsigned(1000 * i, 0x46)
        return unsigned(i, 0x41)

    def next(self, o):
        """The first OID after o, and its value."""
        for s in (1, 2, 3, 5):  # system scalars
            so = SYS + (s, 0)
            if o < so:
                return so, self.value(so)
        for c in COLUMNS:
            if o < c + (1,):
                return c + (1,), self.value(c + (1,))
            if o[:len(c)] == c:
                i = o[len(c)] + 1 if len(o) > len(c) else 1
                if i <= self.rows:
                    return c + (i,), self.value(c + (i,))
        return o, END


def vb(o, v):
    return tlv(0x30, enc_oid(o) + (v if v is not None else tlv(0x82, b"")))


def respond(mib, req):
    _, msg, _ = read_tlv(req, 0)
    _, ver, i = read_tlv(msg, 0)
    _, community, i = read_tlv(msg, i)
    cmd, pdu, _ = read_tlv(msg, i)
    _, reqid, j = read_tlv(pdu, 0)
    _, nonrep, j = read_tlv(pdu, j)
    _, maxrep, j = read_tlv(pdu, j)
    _, vbl, _ = read_tlv(pdu, j)
    names, k = [], 0
    while k < len(vbl):
        _, one, k = read_tlv(vbl, k)
        _, name, _ = read_tlv(one, 0)
        names.append(dec_oid(name))
    out = []
    if cmd == 0xA0:  # GET
        out = [vb(o, mib.value(o) or tlv(0x81, b"")) for o in names]
        if mib.mode == "getspam":
            out += [vb((1, 3, 6, 1, 4, 1, 99999, n, 0), integer(n)) for n in range(2000)]
    elif cmd == 0xA1:  # GETNEXT
        out = [vb(*mib.next(o)) for o in names]
    elif cmd == 0xA5:  # GETBULK
        reps = int.from_bytes(maxrep, "big") if mib.mode != "fat" else 100000
        nr = int.from_bytes(nonrep, "big") if mib.mode != "bulkbug" else 0
        nr = min(nr, len(names))
        out = [vb(*mib.next(o)) for o in names[:nr]]
        cur, size = list(names[nr:]), 0
        for _ in range(reps):
            row = []
            for n, o in enumerate(cur):
                cur[n], v = mib.next(o)
                row.append(vb(cur[n], v))
            row_size = sum(len(x) for x in row)
            if out and size + row_size > 30000:
                break
            out += row
            size += row_size
        if mib.mode == "bulkbug":
            out = out[:40]
    body = tlv(0x02, reqid) + integer(0) + integer(0) + tlv(0x30, b"".join(out))
    return tlv(0x30, tlv(0x02, ver) + tlv(0x04, community) + tlv(0xA2, body))


def main():
    addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    mib = Mib(mode)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(65536)
        try:
            out = respond(mib, data)
        except (IndexError, ValueError):
            continue
        try:
            s.sendto(out, peer)
        except OSError:  # over 64 KiB: no answer, as from a real agent
            pass


if __name__ == "__main__":
    main()
