"""A fake OSV API on 127.0.0.1 serving real advisory records (shared/corpus/osv/records).

It speaks the two endpoints pip-audit and devops-agent use, like api.osv.dev:

- ``POST /v1/query`` ``{"package": {"name", "ecosystem"}, "version"}`` → ``{"vulns": [...]}``
  (``{}`` when nothing matches, as the real service answers);
- ``GET /v1/vulns/<id>`` → the record, or 404.

Affected versions are decided from the records themselves: the explicit ``versions`` list and
``ECOSYSTEM`` ranges (introduced/fixed/last_affected events, compared with packaging's PEP 440
ordering). Failure modes for fail-closed tests: ``mode`` = "ok", "error" (HTTP 500), "garbage"
(200 with a body that is not JSON), "empty" (a database that knows nothing).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _v(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def affects(record: dict[str, Any], name: str, version: str) -> bool:
    wanted = _v(version)
    for affected in record.get("affected", []):
        package = affected.get("package", {})
        if package.get("ecosystem") != "PyPI" or canonical(package.get("name", "")) != canonical(name):
            continue
        if version in affected.get("versions", []):
            return True
        if wanted is None:
            continue
        for rng in affected.get("ranges", []):
            if rng.get("type") != "ECOSYSTEM":
                continue
            inside = False
            for event in rng.get("events", []):
                if "introduced" in event:
                    start = event["introduced"]
                    inside = start == "0" or (_v(start) is not None and wanted >= _v(start))  # type: ignore[operator]
                elif "fixed" in event and inside:
                    fixed = _v(event["fixed"])
                    if fixed is not None and wanted < fixed:
                        return True
                    inside = False
                elif "last_affected" in event and inside:
                    last = _v(event["last_affected"])
                    if last is not None and wanted <= last:
                        return True
                    inside = False
            if inside:
                return True
    return False


@dataclass
class FakeOsv:
    records: dict[str, dict[str, Any]]
    mode: str = "ok"
    queries: list[dict[str, Any]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    port: int = 0

    @classmethod
    def from_dir(cls, directory: Path) -> FakeOsv:
        records = {}
        for path in sorted(directory.glob("*.json")):
            record = json.loads(path.read_text(encoding="utf-8"))
            records[record["id"]] = record
        return cls(records)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def query_url(self) -> str:
        return self.base + "/query"

    def matching(self, name: str, version: str) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if affects(r, name, version)]


def _handler(fake: FakeOsv) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _failure(self) -> bool:
            if fake.mode == "error":
                self._send(500, b'{"code": 13, "message": "internal error"}')
                return True
            if fake.mode == "garbage":
                self._send(200, b"<html>captive portal</html>", "text/html")
                return True
            return False

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path != "/v1/query":
                self._send(404, b'{"code": 5, "message": "Not Found"}')
                return
            try:
                query = json.loads(raw)
                name = query["package"]["name"]
                version = query["version"]
            except (ValueError, KeyError, TypeError):
                self._send(400, b'{"code": 3, "message": "Invalid query."}')
                return
            fake.queries.append(query)
            if self._failure():
                return
            vulns = [] if fake.mode == "empty" else fake.matching(name, version)
            self._send(200, json.dumps({"vulns": vulns} if vulns else {}).encode())

        def do_GET(self) -> None:
            prefix = "/v1/vulns/"
            if not self.path.startswith(prefix):
                self._send(404, b'{"code": 5, "message": "Not Found"}')
                return
            vuln_id = self.path[len(prefix) :]
            fake.lookups.append(vuln_id)
            if self._failure():
                return
            record = None if fake.mode == "empty" else fake.records.get(vuln_id)
            if record is None:
                self._send(404, b'{"code": 5, "message": "Bug not found."}')
                return
            self._send(200, json.dumps(record).encode())

    return Handler


@contextmanager
def serve(fake: FakeOsv) -> Iterator[FakeOsv]:
    """Run the fake on an ephemeral 127.0.0.1 port for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def unused_port() -> int:
    """A 127.0.0.1 port with nothing listening (for 'connection refused')."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def ids(records: Iterable[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in records}
