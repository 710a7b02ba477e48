#!/usr/bin/env python3
"""demo-netns-inventory.py SRC DST [--fast]: the reference inventory with Pác Nặm behind a link.

Moves the addresses of district 8 (Pác Nặm, 127.10.8.x) and its communes (127.18.j.x) to
10.199.x, which scripts/demo.sh and tests/integration/status_page.sh put in a network namespace
behind a veth link they can take down; prints the moved addresses, one a line. --fast: 2 s ICMP
rounds (timeout 500 ms) so a test sees down and up again in seconds.
"""
import re
import sys


def main():
    args = [a for a in sys.argv[1:] if a != "--fast"]
    if len(args) != 2:
        sys.exit(__doc__)
    src, dst = args

    def move(m):
        a = m.group(1).split(".")
        if a[1] == "10" and a[2] == "8":
            new = f"10.199.8.{a[3]}"
        elif a[1] == "18":
            new = f"10.199.{100 + int(a[2])}.{a[3]}"
        else:
            return m.group(0)
        print(new)
        return f"address: {new}"

    with open(src) as f:
        text = re.sub(r"address: (127\.\d+\.\d+\.\d+)", move, f.read())
    if "--fast" in sys.argv:
        text = text.replace("interval: 10s", "interval: 2s").replace("timeout: 2s", "timeout: 500ms")
    with open(dst, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
