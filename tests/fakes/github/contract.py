"""Validate requests and responses against GitHub's official OpenAPI description (trimmed copy).

The copy is ``openapi/api.github.com.trimmed.json``, made by ``regenerate_openapi.py`` from the npm
package ``@octokit/openapi``. Validation uses openapi-core (parameters, request bodies, response
status codes and bodies), so the fake GitHub server cannot drift from the real API contract.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).resolve().parent / "openapi" / "api.github.com.trimmed.json"
HOST_URL = "https://api.github.com"


@dataclass(frozen=True)
class Violation:
    """One place where a request or response broke the OpenAPI contract."""

    direction: str  # "request" | "response"
    method: str
    path: str
    status: int | None
    message: str

    def __str__(self) -> str:
        status = f" -> {self.status}" if self.status is not None else ""
        return f"{self.direction} {self.method} {self.path}{status}: {self.message}"


@cache
def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return spec


def spec_version() -> str:
    return str(load_spec()["info"]["x-trimmed-from"])


def operations() -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation in the trimmed copy."""
    return {
        (method.upper(), path)
        for path, item in load_spec()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }


def _error_text(exc: BaseException) -> str:
    text = str(exc)
    parts = [f"{type(exc).__name__}: {text[:300]}{'...' if len(text) > 300 else ''}"]
    for sub in getattr(exc, "schema_errors", None) or ():
        where = "/".join(str(p) for p in getattr(sub, "absolute_path", ()))
        parts.append(f"  at /{where}: {getattr(sub, 'message', sub)}")
    cause = exc.__cause__
    while cause is not None:
        text = str(cause)
        parts.append(f"  caused by {type(cause).__name__}: {text[:300]}{'...' if len(text) > 300 else ''}")
        for sub in getattr(cause, "schema_errors", None) or ():
            where = "/".join(str(p) for p in getattr(sub, "absolute_path", ()))
            parts.append(f"    at /{where}: {getattr(sub, 'message', sub)}")
        cause = cause.__cause__
    return "\n".join(parts)


class ContractValidator:
    """Thread-safe wrapper of openapi-core's validators over the trimmed GitHub description."""

    def __init__(self) -> None:
        from openapi_core import OpenAPI

        self._openapi = OpenAPI.from_dict(load_spec())
        self._lock = threading.Lock()

    @staticmethod
    def _request(
        method: str,
        path: str,
        pattern: str,
        path_params: dict[str, str],
        query: dict[str, str],
        body: bytes,
        content_type: str,
    ) -> Any:
        from openapi_core.testing import MockRequest

        return MockRequest(
            HOST_URL,
            method,
            path,
            path_pattern=pattern,
            args=query,
            view_args=path_params,
            data=body or None,
            content_type=content_type.split(";", maxsplit=1)[0].strip() or "application/json",
        )

    def check_request(
        self,
        method: str,
        pattern: str,
        path_params: dict[str, str],
        query: dict[str, str],
        body: bytes,
        content_type: str = "application/json",
    ) -> Violation | None:
        path = _expand(pattern, path_params)
        request = self._request(method, path, pattern, path_params, query, body, content_type)
        try:
            with self._lock:
                self._openapi.validate_request(request)
        except Exception as exc:
            return Violation("request", method.upper(), path, None, _error_text(exc))
        return None

    def check_response(
        self,
        method: str,
        pattern: str,
        path_params: dict[str, str],
        query: dict[str, str],
        request_body: bytes,
        status: int,
        body: bytes,
        content_type: str = "application/json",
    ) -> Violation | None:
        from openapi_core.testing import MockResponse

        path = _expand(pattern, path_params)
        request = self._request(method, path, pattern, path_params, query, request_body, "application/json")
        response = MockResponse(body, status_code=status, content_type=content_type)
        try:
            with self._lock:
                self._openapi.validate_response(request, response)
        except Exception as exc:
            return Violation("response", method.upper(), path, status, _error_text(exc))
        return None


_PARAM = re.compile(r"\{([a-z_]+)\}")


def _expand(pattern: str, params: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: params[m.group(1)], pattern)
