#!/usr/bin/env python3
"""A stand-in for systemd's notification socket: binds an AF_UNIX datagram socket and appends
each message it receives to a file as one line, "<monotonic seconds> <fields joined by |>"."""
import os, socket, sys, time

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)
with open(out, "a", buffering=1) as f:
    while True:
        msg = s.recv(4096).decode()
        f.write("%.3f %s\n" % (time.monotonic(), msg.strip().replace("\n", "|")))
