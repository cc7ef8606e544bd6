#!/usr/bin/env python3
"""A stand-in OTLP/HTTP backend for bench/ingest.sh: answers 200 to every POST /v1/traces,
/v1/metrics and /v1/logs without decoding it, so the figures measure squirrel's cost of producing,
encoding, compressing and sending telemetry, not a collector's.

    bench/otlp_sink.py PORT_FILE [--status CODE] [--delay SECONDS]

Listens on 127.0.0.1 (an ephemeral port, written to PORT_FILE once listening). On SIGTERM it
prints one line, `OTLP requests=N bytes=B traces=T metrics=M logs=L`, and exits 0.
`--status 401` answers that status instead of 200 (a backend refusing the token); `--delay 5`
answers each request only after 5 s (a slow backend); bench/faults.sh uses both.
Standard library only; no network beyond loopback.
"""
import http.server
import signal
import sys
import threading
import time

counts = {"requests": 0, "bytes": 0, "traces": 0, "metrics": 0, "logs": 0}
STATUS = int(sys.argv[sys.argv.index("--status") + 1]) if "--status" in sys.argv else 200
DELAY = float(sys.argv[sys.argv.index("--delay") + 1]) if "--delay" in sys.argv else 0.0
lock = threading.Lock()


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real collector

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)
        kind = self.path.rsplit("/", 1)[-1]
        with lock:
            counts["requests"] += 1
            counts["bytes"] += length
            if kind in counts:
                counts[kind] += 1
        if DELAY:
            time.sleep(DELAY)
        self.send_response(STATUS)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    server.daemon_threads = True

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()
    with lock:
        print("OTLP " + " ".join(f"{k}={v}" for k, v in counts.items()), flush=True)


if __name__ == "__main__":
    main()
