"""The GitHub backend of :class:`~devops_agent.core.platform.Platform`.

HTTP goes through PyGithub: its high-level objects where it has the call (repository, issue and
deployment creation) and its requester (``Requester.requestJson``: auth, base URL incl. GHES's
``/api/v3``, connection pool, token masking in debug logs) for the rest (pending deployments,
packages, caches, branch policies, attestations, and every list, which we paginate ourselves by
``Link`` header with ``per_page=100``). PyGithub's own retry and throttling are disabled: every
request runs under our :class:`~devops_agent.platform.retry.RetryPolicy`.

PyGithub is imported lazily (inside methods), so importing this module stays cheap.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from devops_agent._version import __version__
from devops_agent.core.errors import ConfigError, PlatformError
from devops_agent.core.platform import (
    DEPLOYMENT_KEY_FIELD,
    Artifact,
    Attestation,
    Branch,
    BranchPolicy,
    BranchProtection,
    Cache,
    CloseReason,
    Comment,
    Deployment,
    DeploymentBranchPolicy,
    DeploymentState,
    DeploymentStatus,
    Environment,
    EnvironmentSpec,
    Issue,
    IssueState,
    IssueStateFilter,
    Job,
    Label,
    PackageOwner,
    PackageType,
    PackageVersion,
    PendingDeployment,
    Platform,
    PlatformSettings,
    PullRequest,
    RepoRef,
    Repository,
    RequestStats,
    Reviewer,
    ReviewerType,
    ReviewState,
    SarifUpload,
    WorkflowRun,
    body_key,
    bundle_subject_digest,
    with_key,
)
from devops_agent.platform.retry import Counters, Executor, Response, RetryPolicy, TransportError

PER_PAGE = 100
#: How far back a lookup searches for an object a failed POST may have created (clock skew margin).
LOOKUP_WINDOW = timedelta(minutes=10)
_NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')

Json = Any


def parse_time(value: Any) -> datetime:
    if not isinstance(value, str) or not value:
        return datetime.fromtimestamp(0, tz=timezone.utc)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def _opt_time(value: Any) -> datetime | None:
    return parse_time(value) if isinstance(value, str) and value else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class GitHubPlatform(Platform):
    """GitHub (github.com or GHES) through PyGithub, under our retry policy."""

    kind = "github"

    def __init__(
        self,
        repo: RepoRef,
        *,
        token: str,
        api_url: str = "https://api.github.com",
        server_url: str = "https://github.com",
        policy: RetryPolicy | None = None,
        timeout: int = 30,
    ) -> None:
        if not token:
            raise ConfigError("no GitHub token given", "set GITHUB_TOKEN", field="GITHUB_TOKEN")
        from github import Auth, Github

        self.repo = repo
        self.api_url = api_url.rstrip("/")
        self.server_url = server_url.rstrip("/")
        self.policy = policy or RetryPolicy(write_interval=1.0)
        self.counters = Counters()
        self._executor = Executor(self.policy, self.counters)
        self._gh = Github(
            auth=Auth.Token(token),
            base_url=self.api_url,
            timeout=timeout,
            user_agent=f"devops-agent/{__version__}",
            per_page=PER_PAGE,
            retry=0,  # our policy owns retries
            seconds_between_requests=0,
            seconds_between_writes=0,  # pacing is RetryPolicy.write_interval
            lazy=True,
        )
        self._requester = self._gh.requester
        self._base = f"/repos/{quote(repo.owner)}/{quote(repo.name)}"

    @classmethod
    def from_settings(cls, settings: PlatformSettings, policy: RetryPolicy | None = None) -> GitHubPlatform:
        assert settings.token is not None
        return cls(
            settings.repo,
            token=settings.token,
            api_url=settings.api_url,
            server_url=settings.server_url,
            policy=policy,
        )

    def __repr__(self) -> str:  # never show the token
        return f"GitHubPlatform({self.repo.full_name!r}, api_url={self.api_url!r})"

    def close(self) -> None:
        self._gh.close()

    def stats(self) -> RequestStats:
        return self.counters.snapshot()

    # -- transport -------------------------------------------------------------------------------
    def _send(self, method: str, url: str, params: Mapping[str, Any] | None, body: Json) -> Response:
        import requests

        try:
            status, headers, text = self._requester.requestJson(
                method, url, parameters=dict(params) if params else None, input=body
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransportError(type(exc).__name__) from None
        data: Any = None
        if text:
            try:
                data = json.loads(text)
            except ValueError:
                data = {"message": text[:200]}
        return Response(status, {k.lower(): str(v) for k, v in headers.items()}, data)

    def _pygithub(self, call: Callable[[], Any]) -> Response:
        """Run one PyGithub high-level call (exactly one HTTP request) as a Response."""
        import requests
        from github import GithubException

        try:
            obj = call()
        except GithubException as exc:
            headers = {k.lower(): str(v) for k, v in (exc.headers or {}).items()}
            return Response(exc.status, headers, exc.data)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransportError(type(exc).__name__) from None
        return Response(200, {}, obj.raw_data)

    def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        body: Json = None,
        idempotent: bool | None = None,
        lookup: Callable[[], Any | None] | None = None,
        is_lookup: bool = False,
        ok: Sequence[int] = (),
    ) -> Response:
        response = self._executor.run(
            lambda: self._send(method, url, params, body),
            method=method,
            what=what,
            idempotent=idempotent,
            lookup=lookup,
            is_lookup=is_lookup,
        )
        if response.ok or response.looked_up or response.status in ok:
            return response
        raise self._error(what, response)

    def _error(self, what: str, response: Response) -> PlatformError:
        message = response.message or "no message"
        if response.status == 401:
            return PlatformError(
                f"{what}: GitHub rejected the token (401 {message})",
                "check the token is valid and not expired",
            )
        if response.status == 403:
            return PlatformError(
                f"{what}: the token lacks permission (403 {message})",
                "grant the permission listed for this operation in docs/platform.md "
                "(GITHUB_TOKEN cannot manage environments or review deployments)",
            )
        if response.status == 404:
            return PlatformError(
                f"{what}: not found (404 {message})",
                "check the repository/object exists and the token can see it",
            )
        return PlatformError(f"{what}: GitHub answered {response.status} {message}", None)

    def _get(self, url: str, what: str, params: Mapping[str, Any] | None = None) -> Json:
        return self._request("GET", url, what=what, params=params).data

    def _get_optional(self, url: str, what: str, params: Mapping[str, Any] | None = None) -> Json | None:
        response = self._request("GET", url, what=what, params=params, ok=(404,))
        return None if response.status == 404 else response.data

    def _paginate(
        self,
        url: str,
        what: str,
        params: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        limit: int | None = None,
        is_lookup: bool = False,
        missing_ok: bool = False,
        stop: Callable[[Json], bool] | None = None,
    ) -> list[Json]:
        """Every item of a list endpoint (``key``: the array inside a wrapping object)."""
        items: list[Json] = []
        query: dict[str, Any] | None = {**(params or {}), "per_page": PER_PAGE}
        next_url: str | None = url
        while next_url is not None:
            response = self._request(
                "GET",
                next_url,
                what=what,
                params=query,
                is_lookup=is_lookup,
                ok=(404,) if missing_ok else (),
            )
            if response.status == 404:
                return []
            page = response.data[key] if key else response.data
            items.extend(page)
            if (limit is not None and len(items) >= limit) or (stop is not None and any(map(stop, page))):
                break
            match = _NEXT_LINK.search(response.headers.get("link", ""))
            next_url = match.group(1) if match else None
            query = None  # the next link carries the query
        return items[:limit] if limit is not None else items

    def _since(self) -> str:
        started = datetime.fromtimestamp(self.policy.clock(), tz=timezone.utc)
        return _iso(started - LOOKUP_WINDOW)

    # -- repository ------------------------------------------------------------------------------
    def get_repository(self) -> Repository:
        response = self._executor.run(
            lambda: self._pygithub(self._repo_obj),
            method="GET",
            what=f"read repository {self.repo.full_name}",
        )
        if not response.ok:
            raise self._error(f"read repository {self.repo.full_name}", response)
        data = response.data
        return Repository(
            full_name=data["full_name"],
            default_branch=data["default_branch"],
            private=bool(data["private"]),
            html_url=data["html_url"],
            owner_kind="org" if data["owner"]["type"] == "Organization" else "user",
            id=int(data["id"]),
        )

    def _repo_obj(self) -> Any:
        repo = self._gh.get_repo(self.repo.full_name)
        repo.raw_data  # noqa: B018 - completes the lazy object (the one GET)
        return repo

    # -- branches --------------------------------------------------------------------------------
    def list_branches(self) -> tuple[Branch, ...]:
        items = self._paginate(f"{self._base}/branches", "list branches")
        return tuple(
            sorted(
                (Branch(b["name"], b["commit"]["sha"], bool(b["protected"])) for b in items),
                key=lambda b: b.name,
            )
        )

    def get_branch(self, name: str) -> Branch | None:
        data = self._get_optional(f"{self._base}/branches/{quote(name, safe='')}", f"read branch {name}")
        if data is None:
            return None
        commit = data["commit"]["commit"]
        date = (commit.get("committer") or commit.get("author") or {}).get("date")
        return Branch(data["name"], data["commit"]["sha"], bool(data["protected"]), _opt_time(date))

    def get_branch_protection(self, branch: str) -> BranchProtection | None:
        data = self._get_optional(
            f"{self._base}/branches/{quote(branch, safe='')}/protection", f"read protection of {branch}"
        )
        if data is None:
            return None
        checks = data.get("required_status_checks") or {}
        reviews = data.get("required_pull_request_reviews") or {}
        return BranchProtection(
            branch=branch,
            required_status_checks=tuple(checks.get("contexts") or ()),
            required_approving_review_count=int(reviews.get("required_approving_review_count") or 0),
            enforce_admins=bool((data.get("enforce_admins") or {}).get("enabled")),
            allow_force_pushes=bool((data.get("allow_force_pushes") or {}).get("enabled")),
            allow_deletions=bool((data.get("allow_deletions") or {}).get("enabled")),
        )

    def delete_branch(self, name: str) -> bool:
        response = self._request(
            "DELETE",
            f"{self._base}/git/refs/heads/{quote(name, safe='/')}",
            what=f"delete branch {name}",
            ok=(404, 422),
        )
        if response.status == 422 and "does not exist" not in response.message:
            raise self._error(f"delete branch {name}", response)
        return response.status == 204

    def list_pull_requests(
        self, *, state: IssueStateFilter = "open", head: str | None = None, base: str | None = None
    ) -> tuple[PullRequest, ...]:
        params: dict[str, Any] = {"state": state, "sort": "created", "direction": "desc"}
        if head:
            params["head"] = f"{self.repo.owner}:{head}"
        if base:
            params["base"] = base
        items = self._paginate(f"{self._base}/pulls", "list pull requests", params)
        return tuple(
            PullRequest(
                number=p["number"],
                title=p["title"],
                state=p["state"],
                head_ref=p["head"]["ref"],
                head_sha=p["head"]["sha"],
                base_ref=p["base"]["ref"],
                html_url=p.get("html_url") or "",
            )
            for p in items
        )

    # -- issues ----------------------------------------------------------------------------------
    @staticmethod
    def _issue(data: Json) -> Issue:
        return Issue(
            number=int(data["number"]),
            title=data["title"],
            body=data.get("body") or "",
            state="closed" if data["state"] == "closed" else "open",
            labels=tuple(lbl["name"] if isinstance(lbl, Mapping) else str(lbl) for lbl in data["labels"]),
            created_at=parse_time(data["created_at"]),
            updated_at=parse_time(data["updated_at"]),
            closed_at=_opt_time(data.get("closed_at")),
            html_url=data.get("html_url") or "",
            assignees=tuple(a["login"] for a in data.get("assignees") or ()),
            comments=int(data.get("comments") or 0),
        )

    def _issue_items(
        self,
        labels: Sequence[str],
        state: IssueStateFilter,
        since: str | None = None,
        is_lookup: bool = False,
        key: str | None = None,
    ) -> list[Json]:
        params: dict[str, Any] = {"state": state, "sort": "created", "direction": "desc"}
        if labels:
            params["labels"] = ",".join(labels)
        if since:
            params["since"] = since
        items = self._paginate(
            f"{self._base}/issues",
            "list issues",
            params,
            is_lookup=is_lookup,
            # looking for one key: stop at the page that holds it
            stop=None if key is None else (lambda item: body_key(item.get("body")) == key),
        )
        return [i for i in items if "pull_request" not in i]

    def list_issues(
        self, *, labels: Sequence[str] = (), state: IssueStateFilter = "open"
    ) -> tuple[Issue, ...]:
        return tuple(self._issue(i) for i in self._issue_items(labels, state))

    def get_issue(self, number: int) -> Issue | None:
        data = self._get_optional(f"{self._base}/issues/{number}", f"read issue #{number}")
        if data is None or "pull_request" in data:
            return None
        return self._issue(data)

    def find_issue_by_key(
        self, key: str, *, labels: Sequence[str] = (), state: IssueStateFilter = "all"
    ) -> Issue | None:
        for item in self._issue_items(labels, state, key=key):
            if body_key(item.get("body")) == key:
                return self._issue(item)
        return None

    def create_issue(
        self,
        title: str,
        body: str,
        *,
        labels: Sequence[str] = (),
        assignees: Sequence[str] = (),
        key: str | None = None,
    ) -> Issue:
        if key is not None:
            existing = self.find_issue_by_key(key, labels=labels)
            if existing is not None:
                return existing
        marker = key or f"auto-{uuid.uuid4().hex}"
        tagged = with_key(body, marker)
        since = self._since()

        def lookup() -> Json | None:
            for item in self._issue_items(labels, "all", since=since, is_lookup=True, key=marker):
                if body_key(item.get("body")) == marker:
                    return item
            return None

        def send() -> Response:
            return self._pygithub(
                lambda: self._gh.get_repo(self.repo.full_name).create_issue(
                    title=title, body=tagged, labels=list(labels), assignees=list(assignees)
                )
            )

        what = f"create issue {title!r}"
        response = self._executor.run(send, method="POST", what=what, idempotent=False, lookup=lookup)
        if not (response.ok or response.looked_up):
            raise self._error(what, response)
        return self._issue(response.data)

    def update_issue(
        self,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        labels: Sequence[str] | None = None,
        state: IssueState | None = None,
        state_reason: CloseReason | None = None,
    ) -> Issue:
        payload: dict[str, Any] = {}
        if title is not None:
            payload["title"] = title
        if body is not None:
            payload["body"] = body
        if labels is not None:
            payload["labels"] = list(labels)
        if state is not None:
            payload["state"] = state
        if state_reason is not None:
            payload["state_reason"] = state_reason
        # absolute values: re-sending cannot change the outcome
        response = self._request(
            "PATCH",
            f"{self._base}/issues/{number}",
            what=f"update issue #{number}",
            body=payload,
            idempotent=True,
        )
        return self._issue(response.data)

    def add_labels(self, number: int, labels: Sequence[str]) -> tuple[str, ...]:
        if not labels:
            issue = self.get_issue(number)
            return issue.labels if issue else ()
        response = self._request(
            "POST",
            f"{self._base}/issues/{number}/labels",
            what=f"label issue #{number}",
            body={"labels": list(labels)},
            idempotent=True,  # adding a label twice is a no-op
        )
        return tuple(lbl["name"] for lbl in response.data)

    @staticmethod
    def _comment(data: Json) -> Comment:
        return Comment(
            id=int(data["id"]),
            body=data.get("body") or "",
            created_at=parse_time(data["created_at"]),
            author=(data.get("user") or {}).get("login", ""),
            html_url=data.get("html_url") or "",
        )

    def add_comment(self, number: int, body: str, *, key: str | None = None) -> Comment:
        url = f"{self._base}/issues/{number}/comments"
        if key is not None:
            for existing in self.list_comments(number):
                if existing.key == key:
                    return existing
        marker = key or f"auto-{uuid.uuid4().hex}"
        tagged = with_key(body, marker)
        since = self._since()

        def lookup() -> Json | None:
            items = self._paginate(
                url,
                "list comments",
                {"since": since},
                is_lookup=True,
                stop=lambda c: body_key(c.get("body")) == marker,
            )
            return next((c for c in items if body_key(c.get("body")) == marker), None)

        response = self._request(
            "POST",
            url,
            what=f"comment on issue #{number}",
            body={"body": tagged},
            idempotent=False,
            lookup=lookup,
        )
        return self._comment(response.data)

    def list_comments(self, number: int) -> tuple[Comment, ...]:
        items = self._paginate(f"{self._base}/issues/{number}/comments", f"list comments of #{number}")
        return tuple(self._comment(c) for c in items)

    def list_labels(self) -> tuple[Label, ...]:
        items = self._paginate(f"{self._base}/labels", "list labels")
        return tuple(
            sorted(
                (Label(lbl["name"], lbl["color"], lbl.get("description") or "") for lbl in items),
                key=lambda lbl: lbl.name,
            )
        )

    def create_label(self, name: str, *, color: str = "ededed", description: str = "") -> Label:
        what = f"create label {name!r}"
        response = self._request(
            "POST",
            f"{self._base}/labels",
            what=what,
            body={"name": name, "color": color.lstrip("#"), "description": description},
            idempotent=True,  # a re-send answers 422 already_exists, resolved below
            ok=(422,),
        )
        if response.status == 422:
            errors = response.data.get("errors") if isinstance(response.data, Mapping) else None
            if not any(isinstance(e, Mapping) and e.get("code") == "already_exists" for e in errors or ()):
                raise self._error(what, response)
            data = self._get(f"{self._base}/labels/{quote(name, safe='')}", f"read label {name!r}")
        else:
            data = response.data
        return Label(data["name"], data["color"], data.get("description") or "")

    # -- deployments -----------------------------------------------------------------------------
    @staticmethod
    def _deployment(data: Json) -> Deployment:
        payload = data.get("payload")
        if isinstance(payload, str):
            try:
                payload = json.loads(payload) if payload else {}
            except ValueError:
                payload = {"raw": payload}
        return Deployment(
            id=int(data["id"]),
            sha=data["sha"],
            ref=data["ref"],
            environment=data["environment"],
            task=data["task"],
            payload=payload if isinstance(payload, Mapping) else {},
            description=data.get("description") or "",
            created_at=parse_time(data["created_at"]),
            updated_at=parse_time(data["updated_at"]),
            production_environment=bool(data.get("production_environment")),
            transient_environment=bool(data.get("transient_environment")),
            creator=(data.get("creator") or {}).get("login", ""),
        )

    def create_deployment(
        self,
        ref: str,
        environment: str,
        *,
        description: str = "",
        payload: Mapping[str, Any] | None = None,
        task: str = "deploy",
        production_environment: bool | None = None,
        transient_environment: bool = False,
        key: str | None = None,
    ) -> Deployment:
        if key is not None:
            existing = self.list_deployments(environment=environment, ref=ref, task=task)
            found = next((d for d in existing if d.key == key), None)
            if found is not None:
                return found
        marker = key or f"auto-{uuid.uuid4().hex}"
        body_payload = {**dict(payload or {}), DEPLOYMENT_KEY_FIELD: marker}
        params = {"environment": environment, "ref": ref, "task": task}

        def lookup() -> Json | None:
            items = self._paginate(
                f"{self._base}/deployments",
                "list deployments",
                params,
                is_lookup=True,
                limit=PER_PAGE,
            )
            return next(
                (
                    d
                    for d in items
                    if isinstance(d.get("payload"), Mapping)
                    and d["payload"].get(DEPLOYMENT_KEY_FIELD) == marker
                ),
                None,
            )

        def send() -> Response:
            kwargs: dict[str, Any] = {
                "task": task,
                "auto_merge": False,
                "required_contexts": [],
                "payload": body_payload,
                "environment": environment,
                "description": description,
                "transient_environment": transient_environment,
            }
            if production_environment is not None:
                kwargs["production_environment"] = production_environment
            return self._pygithub(
                lambda: self._gh.get_repo(self.repo.full_name).create_deployment(ref, **kwargs)
            )

        what = f"create deployment of {ref} to {environment}"
        response = self._executor.run(send, method="POST", what=what, idempotent=False, lookup=lookup)
        if not (response.ok or response.looked_up) or "id" not in (response.data or {}):
            # 202 = "merged branch" answer without a deployment (cannot happen with auto_merge=false)
            raise self._error(what, response)
        return self._deployment(response.data)

    def list_deployments(
        self,
        *,
        environment: str | None = None,
        sha: str | None = None,
        ref: str | None = None,
        task: str | None = None,
        limit: int | None = None,
    ) -> tuple[Deployment, ...]:
        params = {
            k: v for k, v in (("environment", environment), ("sha", sha), ("ref", ref), ("task", task)) if v
        }
        items = self._paginate(f"{self._base}/deployments", "list deployments", params, limit=limit)
        return tuple(self._deployment(d) for d in items)

    def get_deployment(self, deployment_id: int) -> Deployment | None:
        data = self._get_optional(
            f"{self._base}/deployments/{deployment_id}", f"read deployment {deployment_id}"
        )
        return None if data is None else self._deployment(data)

    @staticmethod
    def _status(deployment_id: int, data: Json) -> DeploymentStatus:
        return DeploymentStatus(
            id=int(data["id"]),
            deployment_id=deployment_id,
            state=data["state"],
            description=data.get("description") or "",
            environment=data.get("environment") or "",
            created_at=parse_time(data["created_at"]),
            environment_url=data.get("environment_url") or "",
            log_url=data.get("log_url") or data.get("target_url") or "",
        )

    def create_deployment_status(
        self,
        deployment_id: int,
        state: DeploymentState,
        *,
        description: str = "",
        environment_url: str = "",
        log_url: str = "",
        auto_inactive: bool = True,
    ) -> DeploymentStatus:
        url = f"{self._base}/deployments/{deployment_id}/statuses"
        body: dict[str, Any] = {
            "state": state,
            "description": description[:140],
            "auto_inactive": auto_inactive,
        }
        if environment_url:
            body["environment_url"] = environment_url
        if log_url:
            body["log_url"] = log_url
        since = parse_time(self._since())

        def lookup() -> Json | None:
            # the newest status is the one a lost answer would have created
            items = self._paginate(url, "list deployment statuses", is_lookup=True, limit=1)
            for s in items:
                if (
                    s["state"] == state
                    and (s.get("description") or "") == body["description"]
                    and parse_time(s["created_at"]) >= since
                ):
                    return s
            return None

        response = self._request(
            "POST",
            url,
            what=f"set deployment {deployment_id} {state}",
            body=body,
            idempotent=False,
            lookup=lookup,
        )
        return self._status(deployment_id, response.data)

    def list_deployment_statuses(self, deployment_id: int) -> tuple[DeploymentStatus, ...]:
        items = self._paginate(
            f"{self._base}/deployments/{deployment_id}/statuses",
            f"list statuses of deployment {deployment_id}",
        )
        return tuple(self._status(deployment_id, s) for s in items)

    # -- environments ------------------------------------------------------------------------------
    def _env_url(self, name: str) -> str:
        return f"{self._base}/environments/{quote(name, safe='')}"

    def _environment(self, data: Json, policies: tuple[BranchPolicy, ...]) -> Environment:
        reviewers: list[Reviewer] = []
        wait_timer = 0
        prevent_self_review = False
        for rule in data.get("protection_rules") or ():
            if rule.get("type") == "wait_timer":
                wait_timer = int(rule.get("wait_timer") or 0)
            elif rule.get("type") == "required_reviewers":
                prevent_self_review = bool(rule.get("prevent_self_review"))
                for r in rule.get("reviewers") or ():
                    who = r.get("reviewer") or {}
                    kind: ReviewerType = "Team" if r.get("type") == "Team" else "User"
                    reviewers.append(
                        Reviewer(kind, int(who.get("id", 0)), who.get("login") or who.get("slug") or "")
                    )
        policy = data.get("deployment_branch_policy")
        return Environment(
            name=data["name"],
            id=int(data["id"]),
            reviewers=tuple(reviewers),
            wait_timer=wait_timer,
            prevent_self_review=prevent_self_review,
            # not part of GitHub's REST description: reported as GitHub's default when absent
            can_admins_bypass=bool(data.get("can_admins_bypass", True)),
            deployment_branch_policy=None
            if policy is None
            else DeploymentBranchPolicy(
                bool(policy["protected_branches"]), bool(policy["custom_branch_policies"])
            ),
            branch_policies=policies,
            html_url=data.get("html_url") or "",
            created_at=_opt_time(data.get("created_at")),
            updated_at=_opt_time(data.get("updated_at")),
        )

    def _policies(self, name: str, data: Json) -> tuple[BranchPolicy, ...]:
        policy = data.get("deployment_branch_policy")
        if not policy or not policy.get("custom_branch_policies"):
            return ()
        items = self._paginate(
            f"{self._env_url(name)}/deployment-branch-policies",
            f"list branch policies of {name}",
            key="branch_policies",
        )
        return tuple(
            sorted(
                (BranchPolicy(p["name"], p.get("type") or "branch", int(p["id"])) for p in items),
                key=lambda p: (p.type, p.name),
            )
        )

    def list_environments(self) -> tuple[Environment, ...]:
        items = self._paginate(f"{self._base}/environments", "list environments", key="environments")
        return tuple(
            sorted((self._environment(e, self._policies(e["name"], e)) for e in items), key=lambda e: e.name)
        )

    def get_environment(self, name: str) -> Environment | None:
        data = self._get_optional(self._env_url(name), f"read environment {name}")
        if data is None:
            return None
        return self._environment(data, self._policies(name, data))

    def put_environment(self, spec: EnvironmentSpec) -> Environment:
        if not spec.can_admins_bypass:
            raise PlatformError(
                f"environment {spec.name}: can_admins_bypass=false cannot be set through the REST API "
                "(GitHub's OpenAPI description has no such field)",
                "untick 'Allow administrators to bypass configured protection rules' in the "
                "environment settings, and keep can_admins_bypass: true in the file",
            )
        policy = spec.deployment_branch_policy
        body: dict[str, Any] = {
            "wait_timer": spec.wait_timer,
            "prevent_self_review": spec.prevent_self_review,
            "reviewers": [{"type": r.type, "id": r.id} for r in spec.reviewers],
            "deployment_branch_policy": None
            if policy is None
            else {
                "protected_branches": policy.protected_branches,
                "custom_branch_policies": policy.custom_branch_policies,
            },
        }
        what = f"update environment {spec.name}"
        data = self._request("PUT", self._env_url(spec.name), what=what, body=body).data
        if policy is not None and policy.custom_branch_policies:
            current = self._policies(spec.name, data)
            wanted = {(p.type, p.name) for p in spec.branch_policies}
            for existing in current:
                if (existing.type, existing.name) not in wanted:
                    self._request(
                        "DELETE",
                        f"{self._env_url(spec.name)}/deployment-branch-policies/{existing.id}",
                        what=f"delete branch policy {existing.name} of {spec.name}",
                        ok=(404,),
                    )
            have = {(p.type, p.name) for p in current}
            for p in spec.branch_policies:
                if (p.type, p.name) not in have:
                    self._request(
                        "POST",
                        f"{self._env_url(spec.name)}/deployment-branch-policies",
                        what=f"add branch policy {p.name} to {spec.name}",
                        body={"name": p.name, "type": p.type},
                        idempotent=True,  # a re-send answers 303 (exists)
                        ok=(303,),
                    )
        result = self.get_environment(spec.name)
        if result is None:
            raise PlatformError(f"{what}: the environment vanished right after the update", "re-run")
        return result

    def resolve_reviewer(self, type_: ReviewerType, name: str) -> Reviewer:
        if type_ == "User":
            data = self._get_optional(f"/users/{quote(name, safe='')}", f"look up user {name}")
            if data is None:
                raise PlatformError(f"reviewer user {name!r} does not exist", "check the login")
            return Reviewer("User", int(data["id"]), data["login"])
        org, sep, slug = name.partition("/")
        if not sep:
            org, slug = self.repo.owner, name
        data = self._get_optional(f"/orgs/{quote(org)}/teams/{quote(slug)}", f"look up team {org}/{slug}")
        if data is None:
            raise PlatformError(
                f"reviewer team {org}/{slug} does not exist or the token cannot read it",
                "check the team slug; reading teams needs read:org (Members: read)",
            )
        return Reviewer("Team", int(data["id"]), data["slug"])

    # -- pending deployments -----------------------------------------------------------------------
    def _pending_items(self, run_id: int, is_lookup: bool = False) -> list[Json]:
        url = f"{self._base}/actions/runs/{run_id}/pending_deployments"
        response = self._request(
            "GET", url, what=f"list pending deployments of run {run_id}", is_lookup=is_lookup
        )
        return list(response.data)

    def list_pending_deployments(self, run_id: int) -> tuple[PendingDeployment, ...]:
        out = []
        for item in self._pending_items(run_id):
            reviewers = tuple(
                Reviewer(
                    "Team" if r.get("type") == "Team" else "User",
                    int((r.get("reviewer") or {}).get("id", 0)),
                    (r.get("reviewer") or {}).get("login") or (r.get("reviewer") or {}).get("slug") or "",
                )
                for r in item.get("reviewers") or ()
            )
            out.append(
                PendingDeployment(
                    environment=item["environment"]["name"],
                    environment_id=int(item["environment"]["id"]),
                    wait_timer=int(item.get("wait_timer") or 0),
                    wait_timer_started_at=_opt_time(item.get("wait_timer_started_at")),
                    current_user_can_approve=bool(item.get("current_user_can_approve")),
                    reviewers=reviewers,
                )
            )
        return tuple(out)

    def review_pending_deployments(
        self, run_id: int, environment_ids: Sequence[int], state: ReviewState, comment: str
    ) -> tuple[Deployment, ...]:
        if not comment.strip():
            raise ConfigError("a review needs a comment", "pass --comment 'why'", field="comment")
        ids = [int(i) for i in environment_ids]

        def lookup() -> Json | None:
            still = {int(p["environment"]["id"]) for p in self._pending_items(run_id, is_lookup=True)}
            return [] if not still.intersection(ids) else None  # reviewed: nothing pending any more

        response = self._request(
            "POST",
            f"{self._base}/actions/runs/{run_id}/pending_deployments",
            what=f"{state} deployments of run {run_id}",
            body={"environment_ids": ids, "state": state, "comment": comment},
            idempotent=False,
            lookup=lookup,
        )
        return tuple(self._deployment(d) for d in response.data or ())

    # -- workflow runs and jobs --------------------------------------------------------------------
    @staticmethod
    def _run(data: Json) -> WorkflowRun:
        return WorkflowRun(
            id=int(data["id"]),
            name=data.get("name") or "",
            workflow_id=int(data["workflow_id"]),
            head_branch=data.get("head_branch") or "",
            head_sha=data["head_sha"],
            event=data["event"],
            status=data.get("status") or "",
            conclusion=data.get("conclusion"),
            run_number=int(data["run_number"]),
            run_attempt=int(data.get("run_attempt") or 1),
            created_at=parse_time(data["created_at"]),
            updated_at=parse_time(data["updated_at"]),
            html_url=data.get("html_url") or "",
        )

    def list_workflow_runs(
        self,
        workflow: str | int,
        *,
        branch: str | None = None,
        event: str | None = None,
        status: str | None = None,
        limit: int | None = 100,
    ) -> tuple[WorkflowRun, ...]:
        params = {k: v for k, v in (("branch", branch), ("event", event), ("status", status)) if v}
        items = self._paginate(
            f"{self._base}/actions/workflows/{quote(str(workflow), safe='')}/runs",
            f"list runs of {workflow}",
            params,
            key="workflow_runs",
            limit=limit,
        )
        return tuple(self._run(r) for r in items)

    def get_workflow_run(self, run_id: int) -> WorkflowRun | None:
        data = self._get_optional(f"{self._base}/actions/runs/{run_id}", f"read run {run_id}")
        return None if data is None else self._run(data)

    def list_jobs(self, run_id: int) -> tuple[Job, ...]:
        items = self._paginate(
            f"{self._base}/actions/runs/{run_id}/jobs", f"list jobs of run {run_id}", key="jobs"
        )
        return tuple(
            Job(
                id=int(j["id"]),
                run_id=int(j["run_id"]),
                name=j["name"],
                status=j["status"],
                conclusion=j.get("conclusion"),
                started_at=_opt_time(j.get("started_at")),
                completed_at=_opt_time(j.get("completed_at")),
                html_url=j.get("html_url") or "",
            )
            for j in items
        )

    # -- artifacts and caches ----------------------------------------------------------------------
    def list_artifacts(self, *, name: str | None = None) -> tuple[Artifact, ...]:
        params = {"name": name} if name else None
        items = self._paginate(f"{self._base}/actions/artifacts", "list artifacts", params, key="artifacts")
        return tuple(
            Artifact(
                id=int(a["id"]),
                name=a["name"],
                size_in_bytes=int(a["size_in_bytes"]),
                expired=bool(a["expired"]),
                created_at=parse_time(a["created_at"]),
                run_id=(a.get("workflow_run") or {}).get("id"),
                head_branch=(a.get("workflow_run") or {}).get("head_branch"),
            )
            for a in items
        )

    def delete_artifact(self, artifact_id: int) -> bool:
        response = self._request(
            "DELETE",
            f"{self._base}/actions/artifacts/{artifact_id}",
            what=f"delete artifact {artifact_id}",
            ok=(404,),
        )
        return response.status == 204

    def list_caches(self, *, key: str | None = None, ref: str | None = None) -> tuple[Cache, ...]:
        params: dict[str, Any] = {"sort": "last_accessed_at", "direction": "desc"}
        if key:
            params["key"] = key
        if ref:
            params["ref"] = ref
        items = self._paginate(f"{self._base}/actions/caches", "list caches", params, key="actions_caches")
        return tuple(
            Cache(
                id=int(c["id"]),
                key=c["key"],
                ref=c["ref"],
                size_in_bytes=int(c["size_in_bytes"]),
                created_at=parse_time(c["created_at"]),
                last_accessed_at=parse_time(c["last_accessed_at"]),
            )
            for c in items
        )

    def delete_cache(self, cache_id: int) -> bool:
        response = self._request(
            "DELETE", f"{self._base}/actions/caches/{cache_id}", what=f"delete cache {cache_id}", ok=(404,)
        )
        return response.status == 204

    # -- packages ----------------------------------------------------------------------------------
    @staticmethod
    def _package_url(owner: PackageOwner, package_type: PackageType, package_name: str) -> str:
        root = "orgs" if owner.kind == "org" else "users"
        return f"/{root}/{quote(owner.login)}/packages/{package_type}/{quote(package_name, safe='')}"

    def list_package_versions(
        self, owner: PackageOwner, package_type: PackageType, package_name: str
    ) -> tuple[PackageVersion, ...]:
        items = self._paginate(
            f"{self._package_url(owner, package_type, package_name)}/versions",
            f"list versions of {package_type} package {package_name}",
            {"state": "active"},
            missing_ok=True,
        )
        return tuple(
            PackageVersion(
                id=int(v["id"]),
                name=v["name"],
                tags=tuple(((v.get("metadata") or {}).get("container") or {}).get("tags") or ()),
                created_at=parse_time(v["created_at"]),
                updated_at=parse_time(v["updated_at"]),
                html_url=v.get("html_url") or "",
            )
            for v in items
        )

    def delete_package_version(
        self, owner: PackageOwner, package_type: PackageType, package_name: str, version_id: int
    ) -> bool:
        response = self._request(
            "DELETE",
            f"{self._package_url(owner, package_type, package_name)}/versions/{version_id}",
            what=f"delete version {version_id} of {package_name}",
            ok=(404,),
        )
        return response.status == 204

    # -- code scanning and attestations ------------------------------------------------------------
    def upload_sarif(
        self,
        commit_sha: str,
        ref: str,
        sarif: bytes,
        *,
        tool_name: str | None = None,
        checkout_uri: str | None = None,
    ) -> SarifUpload:
        body: dict[str, Any] = {
            "commit_sha": commit_sha,
            "ref": ref,
            "sarif": base64.b64encode(gzip.compress(sarif, mtime=0)).decode("ascii"),
        }
        if tool_name:
            body["tool_name"] = tool_name
        if checkout_uri:
            body["checkout_uri"] = checkout_uri
        response = self._request(
            "POST",
            f"{self._base}/code-scanning/sarifs",
            what=f"upload SARIF for {commit_sha[:12]}",
            body=body,
            # GitHub replaces the analysis of the same commit/ref/tool: re-sending is harmless
            idempotent=True,
        )
        return SarifUpload(str(response.data.get("id", "")), response.data.get("url") or "")

    def create_attestation(self, bundle: Mapping[str, Any]) -> Attestation:
        digest = bundle_subject_digest(bundle)

        def lookup() -> Json | None:
            if not digest:
                return None
            for found in self._attestation_items(digest, is_lookup=True):
                if found.get("bundle") == dict(bundle):
                    return {"id": found.get("id", 0), "_found": True}
            return None

        response = self._request(
            "POST",
            f"{self._base}/attestations",
            what="create attestation",
            body={"bundle": dict(bundle)},
            idempotent=False,
            lookup=lookup,
        )
        return Attestation(int(response.data.get("id") or 0), digest, dict(bundle))

    def _attestation_items(self, digest: str, is_lookup: bool = False) -> list[Json]:
        items = self._paginate(
            f"{self._base}/attestations/{quote(digest, safe='')}",
            f"list attestations of {digest}",
            key="attestations",
            is_lookup=is_lookup,
            missing_ok=True,
        )
        return items

    def list_attestations(self, subject_digest: str) -> tuple[Attestation, ...]:
        return tuple(
            Attestation(int(a.get("id") or 0), subject_digest, a.get("bundle") or {})
            for a in self._attestation_items(subject_digest)
        )
