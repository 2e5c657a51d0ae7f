"""OCI/Docker manifests: parsing (pure) and fetching from a registry (distribution API v2).

A multi-arch image is an *index* (OCI image index or Docker manifest list) whose ``manifests``
are the platform images — and, with BuildKit, attestation manifests. On GHCR every one of them
is a separate package version; most are untagged. Signatures and attestations point at the image
they belong to, either through an OCI 1.1 ``subject`` or through a cosign-style tag
``sha256-<hex>.sig|.att|.sbom``. The planner needs those edges to never break a kept image.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from devops_agent.core.errors import ConfigError, PlatformError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})

#: cosign's tag scheme (and the OCI referrers tag-schema fallback without a suffix).
SIGNATURE_TAG = re.compile(r"^sha256-([0-9a-f]{64})(?:\.(sig|att|sbom))?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_RETRYABLE = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Manifest:
    """What the planner needs from one manifest."""

    digest: str  # sha256:<hex>
    media_type: str
    size: int  # bytes of the manifest itself
    children: tuple[str, ...] = ()  # an index: the digests it lists
    subject: str | None = None  # OCI 1.1 referrer: the manifest it is about
    blobs: tuple[tuple[str, int], ...] = ()  # an image: (digest, size) of config + layers

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or bool(self.children)


def normalize_digest(value: str) -> str:
    """``<hex>`` or ``sha256:<hex>`` (any case) → ``sha256:<hex>``; other strings unchanged."""
    text = value.strip().lower()
    if re.fullmatch(r"[0-9a-f]{64}", text):
        return f"sha256:{text}"
    return text


def signature_subject(tags: Iterable[str]) -> str | None:
    """The image a cosign-style signature/attestation/SBOM tag belongs to (all tags must be such)."""
    subject = None
    for tag in tags:
        match = SIGNATURE_TAG.match(tag)
        if match is None:
            return None
        subject = f"sha256:{match.group(1)}"
    return subject


def parse_manifest(raw: bytes, *, digest: str | None = None, media_type: str | None = None) -> Manifest:
    """Parse a manifest document (``digest`` defaults to the sha256 of ``raw``)."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise PlatformError(f"manifest {digest or ''} is not JSON: {exc}", "check the registry") from None
    if not isinstance(doc, dict):
        raise PlatformError(f"manifest {digest or ''} is not a JSON object", "check the registry")
    kind = str(doc.get("mediaType") or media_type or "")
    children: tuple[str, ...] = ()
    if isinstance(doc.get("manifests"), list):
        children = tuple(
            normalize_digest(str(m["digest"]))
            for m in doc["manifests"]
            if isinstance(m, dict) and "digest" in m
        )
        kind = kind or OCI_INDEX
    blobs: list[tuple[str, int]] = []
    for entry in [doc.get("config"), *(doc.get("layers") or [])]:
        if isinstance(entry, dict) and "digest" in entry:
            blobs.append((normalize_digest(str(entry["digest"])), int(entry.get("size", 0))))
    subject = doc.get("subject")
    return Manifest(
        digest=normalize_digest(digest) if digest else "sha256:" + hashlib.sha256(raw).hexdigest(),
        media_type=kind or OCI_MANIFEST,
        size=len(raw),
        children=children,
        subject=normalize_digest(str(subject["digest"]))
        if isinstance(subject, dict) and "digest" in subject
        else None,
        blobs=tuple(blobs),
    )


# ------------------------------------------------------------------------------------------------
# Fetching
# ------------------------------------------------------------------------------------------------


class RegistryClient:
    """Reads manifests by digest from an OCI distribution registry (ghcr.io, a local registry).

    Anonymous first; on ``401`` with a ``Bearer`` challenge it fetches a pull token from the
    realm (basic auth with ``username``/``password`` when given — for GHCR any username and a
    token with ``read:packages``). ``requests`` counts every HTTP request sent.
    """

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        workers: int = 4,
        attempts: int = 4,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if "://" not in base_url:
            base_url = f"https://{base_url}"
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError(
                f"registry URL {base_url!r} is not http(s)",
                "use a host (ghcr.io) or an http(s) URL such as http://127.0.0.1:5000",
                field="packages[].registry",
            )
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self.timeout = timeout
        self.workers = max(1, workers)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._sleep = sleep
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self.requests = 0

    def _open(self, request: urllib.request.Request) -> tuple[int, Mapping[str, str], bytes]:
        with self._lock:
            self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                return int(response.status), dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as err:
            body = err.read() if err.fp is not None else b""
            return int(err.code), dict(err.headers.items()) if err.headers else {}, body
        except (urllib.error.URLError, OSError) as exc:
            raise PlatformError(
                f"registry {self.base_url} unreachable: {exc}",
                "check the package's `registry` in the cleanup policy and the network",
            ) from None

    def _token(self, challenge: str, repository: str) -> str:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.get("realm")
        if not realm:
            raise PlatformError(
                f"registry {self.base_url} sent an unusable challenge", "check the registry URL"
            )
        query = {"scope": params.get("scope") or f"repository:{repository}:pull"}
        if "service" in params:
            query["service"] = params["service"]
        if not realm.startswith(("https://", "http://")):
            raise PlatformError(
                f"registry {self.base_url} sent a non-HTTP token realm", "check the registry URL"
            )
        request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(query)}")  # noqa: S310 - http(s) checked
        if self._username is not None and self._password is not None:
            basic = base64.b64encode(f"{self._username}:{self._password}".encode()).decode()
            request.add_header("Authorization", f"Basic {basic}")
        status, _, body = self._open(request)
        if status != 200:
            raise PlatformError(
                f"registry {self.base_url} refused a pull token for {repository} (HTTP {status})",
                "give the token read:packages (GITHUB_TOKEN needs `packages: read`)",
            )
        data = json.loads(body)
        return str(data.get("token") or data.get("access_token") or "")

    def get_manifest(self, repository: str, digest: str) -> Manifest | None:
        """The manifest ``digest`` of ``repository``; None when the registry does not have it.

        ``429`` and ``5xx`` answers are retried (``retry-after`` honoured, at most 30 s a wait,
        ``attempts`` in all); any other failure raises, and the planner then leaves the package
        alone."""
        url = f"{self.base_url}/v2/{repository}/manifests/{digest}"
        authenticated = False
        attempt = 0
        while True:
            attempt += 1
            request = urllib.request.Request(url, headers={"Accept": ACCEPT})  # noqa: S310 - scheme checked in __init__
            token = self._tokens.get(repository)
            if token:
                request.add_header("Authorization", f"Bearer {token}")
            status, headers, body = self._open(request)
            lower = {k.lower(): v for k, v in headers.items()}
            challenge = lower.get("www-authenticate", "")
            if status == 401 and not authenticated and challenge.lower().startswith("bearer"):
                self._tokens[repository] = self._token(challenge, repository)
                authenticated = True
                continue
            if status in _RETRYABLE and attempt < self.attempts:
                retry_after = lower.get("retry-after", "")
                wait = float(retry_after) if retry_after.isdigit() else self.backoff * 2 ** (attempt - 1)
                self._sleep(min(wait, 30.0))
                continue
            if status == 404:
                return None
            if status != 200:
                raise PlatformError(
                    f"registry {self.base_url}: GET manifest {repository}@{digest} answered HTTP {status}",
                    "check registry credentials (read:packages) and the image path",
                )
            actual = "sha256:" + hashlib.sha256(body).hexdigest()
            if _DIGEST.match(digest) and actual != digest:
                raise PlatformError(
                    f"registry {self.base_url} returned a manifest whose digest {actual} is not {digest}",
                    "the registry is misbehaving; nothing was deleted",
                )
            return parse_manifest(body, digest=digest, media_type=lower.get("content-type"))

    def get_manifests(self, repository: str, digests: Iterable[str]) -> dict[str, Manifest | None]:
        """Several manifests, fetched by a few threads (reads only)."""
        wanted = sorted(set(digests))
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            results = list(pool.map(lambda d: self.get_manifest(repository, d), wanted))
        return dict(zip(wanted, results, strict=True))


def manifest_json(doc: Mapping[str, Any]) -> bytes:
    """Canonical bytes for a manifest document (tests and fakes use it to compute digests)."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
