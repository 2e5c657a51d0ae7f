"""Unit tests of sample-app (stdlib unittest, so the app needs no test dependency)."""

from __future__ import annotations

import json
import sys
import threading
import unittest
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sample_app.server import celsius_to_fahrenheit, make_server


class ConvertTest(unittest.TestCase):
    def test_known_values(self) -> None:
        self.assertEqual(celsius_to_fahrenheit(0), 32)
        self.assertEqual(celsius_to_fahrenheit(100), 212)
        self.assertEqual(celsius_to_fahrenheit(-40), -40)


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = make_server("127.0.0.1", 0)
        cls.base = f"http://127.0.0.1:{cls.server.server_port}"
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()
        cls.server.server_close()
        cls.thread.join(timeout=5)

    def get(self, path: str) -> tuple[int, dict[str, object]]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def test_healthz(self) -> None:
        status, body = self.get("/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "ok")

    def test_convert(self) -> None:
        status, body = self.get("/api/convert?celsius=21")
        self.assertEqual(status, 200)
        self.assertEqual(body, {"celsius": 21.0, "fahrenheit": 69.8})

    def test_convert_rejects_bad_input(self) -> None:
        for query in ("", "?celsius=abc", "?celsius=nan"):
            status, body = self.get("/api/convert" + query)
            self.assertEqual(status, 400, query)
            self.assertIn("error", body)

    def test_failing_health_switch(self) -> None:
        from sample_app import server

        server.FAIL_HEALTH = True
        try:
            status, body = self.get("/healthz")
        finally:
            server.FAIL_HEALTH = False
        self.assertEqual(status, 503)
        self.assertEqual(body["status"], "failing")

    def test_unknown_path(self) -> None:
        status, _ = self.get("/nope")
        self.assertEqual(status, 404)


if __name__ == "__main__":
    unittest.main()
