"""A webhook receiver for the trigger tests, verifying every delivery with
the reference Standard Webhooks implementation from PyPI (`standardwebhooks`),
which nobody here wrote.

    python3 webhook_receiver.py LOG_FILE

Prints `listening on PORT`, then serves on 127.0.0.1:PORT. Every POST (any
path but /_control) is verified with `Webhook(secret).verify(body, headers)`
against each configured secret and appended to LOG_FILE as one JSON line
(flushed and fsynced before the answer): webhook_id, timestamp, verified,
the signature count, the answer status, the receive time and the body.

`POST /_control` with `{"secrets": [...], "mode": {...}}` sets what it
accepts and how it answers:
  {"ok": true}                     204
  {"fail": N, "status": S, "retry_after": R}
                                   answers S (default 500, with Retry-After R
                                   if given) to the next N deliveries, then 204
  {"status": S}                    always S (e.g. 410)
  {"slow_ms": N}                   waits N ms, then 204
  {"redirect": URL}                302 to URL
Unverifiable requests get 401 (and are logged with verified=false).
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

LOG = sys.argv[1]
STATE = {"secrets": [], "mode": {"ok": True}}
LOCK = threading.Lock()


def log(entry):
    with LOCK:
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, headers=None, body=b""):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if len(body) < length:
            return  # the sender died mid-request (the crash tests kill it)
        if self.path == "/_control":
            with LOCK:
                STATE.update(json.loads(body))
            return self.answer(204)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with LOCK:
            secrets = list(STATE["secrets"])
            mode = STATE["mode"]
        verified = False
        for s in secrets:
            try:
                Webhook(s).verify(body, headers)
                verified = True
                break
            except Exception:
                pass
        status, extra = 204, {}
        if not verified:
            status = 401
        elif "fail" in mode and mode["fail"] > 0:
            with LOCK:
                mode["fail"] -= 1
            status = mode.get("status", 500)
            if "retry_after" in mode:
                extra["Retry-After"] = str(mode["retry_after"])
        elif "fail" in mode:
            status = 204
        elif "status" in mode:
            status = mode["status"]
        elif "slow_ms" in mode:
            time.sleep(mode["slow_ms"] / 1000)
        elif "redirect" in mode:
            status, extra = 302, {"Location": mode["redirect"]}
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        log({
            "path": self.path,
            "webhook_id": headers.get("webhook-id"),
            "timestamp": headers.get("webhook-timestamp"),
            "signatures": len(headers.get("webhook-signature", "").split()),
            "verified": verified,
            "status": status,
            "received_at": time.time(),
            "body": parsed,
        })
        self.answer(status, extra)


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A sender killed mid-request (the crash tests) is not an error here.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


server = Server(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
