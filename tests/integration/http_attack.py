#!/usr/bin/env python3
"""Hostile HTTP clients for http_abuse.sh, on loopback only.

  http_attack.py slowloris PORT N SRC[,SRC...] SECONDS
      N connections (spread over the source addresses), each sending a request line and then one
      header byte per second, never finishing; a connection the server closes is reopened.
  http_attack.py flood PORT N SRC[,SRC...] SECONDS USER
      N connections sending requests with a different wrong password each time, as fast as the
      server answers.
  http_attack.py auth PORT N SRC[,SRC...] ROUNDS USERPREFIX PASSWORD
      ROUNDS rounds of N concurrent requests with valid credentials never used before (users
      USERPREFIX0, USERPREFIX1, ...), a second apart; each must be answered (status and time kept).
Prints one JSON line of counts.
"""
import base64, json, os, selectors, socket, sys, threading, time

mode, port, n, srcs, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(","), float(sys.argv[5])
for s in srcs:
    if not s.startswith("127."):
        sys.exit("loopback sources only")
end = time.monotonic() + secs


def connect(src):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(2)
    s.connect(("127.0.0.1", port))
    return s


def slowloris():
    sel = selectors.DefaultSelector()
    stats = {"opened": 0, "failed": 0, "closed_by_server": 0, "closed_within_1s": 0, "max_open": 0, "longest_s": 0.0}
    born = {}

    def open_one(i):
        try:
            s = connect(srcs[i % len(srcs)])
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
            born[s] = time.monotonic()
            stats["opened"] += 1
        except OSError:
            stats["failed"] += 1

    for i in range(n):
        open_one(i)
    while time.monotonic() < end:
        stats["max_open"] = max(stats["max_open"], len(born))
        deadline = time.monotonic() + 1
        while (t := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(t):  # readable: the server answered or closed
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    stats["closed_by_server"] += 1
                    age = time.monotonic() - born.pop(s)
                    stats["longest_s"] = max(stats["longest_s"], age)
                    stats["closed_within_1s"] += age < 1
                    sel.unregister(s)
                    s.close()
        for s in list(born):  # drip a byte
            try:
                s.send(b"X")
            except OSError:
                pass
        for i in range(n - len(born)):  # reopen what was closed, at most once a second
            open_one(i)
    for s in born:
        stats["longest_s"] = max(stats["longest_s"], time.monotonic() - born[s])
        s.close()
    stats["longest_s"] = round(stats["longest_s"], 1)
    return stats


def flood(user):
    stats = {"requests": 0, "failed": 0}
    codes = {}
    lock = threading.Lock()

    def worker(i):

        while time.monotonic() < end:
            pw = os.urandom(8).hex()
            auth = base64.b64encode(f"{user}:{pw}".encode()).decode()
            req = f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
            try:
                s = connect(srcs[i % len(srcs)])
                s.settimeout(10)
                s.sendall(req.encode())
                resp = b""
                while chunk := s.recv(4096):
                    resp += chunk
                s.close()
                code = resp[9:12].decode() or "none"
            except OSError:
                code = "error"
            with lock:
                stats["requests"] += 1
                codes[code] = codes.get(code, 0) + 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(secs + 15)
    stats["codes"] = codes
    return stats


def auth(prefix, password):
    stats = {"requests": 0, "slowest_s": 0.0}
    codes = {}
    lock = threading.Lock()

    def one(i, src, barrier):
        auth = base64.b64encode(f"{prefix}{i}:{password}".encode()).decode()
        req = f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
        try:
            s = connect(src)
            s.settimeout(10)
            barrier.wait()
            t0 = time.monotonic()
            s.sendall(req.encode())
            resp = b""
            while chunk := s.recv(65536):
                resp += chunk
            s.close()
            code = resp[9:12].decode() or "none"
        except (OSError, threading.BrokenBarrierError):
            code, t0 = "error", time.monotonic()
        with lock:
            stats["requests"] += 1
            stats["slowest_s"] = max(stats["slowest_s"], round(time.monotonic() - t0, 3))
            codes[code] = codes.get(code, 0) + 1

    for r in range(int(secs)):
        barrier = threading.Barrier(n)
        threads = [threading.Thread(target=one, args=(r * n + i, srcs[(r * n + i) % len(srcs)], barrier), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        time.sleep(1.1)  # the global bcrypt budget refills (10 a second)
    stats["codes"] = codes
    return stats


if mode == "slowloris":
    print(json.dumps(slowloris()), flush=True)
elif mode == "flood":
    print(json.dumps(flood(sys.argv[6])), flush=True)
else:
    print(json.dumps(auth(sys.argv[6], sys.argv[7])), flush=True)
