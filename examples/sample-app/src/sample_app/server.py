"""A small real HTTP service on the standard library.

GET /healthz                 → {"status": "ok", "version": ...}
GET /api/convert?celsius=21  → {"celsius": 21.0, "fahrenheit": 69.8}
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

VERSION = os.environ.get("APP_VERSION", "dev")
# Fault injection for pipeline demos and tests: a release started with SAMPLE_APP_FAIL_HEALTH=1
# answers /healthz with 503, so validation fails and the pipeline rolls it back.
FAIL_HEALTH = os.environ.get("SAMPLE_APP_FAIL_HEALTH") == "1"


def celsius_to_fahrenheit(celsius: float) -> float:
    return round(celsius * 9 / 5 + 32, 2)


class Handler(BaseHTTPRequestHandler):
    server_version = "sample-app"

    def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            if FAIL_HEALTH:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "failing", "version": VERSION})
            else:
                self._send(HTTPStatus.OK, {"status": "ok", "version": VERSION})
        elif url.path == "/api/convert":
            values = parse_qs(url.query).get("celsius", [])
            try:
                celsius = float(values[0])
            except (IndexError, ValueError):
                self._send(HTTPStatus.BAD_REQUEST, {"error": "query parameter celsius=<number> is required"})
                return
            if not math.isfinite(celsius):
                self._send(HTTPStatus.BAD_REQUEST, {"error": "celsius must be a finite number"})
                return
            self._send(HTTPStatus.OK, {"celsius": celsius, "fahrenheit": celsius_to_fahrenheit(celsius)})
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def make_server(host: str, port: int) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sample-app HTTP service")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port)
    stop = threading.Event()

    def shutdown(signum: int, frame: object) -> None:
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    sys.stderr.write(f"sample-app {VERSION} listening on http://{args.host}:{server.server_port}\n")
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
