#!/usr/bin/env python3
"""A misbehaving SNMP agent on loopback, for tests: bad_agent.py PORT MODE

MODE garbage:    answers every request with random bytes.
MODE truncated:  answers with a valid GetResponse cut in half.
MODE stuck:      a well-formed v2c GetResponse whose walk never advances: asked for X it answers
                 X.5, asked for X.5 it answers X.5 again.
"""
import os
import socket
import sys

from hostile_agent import integer, read_tlv, tlv  # the same BER helpers


def respond(req):
    _, msg, _ = read_tlv(req, 0)
    _, ver, i = read_tlv(msg, 0)
    _, community, i = read_tlv(msg, i)
    _, pdu, _ = read_tlv(msg, i)
    _, reqid, j = read_tlv(pdu, 0)
    _, _, j = read_tlv(pdu, j)
    _, _, j = read_tlv(pdu, j)
    _, vbl, _ = read_tlv(pdu, j)
    vbs, k = b"", 0
    while k < len(vbl):
        _, vb, k = read_tlv(vbl, k)
        _, name, _ = read_tlv(vb, 0)
        if name[-1:] != b"\x05":
            name += b"\x05"
        vbs += tlv(0x30, tlv(0x06, name) + integer(1))
    body = tlv(0x02, reqid) + integer(0) + integer(0) + tlv(0x30, vbs)
    return tlv(0x30, tlv(0x02, ver) + tlv(0x04, community) + tlv(0xA2, body))


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    while True:
        data, peer = s.recvfrom(65536)
        try:
            if mode == "garbage":
                out = os.urandom(60)
            elif mode == "truncated":
                out = respond(data)
                out = out[: len(out) // 2]
            else:
                out = respond(data)
        except (IndexError, ValueError):
            continue
        s.sendto(out, peer)


if __name__ == "__main__":
    main()
