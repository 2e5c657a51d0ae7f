"""A small fake OCI registry (distribution API v2, manifests only) on 127.0.0.1, plus an image
factory that builds realistic GHCR-like packages: multi-arch indexes whose platform manifests and
BuildKit attestation manifests are separate untagged versions, cosign ``sha256-<hex>.sig``
signatures, OCI 1.1 referrers with ``subject``, and untagged leftovers.

The fake GitHub server (tests/fakes/github) models the *packages API* (versions listing/deletion);
this one serves the *manifests* those versions are, so the cleanup janitor can resolve image graphs.
With ``token`` set it answers 401 + a Bearer challenge like ghcr.io, and issues tokens at /token.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    """Manifests by repository and digest; ``log`` records (method, path, status)."""

    def __init__(self, *, token: str | None = None) -> None:
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}
        self.token = token
        self.issued = "registry-pull-token"
        self.log: list[tuple[str, str, int]] = []
        self.fail_next: list[int] = []  # statuses answered to the next manifest GETs (fault injection)
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def put(self, repository: str, doc: dict[str, Any]) -> str:
        raw = canonical(doc)
        digest = sha(raw)
        self.manifests[(repository, digest)] = (str(doc.get("mediaType", OCI_MANIFEST)), raw)
        return digest

    def start(self) -> FakeRegistry:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                status, ctype, body, headers = registry.handle(
                    self.path, self.headers.get("authorization", "")
                )
                with registry.lock:
                    registry.log.append(("GET", self.path, status))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def handle(self, path: str, auth: str) -> tuple[int, str, bytes, dict[str, str]]:
        if path.startswith("/token"):
            if self.token is not None and auth != "Basic " + _b64(f"user:{self.token}"):
                return 401, "application/json", b'{"errors":[{"code":"DENIED"}]}', {}
            return 200, "application/json", json.dumps({"token": self.issued}).encode(), {}
        if self.token is not None and auth != f"Bearer {self.issued}":
            challenge = f'Bearer realm="{self.url}/token",service="fake",scope="repository:x:pull"'
            return (
                401,
                "application/json",
                b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                {"www-authenticate": challenge},
            )
        if "/manifests/" in path and self.fail_next:
            with self.lock:
                status = self.fail_next.pop(0) if self.fail_next else 0
            if status:
                return (
                    status,
                    "application/json",
                    b'{"errors":[{"code":"UNAVAILABLE"}]}',
                    {"retry-after": "2"},
                )
        if not path.startswith("/v2/") or "/manifests/" not in path:
            return 404, "application/json", b'{"errors":[{"code":"NOT_FOUND"}]}', {}
        repository, _, reference = path[4:].partition("/manifests/")
        found = self.manifests.get((repository, reference))
        if found is None:
            return 404, "application/json", b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', {}
        media_type, raw = found
        return 200, media_type, raw, {"docker-content-digest": reference}

    @property
    def manifest_gets(self) -> int:
        return sum(1 for method, path, _ in self.log if method == "GET" and "/manifests/" in path)


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


# ------------------------------------------------------------------------------------------------
# Image factory
# ------------------------------------------------------------------------------------------------


@dataclass
class Version:
    digest: str
    tags: list[str]
    created_at: datetime
    kind: str  # image | index | child | attestation | signature | referrer | leftover
    parent: str | None = None


@dataclass
class ImagePackage:
    """Builds one package's manifests into a FakeRegistry and records the versions GHCR would list."""

    registry: FakeRegistry
    repository: str
    versions: list[Version] = field(default_factory=list)
    _n: int = 0

    def _blob(self, label: str, size: int) -> dict[str, Any]:
        self._n += 1
        return {
            "mediaType": LAYER,
            "digest": sha(f"{self.repository}:{label}:{self._n}".encode()),
            "size": size,
        }

    def _image_doc(self, label: str, *, layer_size: int = 1000, subject: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": sha(f"cfg:{self.repository}:{label}".encode()),
                "size": 100,
            },
            "layers": [self._blob(label, layer_size)],
        }
        if subject is not None:
            doc["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1}
            doc["artifactType"] = "application/vnd.dev.sigstore.bundle.v0.3+json"
        return doc

    def image(self, tags: list[str], created_at: datetime, *, label: str = "") -> str:
        digest = self.registry.put(self.repository, self._image_doc(label or f"img{len(self.versions)}"))
        self.versions.append(Version(digest, list(tags), created_at, "image"))
        return digest

    def index(
        self,
        tags: list[str],
        created_at: datetime,
        *,
        platforms: int = 2,
        attestations: bool = True,
        label: str = "",
    ) -> tuple[str, list[str]]:
        label = label or f"idx{len(self.versions)}"
        children = []
        entries = []
        for arch in range(platforms):
            child = self.registry.put(self.repository, self._image_doc(f"{label}-{arch}"))
            children.append(child)
            entries.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": child,
                    "size": 500,
                    "platform": {"architecture": f"arch{arch}", "os": "linux"},
                }
            )
        if attestations:
            for child in list(children):
                att = self.registry.put(
                    self.repository, self._image_doc(f"{label}-att-{child[-6:]}", layer_size=50)
                )
                children.append(att)
                entries.append(
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": att,
                        "size": 300,
                        "platform": {"architecture": "unknown", "os": "unknown"},
                        "annotations": {
                            "vnd.docker.reference.type": "attestation-manifest",
                            "vnd.docker.reference.digest": child,
                        },
                    }
                )
        digest = self.registry.put(
            self.repository, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        )
        for child in children:  # pushed just before the index
            self.versions.append(Version(child, [], created_at - timedelta(seconds=1), "child", digest))
        self.versions.append(Version(digest, list(tags), created_at, "index"))
        return digest, children

    def signature(self, subject: str, created_at: datetime) -> str:
        digest = self.registry.put(self.repository, self._image_doc(f"sig-{subject}", layer_size=20))
        self.versions.append(
            Version(digest, [f"sha256-{subject.split(':')[1]}.sig"], created_at, "signature", subject)
        )
        return digest

    def referrer(self, subject: str, created_at: datetime) -> str:
        digest = self.registry.put(
            self.repository, self._image_doc(f"ref-{subject}", layer_size=30, subject=subject)
        )
        self.versions.append(Version(digest, [], created_at, "referrer", subject))
        return digest

    def leftover(self, created_at: datetime) -> str:
        digest = self.registry.put(
            self.repository, self._image_doc(f"left{len(self.versions)}", layer_size=10)
        )
        self.versions.append(Version(digest, [], created_at, "leftover"))
        return digest

    def publish(self, add: Callable[[str, list[str], str], int]) -> dict[str, int]:
        """Register every version, oldest first, with ``add(digest, tags, created_at_iso)``.

        Returns digest → version id."""
        ids = {}
        for version in sorted(self.versions, key=lambda v: v.created_at):
            ids[version.digest] = add(version.digest, version.tags, iso(version.created_at))
        return ids


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
