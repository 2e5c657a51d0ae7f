"""A stateful fake GitHub REST server on 127.0.0.1 for the operations devops-agent uses.

- Real HTTP (``ThreadingHTTPServer``), token auth, GitHub's pagination (``per_page``/``page`` and
  ``Link`` headers) and rate-limit headers.
- Every request and every response is validated against GitHub's official OpenAPI description
  (trimmed copy, see ``contract.py``); violations are recorded in ``FakeGitHub.violations`` (tests
  assert the list is empty) and an invalid request is answered with 400.
- Fault injection (``FakeGitHub.inject``): 5xx bursts (before or AFTER the operation took effect),
  403 secondary rate limit with ``retry-after``, 429, primary rate limit exhausted, slow responses,
  corrupted response bodies; ``page_size`` forces pages of 1/odd sizes.

Usage::

    with FakeGitHub() as gh:
        platform = GitHubPlatform(repo, token=gh.token, api_url=gh.api_url)
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .contract import ContractValidator, Violation, operations
from .synth import instance

JSON = Any
Handler = Callable[[dict[str, str], dict[str, str], JSON], tuple[int, JSON]]


class HttpError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message": self.message,
            "documentation_url": "https://docs.github.com/rest",
        }
        if self.errors:
            out["errors"] = self.errors
        out["status"] = str(self.status)
        return out


@dataclass
class Fault:
    """One injected fault. ``method``/``path`` (a regex searched in the request path) select
    requests; it fires ``times`` times."""

    kind: str  # status | secondary | too_many | primary | slow | corrupt
    method: str | None = None
    path: str | None = None
    times: int = 1
    status: int = 502
    after: bool = False  # status only: perform the operation, then answer the error
    retry_after: int | None = 60
    delay: float = 0.0
    reset_in: int = 120

    def matches(self, method: str, path: str) -> bool:
        if self.times <= 0:
            return False
        if self.method and self.method.upper() != method:
            return False
        return not (self.path and not re.search(self.path, path))


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    pattern: str
    status: int
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_VALIDATOR: ContractValidator | None = None
_VALIDATOR_LOCK = threading.Lock()


def shared_validator() -> ContractValidator:
    global _VALIDATOR
    with _VALIDATOR_LOCK:
        if _VALIDATOR is None:
            _VALIDATOR = ContractValidator()
        return _VALIDATOR


class FakeGitHub:
    """State + HTTP server. Seed state with the ``add_*`` helpers; inspect ``log``."""

    def __init__(
        self,
        owner: str = "octo-org",
        repo: str = "hello-world",
        *,
        owner_kind: str = "org",
        token: str = "fake-token-0123456789",  # noqa: S107 - a fake
        prefix: str = "",
        clock: Callable[[], float] = time.time,
        validate: bool = True,
    ) -> None:
        self.owner = owner
        self.repo = repo
        self.owner_kind = owner_kind
        self.token = token
        self.prefix = prefix.rstrip("/")
        self.clock = clock
        self.validate = validate
        self.validator = shared_validator() if validate else None
        self.violations: list[Violation] = []
        self.log: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self.page_size: int | None = None  # force at most this many items per page
        self.rate_limit = 5000
        self.rate_remaining = 5000
        self.lock = threading.RLock()
        self._next_id = 1000
        # state
        self.default_branch = "main"
        self.branches: dict[str, dict[str, Any]] = {}
        self.pulls: list[dict[str, Any]] = []
        self.issues: dict[int, dict[str, Any]] = {}
        self.next_issue_number = 1
        self.labels: dict[str, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.deployments: dict[int, dict[str, Any]] = {}
        self.statuses: dict[int, list[dict[str, Any]]] = {}
        self.environments: dict[str, dict[str, Any]] = {}
        self.branch_policies: dict[str, list[dict[str, Any]]] = {}
        self.users: dict[str, int] = {"octocat": 1, "reviewer": 2}
        self.teams: dict[tuple[str, str], int] = {}
        self.runs: dict[int, dict[str, Any]] = {}
        self.workflows: dict[str, int] = {}
        self.jobs: dict[int, list[dict[str, Any]]] = {}
        self.pending: dict[int, list[int]] = {}  # run id -> environment ids waiting
        self.artifacts: dict[int, dict[str, Any]] = {}
        self.caches: dict[int, dict[str, Any]] = {}
        self.packages: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
        self.sarifs: list[dict[str, Any]] = []
        self.attestations: list[dict[str, Any]] = []
        self.add_branch(self.default_branch, protected=True)
        self._routes = self._build_routes()
        self._server: ThreadingHTTPServer | None = None
        self._base_url = ""
        self.received: list[tuple[str, str]] = []  # (method, path) on arrival, before any fault
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeGitHub:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # silence
                return

            def _serve(self) -> None:
                try:
                    fake._handle(self)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        host, port = self._server.server_address[:2]
        self._base_url = f"http://{host!s}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._base_url, "start() the fake first"
        return self._base_url

    @property
    def api_url(self) -> str:
        return f"{self.base_url}{self.prefix}"

    # -- helpers for tests -------------------------------------------------------------------------
    def new_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    def now(self) -> str:
        return _iso(self.clock())

    def inject(self, kind: str, **kwargs: Any) -> Fault:
        fault = Fault(kind, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def requests(self, method: str | None = None, pattern: str | None = None) -> list[LoggedRequest]:
        return [
            r
            for r in self.log
            if (method is None or r.method == method) and (pattern is None or r.pattern == pattern)
        ]

    def user(self, login: str) -> dict[str, Any]:
        uid = self.users.setdefault(login, len(self.users) + 1)
        return instance(
            "simple-user",
            login=login,
            id=uid,
            node_id=f"U_{uid}",
            type="User",
            url=f"https://api.github.invalid/users/{login}",
            html_url=f"https://github.invalid/{login}",
        )

    def add_branch(
        self, name: str, *, sha: str | None = None, protected: bool = False, commit_date: str | None = None
    ) -> None:
        self.branches[name] = {
            "sha": sha or f"{abs(hash(name)) % (1 << 160):040x}",
            "protected": protected,
            "date": commit_date or self.now(),
            "required_checks": ["build"] if protected else [],
        }

    def add_pull(self, head: str, base: str = "main", *, state: str = "open", title: str = "PR") -> int:
        number = self.next_issue_number
        self.next_issue_number += 1
        self.pulls.append({"number": number, "head": head, "base": base, "state": state, "title": title})
        return number

    def add_team(self, org: str, slug: str) -> int:
        tid = self.new_id()
        self.teams[(org, slug)] = tid
        return tid

    def add_run(
        self,
        workflow: str,
        *,
        branch: str = "main",
        conclusion: str | None = "success",
        status: str = "completed",
        event: str = "push",
        sha: str | None = None,
        created_at: str | None = None,
        waiting_on: list[str] = (),  # type: ignore[assignment]
    ) -> int:
        run_id = self.new_id()
        wf_id = self.workflows.setdefault(workflow, 100 + len(self.workflows))
        number = sum(1 for r in self.runs.values() if r["workflow_id"] == wf_id) + 1
        self.runs[run_id] = {
            "id": run_id,
            "workflow_id": wf_id,
            "path": f".github/workflows/{workflow}",
            "head_branch": branch,
            "head_sha": sha or f"{run_id:040x}",
            "event": event,
            "status": "waiting" if waiting_on else status,
            "conclusion": None if waiting_on else conclusion,
            "run_number": number,
            "created_at": created_at or self.now(),
        }
        job_status = "completed" if conclusion is not None else "in_progress"
        self.jobs[run_id] = [
            {"id": self.new_id(), "name": "build", "status": job_status, "conclusion": conclusion},
        ]
        if waiting_on:
            ids = []
            for env in waiting_on:
                if env not in self.environments:
                    self._put_environment(env, {})
                ids.append(self.environments[env]["id"])
            self.pending[run_id] = ids
        return run_id

    def add_artifact(self, name: str, *, size: int = 10, created_at: str | None = None) -> int:
        aid = self.new_id()
        self.artifacts[aid] = {"id": aid, "name": name, "size": size, "created_at": created_at or self.now()}
        return aid

    def add_cache(
        self, key: str, *, ref: str = "refs/heads/main", size: int = 100, at: str | None = None
    ) -> int:
        cid = self.new_id()
        when = at or self.now()
        self.caches[cid] = {
            "id": cid,
            "key": key,
            "ref": ref,
            "size": size,
            "created": when,
            "accessed": when,
        }
        return cid

    def add_package_version(
        self,
        owner_kind: str,
        owner: str,
        package_type: str,
        name: str,
        digest: str,
        tags: list[str] = (),  # type: ignore[assignment]
        created_at: str | None = None,
    ) -> int:
        vid = self.new_id()
        versions = self.packages.setdefault((owner_kind, owner, package_type, name), [])
        versions.insert(
            0, {"id": vid, "name": digest, "tags": list(tags), "created_at": created_at or self.now()}
        )
        return vid

    # -- HTTP handling ---------------------------------------------------------------------------
    def _build_routes(self) -> list[tuple[str, str, re.Pattern[str], Handler]]:
        table: dict[tuple[str, str], Handler] = {
            ("GET", "/repos/{owner}/{repo}"): self.h_repo,
            ("GET", "/repos/{owner}/{repo}/branches"): self.h_branches,
            ("GET", "/repos/{owner}/{repo}/branches/{branch}"): self.h_branch,
            ("GET", "/repos/{owner}/{repo}/branches/{branch}/protection"): self.h_protection,
            ("DELETE", "/repos/{owner}/{repo}/git/refs/{ref}"): self.h_delete_ref,
            ("GET", "/repos/{owner}/{repo}/pulls"): self.h_pulls,
            ("GET", "/repos/{owner}/{repo}/issues"): self.h_list_issues,
            ("POST", "/repos/{owner}/{repo}/issues"): self.h_create_issue,
            ("GET", "/repos/{owner}/{repo}/issues/{issue_number}"): self.h_get_issue,
            ("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}"): self.h_update_issue,
            ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels"): self.h_add_labels,
            ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments"): self.h_list_comments,
            ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments"): self.h_add_comment,
            ("GET", "/repos/{owner}/{repo}/labels"): self.h_list_labels,
            ("POST", "/repos/{owner}/{repo}/labels"): self.h_create_label,
            ("GET", "/repos/{owner}/{repo}/labels/{name}"): self.h_get_label,
            ("GET", "/repos/{owner}/{repo}/deployments"): self.h_list_deployments,
            ("POST", "/repos/{owner}/{repo}/deployments"): self.h_create_deployment,
            ("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}"): self.h_get_deployment,
            ("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"): self.h_list_statuses,
            ("POST", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"): self.h_create_status,
            ("GET", "/repos/{owner}/{repo}/environments"): self.h_list_environments,
            ("GET", "/repos/{owner}/{repo}/environments/{environment_name}"): self.h_get_environment,
            ("PUT", "/repos/{owner}/{repo}/environments/{environment_name}"): self.h_put_environment,
            (
                "GET",
                "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies",
            ): self.h_list_policies,
            (
                "POST",
                "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies",
            ): self.h_create_policy,
            (
                "DELETE",
                "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies/"
                "{branch_policy_id}",
            ): self.h_delete_policy,
            ("GET", "/users/{username}"): self.h_user,
            ("GET", "/orgs/{org}/teams/{team_slug}"): self.h_team,
            ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments"): self.h_pending,
            ("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments"): self.h_review,
            ("GET", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs"): self.h_runs,
            ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}"): self.h_run,
            ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs"): self.h_jobs,
            ("GET", "/repos/{owner}/{repo}/actions/artifacts"): self.h_artifacts,
            ("DELETE", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}"): self.h_delete_artifact,
            ("GET", "/repos/{owner}/{repo}/actions/caches"): self.h_caches,
            ("DELETE", "/repos/{owner}/{repo}/actions/caches/{cache_id}"): self.h_delete_cache,
            ("GET", "/users/{username}/packages/{package_type}/{package_name}/versions"): self.h_versions,
            (
                "DELETE",
                "/users/{username}/packages/{package_type}/{package_name}/versions/{package_version_id}",
            ): self.h_delete_version,
            ("GET", "/orgs/{org}/packages/{package_type}/{package_name}/versions"): self.h_versions,
            (
                "DELETE",
                "/orgs/{org}/packages/{package_type}/{package_name}/versions/{package_version_id}",
            ): self.h_delete_version,
            ("POST", "/repos/{owner}/{repo}/code-scanning/sarifs"): self.h_sarif,
            ("POST", "/repos/{owner}/{repo}/attestations"): self.h_create_attestation,
            ("GET", "/repos/{owner}/{repo}/attestations/{subject_digest}"): self.h_list_attestations,
        }
        routes = []
        for (method, pattern), handler in table.items():
            regex = re.sub(
                r"\{([a-z_]+)\}",
                lambda m: f"(?P<{m.group(1)}>.+)" if m.group(1) == "ref" else f"(?P<{m.group(1)}>[^/]+)",
                re.escape(pattern).replace(r"\{", "{").replace(r"\}", "}"),
            )
            routes.append((method, pattern, re.compile(f"^{regex}$"), handler))
        # longer patterns first so /runs/{id}/jobs wins over /runs/{id}
        routes.sort(key=lambda r: -len(r[1]))
        return routes

    @staticmethod
    def route_table() -> set[tuple[str, str]]:
        """(METHOD, pattern) of every route (tests compare it with the trimmed description)."""
        fake = FakeGitHub.__new__(FakeGitHub)
        return {(m, p) for m, p, _, _ in FakeGitHub._build_routes(fake)}

    def _route(self, method: str, path: str) -> tuple[str, re.Match[str], Handler] | None:
        for route_method, pattern, regex, handler in self._routes:
            match = regex.match(path) if route_method == method else None
            if match:
                return pattern, match, handler
        return None

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def _rate_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(max(self.rate_remaining, 0)),
            "x-ratelimit-used": str(self.rate_limit - max(self.rate_remaining, 0)),
            "x-ratelimit-reset": str(int(self.clock()) + 3600),
            "x-ratelimit-resource": "core",
        }

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        method = http.command
        url = urllib.parse.urlsplit(http.path)
        length = int(http.headers.get("content-length") or 0)
        raw = http.rfile.read(length) if length else b""
        path = url.path
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        with self.lock:
            self.received.append((method, path))
        headers = self._rate_headers()
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                self._send(http, 404, {"message": "Not Found"}, headers)
                return
            path = path[len(self.prefix) :]
        auth = http.headers.get("authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            self._send(http, 401, {"message": "Bad credentials"}, headers)
            return
        found = self._route(method, path)
        if found is None:
            self._send(http, 404, {"message": f"fake GitHub does not model {method} {path}"}, headers)
            return
        pattern, match, handler = found
        params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
        raw_params = match.groupdict()
        with self.lock:
            self.rate_remaining -= 1
        if self.validator is not None:
            violation = self.validator.check_request(
                method, pattern, raw_params, query, raw, http.headers.get("content-type", "application/json")
            )
            if violation is not None:
                self.violations.append(violation)
                self._log(method, path, pattern, 400, query)
                self._send(http, 400, {"message": f"contract violation: {violation.message}"}, headers)
                return
        fault = self._take_fault(method, path)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
            fault = None
        if fault is not None and not (fault.kind == "status" and fault.after) and fault.kind != "corrupt":
            status, body, extra = self._fault_response(fault)
            headers.update(extra)
            self._log(method, path, pattern, status, query)
            self._send(http, status, body, headers)
            return
        try:
            body_in = json.loads(raw) if raw else None
        except ValueError:
            self._send(http, 400, {"message": "Problems parsing JSON"}, headers)
            return
        try:
            with self.lock:
                status, body = handler(params, query, body_in)
        except HttpError as err:
            status, body = err.status, err.body()
        except Exception as exc:  # a bug of the fake: fail loudly in the test
            self.violations.append(Violation("fake", method, path, 500, f"{type(exc).__name__}: {exc}"))
            status, body = 500, {"message": f"fake GitHub bug: {type(exc).__name__}: {exc}"}
        if isinstance(body, _Page):
            headers["link"] = body.link(self.api_url, path, query)
            body = body.payload
        if fault is not None and fault.kind == "status":  # after=True: it happened, but we fail
            status, body, extra = self._fault_response(fault)
            headers.update(extra)
        elif fault is not None and fault.kind == "corrupt" and isinstance(body, (dict, list)):
            body = _corrupt(body)
        encoded = b"" if body is None else json.dumps(body).encode()
        if self.validator is not None and (fault is None or fault.kind == "corrupt"):
            violation = self.validator.check_response(
                method, pattern, raw_params, query, raw, status, encoded
            )
            if violation is not None and (status < 400 or "ResponseNotFound" not in violation.message):
                self.violations.append(violation)
        self._log(method, path, pattern, status, query, body_in)
        self._send(http, status, body, headers)

    def _fault_response(self, fault: Fault) -> tuple[int, Any, dict[str, str]]:
        extra: dict[str, str] = {}
        if fault.kind == "status":
            return fault.status, {"message": "Server Error"}, extra
        if fault.kind == "secondary":
            if fault.retry_after is not None:
                extra["retry-after"] = str(fault.retry_after)
            return (
                403,
                {
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                    "before you try again.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                },
                extra,
            )
        if fault.kind == "too_many":
            if fault.retry_after is not None:
                extra["retry-after"] = str(fault.retry_after)
            return 429, {"message": "Too Many Requests"}, extra
        if fault.kind == "primary":
            extra["x-ratelimit-remaining"] = "0"
            extra["x-ratelimit-used"] = str(self.rate_limit)
            extra["x-ratelimit-reset"] = str(int(self.clock()) + fault.reset_in)
            return (
                403,
                {
                    "message": "API rate limit exceeded for installation ID 1.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                },
                extra,
            )
        raise ValueError(f"unknown fault kind {fault.kind}")

    def _log(
        self, method: str, path: str, pattern: str, status: int, query: dict[str, str], body: Any = None
    ) -> None:
        with self.lock:
            self.log.append(LoggedRequest(method, path, pattern, status, query, body))

    @staticmethod
    def _send(http: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str]) -> None:
        data = b"" if body is None or status == 204 else json.dumps(body).encode()
        http.send_response(status)
        for key, value in headers.items():
            http.send_header(key, value)
        if data:
            http.send_header("content-type", "application/json; charset=utf-8")
        http.send_header("content-length", str(len(data)))
        http.end_headers()
        if data:
            http.wfile.write(data)

    # -- pagination --------------------------------------------------------------------------------
    def page(self, items: list[Any], query: dict[str, str], wrap: str | None = None) -> _Page:
        per_page = int(query.get("per_page", "30"))
        per_page = max(1, min(per_page, 100))
        if self.page_size is not None:
            per_page = min(per_page, self.page_size)
        page = max(1, int(query.get("page", "1")))
        start = (page - 1) * per_page
        chunk = items[start : start + per_page]
        last = max(1, -(-len(items) // per_page))
        payload: Any = chunk if wrap is None else {"total_count": len(items), wrap: chunk}
        return _Page(payload, page, last, per_page)

    # -- urls and objects --------------------------------------------------------------------------
    def repo_url(self, suffix: str = "") -> str:
        return f"{self.api_url}/repos/{self.owner}/{self.repo}{suffix}"

    def html(self, suffix: str = "") -> str:
        return f"https://github.invalid/{self.owner}/{self.repo}{suffix}"

    def _check_repo(self, p: dict[str, str]) -> None:
        if (p.get("owner"), p.get("repo")) != (self.owner, self.repo):
            raise HttpError(404, "Not Found")

    def label_json(self, name: str) -> dict[str, Any]:
        label = self.labels[name]
        return instance(
            "label",
            id=label["id"],
            node_id=f"LA_{label['id']}",
            url=self.repo_url(f"/labels/{urllib.parse.quote(name)}"),
            name=name,
            description=label["description"] or None,
            color=label["color"],
            default=False,
        )

    def _ensure_label(self, name: str) -> None:
        if name not in self.labels:
            self.labels[name] = {"id": self.new_id(), "color": "ededed", "description": ""}

    def issue_json(self, number: int) -> dict[str, Any]:
        i = self.issues[number]
        return instance(
            "issue",
            id=i["id"],
            node_id=f"I_{i['id']}",
            url=self.repo_url(f"/issues/{number}"),
            repository_url=self.repo_url(),
            labels_url=self.repo_url(f"/issues/{number}/labels{{/name}}"),
            comments_url=self.repo_url(f"/issues/{number}/comments"),
            events_url=self.repo_url(f"/issues/{number}/events"),
            html_url=self.html(f"/issues/{number}"),
            number=number,
            state=i["state"],
            title=i["title"],
            body=i["body"],
            user=self.user("octocat"),
            labels=[self.label_json(n) for n in i["labels"]],
            assignees=[self.user(a) for a in i["assignees"]],
            comments=len(self.comments.get(number, [])),
            created_at=i["created_at"],
            updated_at=i["updated_at"],
            closed_at=i["closed_at"],
            author_association="OWNER",
            # GitHub sends null for open issues; the description's enum lacks null, so omit it
            **({"state_reason": i["state_reason"]} if i["state_reason"] else {}),
        )

    def comment_json(self, number: int, c: dict[str, Any]) -> dict[str, Any]:
        return instance(
            "issue-comment",
            id=c["id"],
            node_id=f"IC_{c['id']}",
            url=self.repo_url(f"/issues/comments/{c['id']}"),
            html_url=self.html(f"/issues/{number}#issuecomment-{c['id']}"),
            issue_url=self.repo_url(f"/issues/{number}"),
            body=c["body"],
            user=self.user("octocat"),
            created_at=c["created_at"],
            updated_at=c["created_at"],
            author_association="OWNER",
        )

    def deployment_json(self, d: dict[str, Any]) -> dict[str, Any]:
        return instance(
            "deployment",
            id=d["id"],
            node_id=f"DE_{d['id']}",
            url=self.repo_url(f"/deployments/{d['id']}"),
            sha=d["sha"],
            ref=d["ref"],
            task=d["task"],
            payload=d["payload"],
            original_environment=d["environment"],
            environment=d["environment"],
            description=d["description"],
            creator=self.user("octocat"),
            created_at=d["created_at"],
            updated_at=d["updated_at"],
            statuses_url=self.repo_url(f"/deployments/{d['id']}/statuses"),
            repository_url=self.repo_url(),
            transient_environment=d["transient"],
            production_environment=d["production"],
        )

    def status_json(self, dep_id: int, s: dict[str, Any]) -> dict[str, Any]:
        return instance(
            "deployment-status",
            id=s["id"],
            node_id=f"DES_{s['id']}",
            url=self.repo_url(f"/deployments/{dep_id}/statuses/{s['id']}"),
            state=s["state"],
            creator=self.user("octocat"),
            description=s["description"],
            environment=s["environment"],
            target_url=s["log_url"],
            log_url=s["log_url"],
            environment_url=s["environment_url"],
            created_at=s["created_at"],
            updated_at=s["created_at"],
            deployment_url=self.repo_url(f"/deployments/{dep_id}"),
            repository_url=self.repo_url(),
        )

    def reviewer_json(self, r: dict[str, Any]) -> dict[str, Any]:
        if r["type"] == "User":
            login = next((k for k, v in self.users.items() if v == r["id"]), f"user{r['id']}")
            return {"type": "User", "reviewer": self.user(login)}
        org, slug = next(((o, s) for (o, s), v in self.teams.items() if v == r["id"]), ("org", "team"))
        team = instance(
            "team",
            id=r["id"],
            node_id=f"T_{r['id']}",
            url=f"{self.api_url}/orgs/{org}/teams/{slug}",
            html_url=f"https://github.invalid/orgs/{org}/teams/{slug}",
            name=slug,
            slug=slug,
            description=None,
            permission="pull",
            members_url="",
            repositories_url=f"{self.api_url}/orgs/{org}/teams/{slug}/repos",
            parent=None,
            type="organization",
        )
        return {"type": "Team", "reviewer": team}

    def environment_json(self, name: str) -> dict[str, Any]:
        e = self.environments[name]
        rules: list[dict[str, Any]] = []
        if e["wait_timer"]:
            rules.append(
                {
                    "id": e["id"] + 1,
                    "node_id": f"GA_{e['id']}_w",
                    "type": "wait_timer",
                    "wait_timer": e["wait_timer"],
                }
            )
        if e["reviewers"]:
            rules.append(
                {
                    "id": e["id"] + 2,
                    "node_id": f"GA_{e['id']}_r",
                    "type": "required_reviewers",
                    "prevent_self_review": e["prevent_self_review"],
                    "reviewers": [self.reviewer_json(r) for r in e["reviewers"]],
                }
            )
        if e["branch_policy"] is not None:
            rules.append({"id": e["id"] + 3, "node_id": f"GA_{e['id']}_b", "type": "branch_policy"})
        return instance(
            "environment",
            id=e["id"],
            node_id=f"EN_{e['id']}",
            name=name,
            url=self.repo_url(f"/environments/{urllib.parse.quote(name)}"),
            html_url=self.html(f"/deployments/activity_log?environments_filter={urllib.parse.quote(name)}"),
            created_at=e["created_at"],
            updated_at=e["updated_at"],
            protection_rules=rules,
            deployment_branch_policy=e["branch_policy"],
        )

    def run_json(self, r: dict[str, Any]) -> dict[str, Any]:
        rid = r["id"]
        return instance(
            "workflow-run",
            id=rid,
            name=r["path"].rsplit("/", 1)[-1],
            node_id=f"WFR_{rid}",
            head_branch=r["head_branch"],
            head_sha=r["head_sha"],
            path=r["path"],
            run_number=r["run_number"],
            run_attempt=1,
            display_title="run",
            event=r["event"],
            status=r["status"],
            conclusion=r["conclusion"],
            workflow_id=r["workflow_id"],
            url=self.repo_url(f"/actions/runs/{rid}"),
            html_url=self.html(f"/actions/runs/{rid}"),
            created_at=r["created_at"],
            updated_at=r["created_at"],
            jobs_url=self.repo_url(f"/actions/runs/{rid}/jobs"),
            logs_url=self.repo_url(f"/actions/runs/{rid}/logs"),
            check_suite_url="",
            cancel_url="",
            rerun_url="",
            artifacts_url=self.repo_url(f"/actions/runs/{rid}/artifacts"),
            workflow_url=self.repo_url(f"/actions/workflows/{r['workflow_id']}"),
            repository=self._minimal_repo(),
            head_repository=self._minimal_repo(),
        )

    def _repository(self) -> dict[str, Any]:
        return instance(
            "repository",
            id=1,
            node_id="R_1",
            name=self.repo,
            full_name=f"{self.owner}/{self.repo}",
            owner=self.user(self.owner),
            html_url=self.html(),
            url=self.repo_url(),
            default_branch=self.default_branch,
        )

    def _minimal_repo(self) -> dict[str, Any]:
        return instance(
            "minimal-repository",
            id=1,
            node_id="R_1",
            name=self.repo,
            full_name=f"{self.owner}/{self.repo}",
            owner=self.user(self.owner),
            html_url=self.html(),
            url=self.repo_url(),
        )

    # -- handlers: repository and branches ---------------------------------------------------------
    def h_repo(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        owner = self.user(self.owner)
        owner["type"] = "Organization" if self.owner_kind == "org" else "User"
        return 200, instance(
            "full-repository",
            id=1,
            node_id="R_1",
            name=self.repo,
            full_name=f"{self.owner}/{self.repo}",
            owner=owner,
            private=False,
            html_url=self.html(),
            url=self.repo_url(),
            default_branch=self.default_branch,
            visibility="public",
            created_at=self.now(),
            updated_at=self.now(),
            pushed_at=self.now(),
        )

    def _branch_commit(self, name: str) -> dict[str, Any]:
        br = self.branches[name]
        return {"sha": br["sha"], "url": self.repo_url(f"/commits/{br['sha']}")}

    def h_branches(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        items = [
            instance(
                "short-branch", name=n, commit=self._branch_commit(n), protected=self.branches[n]["protected"]
            )
            for n in sorted(self.branches)
        ]
        return 200, self.page(items, q)

    def h_branch(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        name = p["branch"]
        if name not in self.branches:
            raise HttpError(404, "Branch not found")
        br = self.branches[name]
        person = {"name": "octocat", "email": "octocat@github.invalid", "date": br["date"]}
        commit = instance(
            "commit",
            url=self.repo_url(f"/commits/{br['sha']}"),
            sha=br["sha"],
            node_id=f"C_{br['sha'][:8]}",
            html_url=self.html(f"/commit/{br['sha']}"),
            comments_url="",
            commit={
                "url": "",
                "author": person,
                "committer": person,
                "message": "commit",
                "comment_count": 0,
                "tree": {"sha": br["sha"], "url": ""},
            },
            author=self.user("octocat"),
            committer=self.user("octocat"),
            parents=[],
        )
        return 200, instance(
            "branch-with-protection",
            name=name,
            commit=commit,
            _links={"html": self.html(f"/tree/{name}"), "self": self.repo_url(f"/branches/{name}")},
            protected=br["protected"],
            protection={"enabled": br["protected"]},
            protection_url=self.repo_url(f"/branches/{name}/protection"),
        )

    def h_protection(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        br = self.branches.get(p["branch"])
        if br is None or not br["protected"]:
            raise HttpError(404, "Branch not protected")
        return 200, {
            "url": self.repo_url(f"/branches/{p['branch']}/protection"),
            "required_status_checks": {"strict": True, "contexts": br["required_checks"], "checks": []},
            "required_pull_request_reviews": {
                "url": "",
                "dismiss_stale_reviews": False,
                "require_code_owner_reviews": False,
                "required_approving_review_count": 1,
            },
            "enforce_admins": {"url": "", "enabled": False},
            "allow_force_pushes": {"enabled": False},
            "allow_deletions": {"enabled": False},
        }

    def h_delete_ref(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        ref = p["ref"]
        if not ref.startswith("heads/") or ref[len("heads/") :] not in self.branches:
            raise HttpError(422, "Reference does not exist")
        name = ref[len("heads/") :]
        if name == self.default_branch:
            raise HttpError(422, "Cannot delete the default branch")
        del self.branches[name]
        return 204, None

    def h_pulls(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        state = q.get("state", "open")
        head = q.get("head")
        items = []
        for pr in sorted(self.pulls, key=lambda x: -x["number"]):
            if state != "all" and pr["state"] != state:
                continue
            if head and head != f"{self.owner}:{pr['head']}":
                continue
            if q.get("base") and q["base"] != pr["base"]:
                continue
            sha = self.branches.get(pr["head"], {}).get("sha", "0" * 40)
            ref = {
                "label": f"{self.owner}:{pr['head']}",
                "ref": pr["head"],
                "sha": sha,
                "user": self.user(self.owner),
                "repo": self._repository(),
            }
            base = dict(ref, ref=pr["base"], label=f"{self.owner}:{pr['base']}")
            n = pr["number"]
            link = {"href": self.repo_url(f"/pulls/{n}")}
            items.append(
                instance(
                    "pull-request-simple",
                    id=n,
                    node_id=f"PR_{n}",
                    number=n,
                    state=pr["state"],
                    title=pr["title"],
                    user=self.user("octocat"),
                    head=ref,
                    base=base,
                    html_url=self.html(f"/pull/{n}"),
                    url=self.repo_url(f"/pulls/{n}"),
                    _links=dict.fromkeys(
                        (
                            "comments",
                            "commits",
                            "statuses",
                            "html",
                            "issue",
                            "review_comments",
                            "review_comment",
                            "self",
                        ),
                        link,
                    ),
                    author_association="OWNER",
                    created_at=self.now(),
                    updated_at=self.now(),
                )
            )
        return 200, self.page(items, q)

    # -- handlers: issues, labels, comments -------------------------------------------------------
    def h_list_issues(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        state = q.get("state", "open")
        wanted = [x for x in q.get("labels", "").split(",") if x]
        numbers = sorted(self.issues, reverse=q.get("direction", "desc") == "desc")
        items = [
            self.issue_json(n)
            for n in numbers
            if (state == "all" or self.issues[n]["state"] == state)
            and all(w in self.issues[n]["labels"] for w in wanted)
            and self.issues[n]["updated_at"] >= q.get("since", "")
        ]
        return 200, self.page(items, q)

    def h_create_issue(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        number = self.next_issue_number
        self.next_issue_number += 1
        labels = [x if isinstance(x, str) else x["name"] for x in b.get("labels", [])]
        for name in labels:
            self._ensure_label(name)
        self.issues[number] = {
            "id": self.new_id(),
            "title": str(b["title"]),
            "body": b.get("body"),
            "state": "open",
            "state_reason": None,
            "labels": labels,
            "assignees": list(b.get("assignees", [])),
            "created_at": self.now(),
            "updated_at": self.now(),
            "closed_at": None,
        }
        return 201, self.issue_json(number)

    def _issue(self, p: dict[str, str]) -> int:
        self._check_repo(p)
        number = int(p["issue_number"])
        if number not in self.issues:
            raise HttpError(404, "Not Found")
        return number

    def h_get_issue(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        return 200, self.issue_json(self._issue(p))

    def h_update_issue(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        number = self._issue(p)
        issue = self.issues[number]
        b = b or {}
        for key in ("title", "body"):
            if key in b:
                issue[key] = b[key]
        if "labels" in b:
            issue["labels"] = [x if isinstance(x, str) else x["name"] for x in b["labels"]]
            for name in issue["labels"]:
                self._ensure_label(name)
        if "state" in b and b["state"] != issue["state"]:
            issue["state"] = b["state"]
            issue["closed_at"] = self.now() if b["state"] == "closed" else None
            issue["state_reason"] = (
                (b.get("state_reason") or "completed") if b["state"] == "closed" else "reopened"
            )
        issue["updated_at"] = self.now()
        return 200, self.issue_json(number)

    def h_add_labels(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        number = self._issue(p)
        names = b["labels"] if isinstance(b, dict) else b
        for item in names:
            name = item if isinstance(item, str) else item["name"]
            self._ensure_label(name)
            if name not in self.issues[number]["labels"]:
                self.issues[number]["labels"].append(name)
        return 200, [self.label_json(n) for n in self.issues[number]["labels"]]

    def h_list_comments(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        number = self._issue(p)
        since = q.get("since", "")
        items = [
            self.comment_json(number, c) for c in self.comments.get(number, []) if c["created_at"] >= since
        ]
        return 200, self.page(items, q)

    def h_add_comment(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        number = self._issue(p)
        comment = {"id": self.new_id(), "body": b["body"], "created_at": self.now()}
        self.comments.setdefault(number, []).append(comment)
        return 201, self.comment_json(number, comment)

    def h_list_labels(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        return 200, self.page([self.label_json(n) for n in sorted(self.labels)], q)

    def h_create_label(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        name = b["name"]
        if name in self.labels:
            raise HttpError(
                422, "Validation Failed", [{"resource": "Label", "code": "already_exists", "field": "name"}]
            )
        self.labels[name] = {
            "id": self.new_id(),
            "color": b.get("color", "ededed"),
            "description": b.get("description", ""),
        }
        return 201, self.label_json(name)

    def h_get_label(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        if p["name"] not in self.labels:
            raise HttpError(404, "Not Found")
        return 200, self.label_json(p["name"])

    # -- handlers: deployments ---------------------------------------------------------------------
    def h_list_deployments(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        items = [
            self.deployment_json(d)
            for d in sorted(self.deployments.values(), key=lambda d: -d["id"])
            if all(q.get(k) in (None, d[k]) for k in ("sha", "ref", "task", "environment"))
        ]
        return 200, self.page(items, q)

    def h_create_deployment(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        ref = b["ref"]
        sha = self.branches[ref]["sha"] if ref in self.branches else ref
        if b.get("required_contexts") is None and self.branches.get(ref, {}).get("required_checks"):
            raise HttpError(409, "Conflict: Commit status checks failed for " + ref)
        env = b.get("environment", "production")
        dep = {
            "id": self.new_id(),
            "sha": sha,
            "ref": ref,
            "task": b.get("task", "deploy"),
            "payload": b.get("payload") or {},
            "environment": env,
            "description": b.get("description"),
            "created_at": self.now(),
            "updated_at": self.now(),
            "transient": bool(b.get("transient_environment", False)),
            "production": bool(b.get("production_environment", env == "production")),
        }
        self.deployments[dep["id"]] = dep
        self.statuses[dep["id"]] = []
        return 201, self.deployment_json(dep)

    def _deployment(self, p: dict[str, str]) -> dict[str, Any]:
        self._check_repo(p)
        dep = self.deployments.get(int(p["deployment_id"]))
        if dep is None:
            raise HttpError(404, "Not Found")
        return dep

    def h_get_deployment(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        return 200, self.deployment_json(self._deployment(p))

    def h_list_statuses(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        dep = self._deployment(p)
        items = [self.status_json(dep["id"], s) for s in reversed(self.statuses[dep["id"]])]
        return 200, self.page(items, q)

    def h_create_status(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        dep = self._deployment(p)
        status = {
            "id": self.new_id(),
            "state": b["state"],
            "description": b.get("description", ""),
            "environment": b.get("environment", dep["environment"]),
            "log_url": b.get("log_url", b.get("target_url", "")),
            "environment_url": b.get("environment_url", ""),
            "created_at": self.now(),
        }
        self.statuses[dep["id"]].append(status)
        dep["updated_at"] = self.now()
        if b["state"] == "success" and b.get("auto_inactive", True):
            for other in self.deployments.values():
                if other["id"] != dep["id"] and other["environment"] == dep["environment"]:
                    hist = self.statuses.get(other["id"], [])
                    if hist and hist[-1]["state"] == "success":
                        hist.append(dict(hist[-1], id=self.new_id(), state="inactive", created_at=self.now()))
        return 201, self.status_json(dep["id"], status)

    # -- handlers: environments ----------------------------------------------------------------------
    def _put_environment(self, name: str, b: dict[str, Any]) -> None:
        env = self.environments.get(name)
        if env is None:
            env = self.environments[name] = {"id": self.new_id() * 10, "created_at": self.now()}
            self.branch_policies[name] = []
        # PUT resets every field not sent, like GitHub
        env["wait_timer"] = b.get("wait_timer") or 0
        env["prevent_self_review"] = bool(b.get("prevent_self_review") or False)
        env["reviewers"] = [{"type": r["type"], "id": r["id"]} for r in b.get("reviewers") or []]
        env["branch_policy"] = b.get("deployment_branch_policy")
        env["updated_at"] = self.now()
        if not (env["branch_policy"] or {}).get("custom_branch_policies"):
            self.branch_policies[name] = []

    def h_list_environments(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        return 200, self.page(
            [self.environment_json(n) for n in sorted(self.environments)], q, "environments"
        )

    def h_get_environment(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        if p["environment_name"] not in self.environments:
            raise HttpError(404, "Not Found")
        return 200, self.environment_json(p["environment_name"])

    def h_put_environment(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        b = b or {}
        policy = b.get("deployment_branch_policy")
        if policy and policy["protected_branches"] == policy["custom_branch_policies"]:
            raise HttpError(422, "Validation Failed")
        for r in b.get("reviewers") or []:
            known = self.users.values() if r["type"] == "User" else self.teams.values()
            if r["id"] not in known:
                raise HttpError(422, f"Validation Failed: reviewer {r['id']} not found")
        self._put_environment(p["environment_name"], b)
        return 200, self.environment_json(p["environment_name"])

    def _policy_json(self, pol: dict[str, Any]) -> dict[str, Any]:
        return {"id": pol["id"], "node_id": f"DBP_{pol['id']}", "name": pol["name"], "type": pol["type"]}

    def _env(self, p: dict[str, str]) -> str:
        self._check_repo(p)
        name = p["environment_name"]
        if name not in self.environments:
            raise HttpError(404, "Not Found")
        return name

    def h_list_policies(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        name = self._env(p)
        items = [self._policy_json(x) for x in self.branch_policies[name]]
        return 200, self.page(items, q, "branch_policies")

    def h_create_policy(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        name = self._env(p)
        if not (self.environments[name]["branch_policy"] or {}).get("custom_branch_policies"):
            raise HttpError(404, "custom_branch_policies is false for this environment")
        kind = b.get("type", "branch")
        if any(x["name"] == b["name"] and x["type"] == kind for x in self.branch_policies[name]):
            raise HttpError(303, "See Other")
        pol = {"id": self.new_id(), "name": b["name"], "type": kind}
        self.branch_policies[name].append(pol)
        return 200, self._policy_json(pol)

    def h_delete_policy(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        name = self._env(p)
        pid = int(p["branch_policy_id"])
        before = len(self.branch_policies[name])
        self.branch_policies[name] = [x for x in self.branch_policies[name] if x["id"] != pid]
        if len(self.branch_policies[name]) == before:
            raise HttpError(404, "Not Found")
        return 204, None

    def h_user(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        login = p["username"]
        if login not in self.users:
            raise HttpError(404, "Not Found")
        base = self.user(login)
        return 200, instance(
            "public-user", **base, user_view_type="public", created_at=self.now(), updated_at=self.now()
        )

    def h_team(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        key = (p["org"], p["team_slug"])
        if key not in self.teams:
            raise HttpError(404, "Not Found")
        tid = self.teams[key]
        org = instance(
            "team-organization",
            login=p["org"],
            id=7,
            node_id="O_7",
            url="",
            repos_url="",
            events_url="",
            hooks_url="",
            issues_url="",
            members_url="",
            public_members_url="",
            avatar_url="",
            description=None,
            html_url="https://github.invalid/",
            created_at=self.now(),
            updated_at=self.now(),
            type="Organization",
        )
        return 200, instance(
            "team-full",
            id=tid,
            node_id=f"T_{tid}",
            name=p["team_slug"],
            slug=p["team_slug"],
            permission="pull",
            type="organization",
            organization=org,
            created_at=self.now(),
            updated_at=self.now(),
        )

    # -- handlers: pending deployments and runs ---------------------------------------------------
    def _run(self, p: dict[str, str]) -> dict[str, Any]:
        self._check_repo(p)
        run = self.runs.get(int(p["run_id"]))
        if run is None:
            raise HttpError(404, "Not Found")
        return run

    def h_pending(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        run = self._run(p)
        items = []
        for env_id in self.pending.get(run["id"], []):
            name = next(n for n, e in self.environments.items() if e["id"] == env_id)
            env = self.environments[name]
            items.append(
                {
                    "environment": {
                        "id": env_id,
                        "node_id": f"EN_{env_id}",
                        "name": name,
                        "url": self.repo_url(f"/environments/{name}"),
                        "html_url": self.html(f"/deployments/activity_log?environments_filter={name}"),
                    },
                    "wait_timer": env["wait_timer"],
                    "wait_timer_started_at": run["created_at"],
                    "current_user_can_approve": True,
                    "reviewers": [self.reviewer_json(r) for r in env["reviewers"]],
                }
            )
        return 200, items

    def h_review(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        run = self._run(p)
        waiting = self.pending.get(run["id"], [])
        ids = list(b["environment_ids"])
        if not ids or any(i not in waiting for i in ids):
            raise HttpError(422, "No pending deployment requests to approve or reject")
        out = []
        for env_id in ids:
            waiting.remove(env_id)
            name = next(n for n, e in self.environments.items() if e["id"] == env_id)
            if b["state"] == "approved":
                dep = {
                    "id": self.new_id(),
                    "sha": run["head_sha"],
                    "ref": run["head_branch"],
                    "task": "deploy",
                    "payload": {},
                    "environment": name,
                    "description": None,
                    "created_at": self.now(),
                    "updated_at": self.now(),
                    "transient": False,
                    "production": name == "production",
                }
                self.deployments[dep["id"]] = dep
                self.statuses[dep["id"]] = []
                out.append(self.deployment_json(dep))
        if not waiting:
            run["status"] = "in_progress" if b["state"] == "approved" else "completed"
            run["conclusion"] = None if b["state"] == "approved" else "failure"
        return 200, out

    def h_runs(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        wf = p["workflow_id"]
        wf_id = int(wf) if wf.isdigit() else self.workflows.get(wf)
        if wf_id is None:
            raise HttpError(404, "Not Found")
        items = [
            self.run_json(r)
            for r in sorted(self.runs.values(), key=lambda r: (r["created_at"], r["id"]), reverse=True)
            if r["workflow_id"] == wf_id
            and q.get("branch") in (None, r["head_branch"])
            and q.get("event") in (None, r["event"])
            and q.get("status") in (None, r["status"], r["conclusion"])
        ][:1000]
        return 200, self.page(items, q, "workflow_runs")

    def h_run(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        return 200, self.run_json(self._run(p))

    def h_jobs(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        run = self._run(p)
        items = [
            instance(
                "job",
                id=j["id"],
                node_id=f"J_{j['id']}",
                run_id=run["id"],
                run_url=self.repo_url(f"/actions/runs/{run['id']}"),
                head_sha=run["head_sha"],
                workflow_name=run["path"].rsplit("/", 1)[-1],
                head_branch=run["head_branch"],
                name=j["name"],
                url=self.repo_url(f"/actions/jobs/{j['id']}"),
                html_url=self.html(f"/actions/runs/{run['id']}/job/{j['id']}"),
                status=j["status"],
                conclusion=j["conclusion"],
                started_at=run["created_at"],
                completed_at=run["created_at"],
                created_at=run["created_at"],
                check_run_url="",
                runner_id=None,
                runner_name=None,
                runner_group_id=None,
                runner_group_name=None,
            )
            for j in self.jobs.get(run["id"], [])
        ]
        return 200, self.page(items, q, "jobs")

    # -- handlers: artifacts, caches, packages, sarif, attestations --------------------------------
    def h_artifacts(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        items = [
            instance(
                "artifact",
                id=a["id"],
                node_id=f"A_{a['id']}",
                name=a["name"],
                size_in_bytes=a["size"],
                url=self.repo_url(f"/actions/artifacts/{a['id']}"),
                archive_download_url=self.repo_url(f"/actions/artifacts/{a['id']}/zip"),
                expired=False,
                created_at=a["created_at"],
                expires_at=None,
                updated_at=a["created_at"],
            )
            for a in sorted(self.artifacts.values(), key=lambda a: -a["id"])
            if q.get("name") in (None, a["name"])
        ]
        return 200, self.page(items, q, "artifacts")

    def h_delete_artifact(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        if self.artifacts.pop(int(p["artifact_id"]), None) is None:
            raise HttpError(404, "Not Found")
        return 204, None

    def h_caches(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        items = [
            {
                "id": c["id"],
                "ref": c["ref"],
                "key": c["key"],
                "version": "v1",
                "last_accessed_at": c["accessed"],
                "created_at": c["created"],
                "size_in_bytes": c["size"],
            }
            for c in sorted(self.caches.values(), key=lambda c: (c["accessed"], c["id"]), reverse=True)
            if c["key"].startswith(q.get("key", "")) and q.get("ref") in (None, c["ref"])
        ]
        return 200, self.page(items, q, "actions_caches")

    def h_delete_cache(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        if self.caches.pop(int(p["cache_id"]), None) is None:
            raise HttpError(404, "Not Found")
        return 204, None

    def _package(self, p: dict[str, str]) -> tuple[str, str, str, str]:
        kind, owner = ("org", p["org"]) if "org" in p else ("user", p["username"])
        key = (kind, owner, p["package_type"], p["package_name"])
        if key not in self.packages:
            raise HttpError(404, "Package not found.")
        return key

    def h_versions(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        key = self._package(p)
        kind, owner, ptype, name = key
        base = f"{self.api_url}/{'orgs' if kind == 'org' else 'users'}/{owner}/packages/{ptype}/{name}"
        items = [
            instance(
                "package-version",
                id=v["id"],
                name=v["name"],
                url=f"{base}/versions/{v['id']}",
                package_html_url=f"https://github.invalid/{owner}/packages/{ptype}/package/{name}",
                html_url=f"https://github.invalid/{owner}/packages/{ptype}/{name}/{v['id']}",
                created_at=v["created_at"],
                updated_at=v["created_at"],
                metadata={"package_type": ptype, "container": {"tags": v["tags"]}},
            )
            for v in self.packages[key]
        ]
        return 200, self.page(items, q)

    def h_delete_version(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        key = self._package(p)
        vid = int(p["package_version_id"])
        before = len(self.packages[key])
        self.packages[key] = [v for v in self.packages[key] if v["id"] != vid]
        if len(self.packages[key]) == before:
            raise HttpError(404, "Not Found")
        return 204, None

    def h_sarif(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        try:
            document = json.loads(gzip.decompress(base64.b64decode(b["sarif"])))
        except (ValueError, OSError) as exc:
            raise HttpError(400, f"Invalid sarif: {exc}") from None
        sid = f"sarif-{self.new_id()}"
        self.sarifs.append({"id": sid, "commit_sha": b["commit_sha"], "ref": b["ref"], "document": document})
        return 202, {"id": sid, "url": self.repo_url(f"/code-scanning/sarifs/{sid}")}

    def h_create_attestation(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        aid = self.new_id()
        digest = _bundle_digest(b["bundle"])
        self.attestations.append({"id": aid, "bundle": b["bundle"], "digest": digest})
        return 201, {"id": aid}

    def h_list_attestations(self, p: dict[str, str], q: dict[str, str], b: JSON) -> tuple[int, JSON]:
        self._check_repo(p)
        items = [
            {"bundle": a["bundle"], "repository_id": 1, "bundle_url": "", "initiator": "user"}
            for a in self.attestations
            if a["digest"] == p["subject_digest"]
        ]
        page = self.page(items, q)
        page.payload = {"attestations": page.payload}
        return 200, page


@dataclass
class _Page:
    payload: Any
    page: int
    last: int
    per_page: int

    def link(self, api_url: str, path: str, query: dict[str, str]) -> str:
        def url(n: int) -> str:
            params = dict(query, per_page=str(self.per_page), page=str(n))
            return f"<{api_url}{path}?{urllib.parse.urlencode(params)}>"

        parts = []
        if self.page < self.last:
            parts += [f'{url(self.page + 1)}; rel="next"', f'{url(self.last)}; rel="last"']
        if self.page > 1:
            parts += [f'{url(1)}; rel="first"', f'{url(self.page - 1)}; rel="prev"']
        return ", ".join(parts)


def _bundle_digest(bundle: dict[str, Any]) -> str:
    """The subject digest of a Sigstore bundle's in-toto statement ("sha256:<hex>")."""
    try:
        envelope = bundle["dsseEnvelope"]
        statement = json.loads(base64.b64decode(envelope["payload"]))
        return f"sha256:{statement['subject'][0]['digest']['sha256']}"
    except (KeyError, IndexError, ValueError, TypeError):
        return ""


def _corrupt(body: Any) -> Any:
    """Break a response the way a buggy server would: drop ``id``/``number`` (required fields)."""
    if isinstance(body, list):
        return [_corrupt(x) for x in body]
    out = {k: v for k, v in body.items() if k not in ("id", "number", "node_id")}
    for key, value in body.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            out[key] = _corrupt(value)
    return out


def known_operations() -> set[tuple[str, str]]:
    return operations()
