#!/usr/bin/env python3
"""A minimal Alertmanager webhook receiver for the end-to-end test: every notification it gets is
appended to a file as one JSON line per alert: {"status", "labels", "receiver", "at", "notification"};
"notification" numbers the POSTs (1, 2, ...), so alerts sent together share one."""
import json, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

port, out = int(sys.argv[1]), sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    posts = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        Handler.posts += 1
        with open(out, "a") as f:
            for a in body.get("alerts", []):
                f.write(json.dumps({"status": a["status"], "labels": a["labels"],
                                    "receiver": body.get("receiver"), "at": time.time(),
                                    "notification": Handler.posts}) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
