"""The local backend of :class:`~devops_agent.core.platform.Platform`: the SQLite state store.

``devops-agent run`` on a workstation uses it: issues, deployments, environments, approvals,
artifacts... are rows in ``<app>/.devops-agent/state.db`` (tables ``platform_*``, migration 2 of
``core/state.py``). It passes the same contract tests as the GitHub backend, so stages behave the
same in both places. What only exists on GitHub (workflow runs, caches, packages) starts empty and
can be recorded with the ``record_*`` methods (the local pipeline and tests use them).
"""

from __future__ import annotations

import fnmatch
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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
from devops_agent.core.state import StateStore

LOCAL_USER = "local"


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


def _t(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


class LocalPlatform(Platform):
    """Same interface, local SQLite storage. Make one with :meth:`for_app`."""

    kind = "local"

    def __init__(
        self,
        store: StateStore,
        *,
        repo: RepoRef | None = None,
        clock: Callable[[], float] = time.time,
        owns_store: bool = False,
    ) -> None:
        self.store = store
        self.repo = repo or RepoRef("local", store.path.parent.parent.name or "app")
        self._clock = clock
        self._owns_store = owns_store

    @classmethod
    def for_app(cls, app_dir: Path, *, repo: RepoRef | None = None) -> LocalPlatform:
        return cls(StateStore.for_app(app_dir), repo=repo, owns_store=True)

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    def stats(self) -> RequestStats:
        return RequestStats()

    @property
    def _db(self) -> sqlite3.Connection:
        return self.store.db

    def _now(self) -> float:
        return float(self._clock())

    # -- repository --------------------------------------------------------------------------------
    def _meta(self, key: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM platform_meta WHERE key = ?", (key,)).fetchone()
        return str(row["value"]) if row else default

    def set_default_branch(self, name: str) -> None:
        self._db.execute(
            "INSERT INTO platform_meta (key, value) VALUES ('default_branch', ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (name,),
        )

    def get_repository(self) -> Repository:
        return Repository(
            full_name=self.repo.full_name,
            default_branch=self._meta("default_branch", "main"),
            private=True,
            html_url=self.store.path.parent.parent.as_uri(),
            owner_kind="user",
            id=0,
        )

    # -- branches ----------------------------------------------------------------------------------
    def record_branch(
        self,
        name: str,
        sha: str,
        *,
        protected: bool = False,
        required_checks: Sequence[str] = (),
        commit_date: float | None = None,
    ) -> None:
        self._db.execute(
            "INSERT INTO platform_branches (name, sha, protected, required_checks, commit_date)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET sha = excluded.sha,"
            " protected = excluded.protected, required_checks = excluded.required_checks,"
            " commit_date = excluded.commit_date",
            (name, sha, int(protected), json.dumps(list(required_checks)), commit_date or self._now()),
        )

    def _branch(self, row: sqlite3.Row) -> Branch:
        return Branch(row["name"], row["sha"], bool(row["protected"]), _dt(row["commit_date"]))

    def list_branches(self) -> tuple[Branch, ...]:
        rows = self._db.execute("SELECT * FROM platform_branches ORDER BY name")
        return tuple(self._branch(r) for r in rows)

    def get_branch(self, name: str) -> Branch | None:
        row = self._db.execute("SELECT * FROM platform_branches WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._branch(row)

    def get_branch_protection(self, branch: str) -> BranchProtection | None:
        row = self._db.execute("SELECT * FROM platform_branches WHERE name = ?", (branch,)).fetchone()
        if row is None or not row["protected"]:
            return None
        return BranchProtection(
            branch=branch,
            required_status_checks=tuple(json.loads(row["required_checks"])),
            required_approving_review_count=1,
        )

    def delete_branch(self, name: str) -> bool:
        if name == self.get_repository().default_branch:
            raise PlatformError(f"cannot delete the default branch {name}", "choose another branch")
        return self._db.execute("DELETE FROM platform_branches WHERE name = ?", (name,)).rowcount > 0

    def record_pull_request(
        self, head: str, base: str = "main", *, title: str = "", state: str = "open"
    ) -> int:
        with self.store.transaction() as db:
            number = self._next_number(db)
            db.execute(
                "INSERT INTO platform_pulls (number, title, state, head_ref, base_ref, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (number, title or head, state, head, base, self._now()),
            )
        return number

    def list_pull_requests(
        self, *, state: IssueStateFilter = "open", head: str | None = None, base: str | None = None
    ) -> tuple[PullRequest, ...]:
        out = []
        for r in self._db.execute("SELECT * FROM platform_pulls ORDER BY number DESC"):
            if state != "all" and r["state"] != state:
                continue
            if (head and r["head_ref"] != head) or (base and r["base_ref"] != base):
                continue
            branch = self.get_branch(r["head_ref"])
            out.append(
                PullRequest(
                    r["number"],
                    r["title"],
                    r["state"],
                    r["head_ref"],
                    branch.sha if branch else "",
                    r["base_ref"],
                )
            )
        return tuple(out)

    # -- issues ------------------------------------------------------------------------------------
    @staticmethod
    def _next_number(db: sqlite3.Connection) -> int:
        """Issues and pull requests share one number sequence, as on GitHub."""
        row = db.execute(
            "SELECT MAX(n) FROM (SELECT MAX(number) AS n FROM platform_issues"
            " UNION ALL SELECT MAX(number) FROM platform_pulls)"
        ).fetchone()
        return int(row[0] or 0) + 1

    @staticmethod
    def _issue(r: sqlite3.Row) -> Issue:
        return Issue(
            number=r["number"],
            title=r["title"],
            body=r["body"],
            state="closed" if r["state"] == "closed" else "open",
            labels=tuple(json.loads(r["labels"])),
            created_at=_t(r["created_at"]),
            updated_at=_t(r["updated_at"]),
            closed_at=_dt(r["closed_at"]),
            html_url="",
            assignees=tuple(json.loads(r["assignees"])),
            comments=int(r["comments"]),
        )

    _ISSUE_SELECT = (
        "SELECT i.*, (SELECT COUNT(*) FROM platform_comments c WHERE c.issue = i.number) AS comments"
        " FROM platform_issues i"
    )

    def list_issues(
        self, *, labels: Sequence[str] = (), state: IssueStateFilter = "open"
    ) -> tuple[Issue, ...]:
        rows = self._db.execute(f"{self._ISSUE_SELECT} ORDER BY i.number DESC")
        issues = (self._issue(r) for r in rows)
        return tuple(
            i for i in issues if state in ("all", i.state) and all(lbl in i.labels for lbl in labels)
        )

    def get_issue(self, number: int) -> Issue | None:
        row = self._db.execute(f"{self._ISSUE_SELECT} WHERE i.number = ?", (number,)).fetchone()
        return None if row is None else self._issue(row)

    def find_issue_by_key(
        self, key: str, *, labels: Sequence[str] = (), state: IssueStateFilter = "all"
    ) -> Issue | None:
        return next((i for i in self.list_issues(labels=labels, state=state) if i.key == key), None)

    def _ensure_labels(self, db: sqlite3.Connection, names: Sequence[str]) -> None:
        for name in names:
            db.execute(
                "INSERT OR IGNORE INTO platform_labels (name, color, description) VALUES (?, 'ededed', '')",
                (name,),
            )

    def create_issue(
        self,
        title: str,
        body: str,
        *,
        labels: Sequence[str] = (),
        assignees: Sequence[str] = (),
        key: str | None = None,
    ) -> Issue:
        if not title.strip():
            raise ConfigError("an issue needs a title", "give a non-empty title", field="title")
        with self.store.transaction() as db:
            if key is not None:
                row = db.execute(
                    "SELECT number FROM platform_issues WHERE key = ? ORDER BY number DESC", (key,)
                )
                for r in row:
                    existing = self.get_issue(r["number"])
                    if existing and all(lbl in existing.labels for lbl in labels):
                        return existing
            number = self._next_number(db)
            now = self._now()
            self._ensure_labels(db, labels)
            db.execute(
                "INSERT INTO platform_issues (number, title, body, state, labels, assignees, key,"
                " created_at, updated_at) VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?)",
                (
                    number,
                    title,
                    with_key(body, key),
                    json.dumps(list(dict.fromkeys(labels))),
                    json.dumps(list(assignees)),
                    key,
                    now,
                    now,
                ),
            )
        issue = self.get_issue(number)
        assert issue is not None
        return issue

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
        with self.store.transaction() as db:
            row = db.execute("SELECT * FROM platform_issues WHERE number = ?", (number,)).fetchone()
            if row is None:
                raise PlatformError(f"update issue #{number}: not found", "check the issue number")
            values: dict[str, Any] = {"updated_at": self._now()}
            if title is not None:
                values["title"] = title
            if body is not None:
                values["body"] = body
                values["key"] = body_key(body)
            if labels is not None:
                self._ensure_labels(db, labels)
                values["labels"] = json.dumps(list(dict.fromkeys(labels)))
            if state is not None and state != row["state"]:
                values["state"] = state
                values["closed_at"] = self._now() if state == "closed" else None
                values["state_reason"] = (state_reason or "completed") if state == "closed" else "reopened"
            elif state_reason is not None:
                values["state_reason"] = state_reason
            assignments = ", ".join(f"{k} = ?" for k in values)
            sql = f"UPDATE platform_issues SET {assignments} WHERE number = ?"  # noqa: S608 - our columns
            db.execute(sql, (*values.values(), number))
        issue = self.get_issue(number)
        assert issue is not None
        return issue

    def add_labels(self, number: int, labels: Sequence[str]) -> tuple[str, ...]:
        issue = self.get_issue(number)
        if issue is None:
            raise PlatformError(f"label issue #{number}: not found", "check the issue number")
        merged = tuple(dict.fromkeys((*issue.labels, *labels)))
        return self.update_issue(number, labels=merged).labels

    @staticmethod
    def _comment(r: sqlite3.Row) -> Comment:
        return Comment(r["id"], r["body"], _t(r["created_at"]), r["author"], "")

    def add_comment(self, number: int, body: str, *, key: str | None = None) -> Comment:
        with self.store.transaction() as db:
            if db.execute("SELECT 1 FROM platform_issues WHERE number = ?", (number,)).fetchone() is None:
                raise PlatformError(f"comment on issue #{number}: not found", "check the issue number")
            if key is not None:
                row = db.execute(
                    "SELECT * FROM platform_comments WHERE issue = ? AND key = ? ORDER BY id LIMIT 1",
                    (number, key),
                ).fetchone()
                if row is not None:
                    return self._comment(row)
            cur = db.execute(
                "INSERT INTO platform_comments (issue, body, author, key, created_at) VALUES (?, ?, ?, ?, ?)",
                (number, with_key(body, key), LOCAL_USER, key, self._now()),
            )
            db.execute("UPDATE platform_issues SET updated_at = ? WHERE number = ?", (self._now(), number))
            row = db.execute("SELECT * FROM platform_comments WHERE id = ?", (cur.lastrowid,)).fetchone()
        return self._comment(row)

    def list_comments(self, number: int) -> tuple[Comment, ...]:
        rows = self._db.execute("SELECT * FROM platform_comments WHERE issue = ? ORDER BY id", (number,))
        return tuple(self._comment(r) for r in rows)

    def list_labels(self) -> tuple[Label, ...]:
        rows = self._db.execute("SELECT * FROM platform_labels ORDER BY name")
        return tuple(Label(r["name"], r["color"], r["description"]) for r in rows)

    def create_label(self, name: str, *, color: str = "ededed", description: str = "") -> Label:
        self._db.execute(
            "INSERT OR IGNORE INTO platform_labels (name, color, description) VALUES (?, ?, ?)",
            (name, color.lstrip("#"), description),
        )
        row = self._db.execute("SELECT * FROM platform_labels WHERE name = ?", (name,)).fetchone()
        return Label(row["name"], row["color"], row["description"])

    # -- deployments -------------------------------------------------------------------------------
    @staticmethod
    def _deployment(r: sqlite3.Row) -> Deployment:
        return Deployment(
            id=r["id"],
            sha=r["sha"],
            ref=r["ref"],
            environment=r["environment"],
            task=r["task"],
            payload=json.loads(r["payload"]),
            description=r["description"],
            created_at=_t(r["created_at"]),
            updated_at=_t(r["updated_at"]),
            production_environment=bool(r["production"]),
            transient_environment=bool(r["transient"]),
            creator=LOCAL_USER,
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
        with self.store.transaction() as db:
            if key is not None:
                row = db.execute(
                    "SELECT * FROM platform_deployments WHERE key = ? AND environment = ? AND ref = ?"
                    " AND task = ?"
                    " ORDER BY id DESC LIMIT 1",
                    (key, environment, ref, task),
                ).fetchone()
                if row is not None:
                    return self._deployment(row)
            branch = db.execute("SELECT sha FROM platform_branches WHERE name = ?", (ref,)).fetchone()
            sha = branch["sha"] if branch else ref
            body = {**dict(payload or {}), **({DEPLOYMENT_KEY_FIELD: key} if key else {})}
            production = (
                environment == "production" if production_environment is None else production_environment
            )
            now = self._now()
            cur = db.execute(
                "INSERT INTO platform_deployments (sha, ref, environment, task, payload, description,"
                " production, transient, key, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sha,
                    ref,
                    environment,
                    task,
                    json.dumps(body, sort_keys=True),
                    description,
                    int(production),
                    int(transient_environment),
                    key,
                    now,
                    now,
                ),
            )
            row = db.execute("SELECT * FROM platform_deployments WHERE id = ?", (cur.lastrowid,)).fetchone()
        return self._deployment(row)

    def list_deployments(
        self,
        *,
        environment: str | None = None,
        sha: str | None = None,
        ref: str | None = None,
        task: str | None = None,
        limit: int | None = None,
    ) -> tuple[Deployment, ...]:
        clauses, args = [], []
        for column, value in (("environment", environment), ("sha", sha), ("ref", ref), ("task", task)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM platform_deployments{where} ORDER BY id DESC"  # noqa: S608 - our columns
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return tuple(self._deployment(r) for r in self._db.execute(sql, args))

    def get_deployment(self, deployment_id: int) -> Deployment | None:
        row = self._db.execute("SELECT * FROM platform_deployments WHERE id = ?", (deployment_id,)).fetchone()
        return None if row is None else self._deployment(row)

    @staticmethod
    def _status(r: sqlite3.Row) -> DeploymentStatus:
        return DeploymentStatus(
            id=r["id"],
            deployment_id=r["deployment_id"],
            state=r["state"],
            description=r["description"],
            environment=r["environment"],
            created_at=_t(r["created_at"]),
            environment_url=r["environment_url"],
            log_url=r["log_url"],
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
        now = self._now()
        with self.store.transaction() as db:
            dep = db.execute("SELECT * FROM platform_deployments WHERE id = ?", (deployment_id,)).fetchone()
            if dep is None:
                raise PlatformError(f"deployment {deployment_id} not found", "check the deployment id")
            cur = db.execute(
                "INSERT INTO platform_deployment_statuses (deployment_id, state, description, environment,"
                " environment_url, log_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (deployment_id, state, description[:140], dep["environment"], environment_url, log_url, now),
            )
            db.execute("UPDATE platform_deployments SET updated_at = ? WHERE id = ?", (now, deployment_id))
            if state == "success" and auto_inactive:
                others = db.execute(
                    "SELECT d.id FROM platform_deployments d WHERE d.environment = ? AND d.id != ? AND"
                    " (SELECT s.state FROM platform_deployment_statuses s WHERE s.deployment_id = d.id"
                    "  ORDER BY s.id DESC LIMIT 1) = 'success'",
                    (dep["environment"], deployment_id),
                ).fetchall()
                for other in others:
                    db.execute(
                        "INSERT INTO platform_deployment_statuses (deployment_id, state, description,"
                        " environment, created_at) VALUES (?, 'inactive', '', ?, ?)",
                        (other["id"], dep["environment"], now),
                    )
            row = db.execute(
                "SELECT * FROM platform_deployment_statuses WHERE id = ?", (cur.lastrowid,)
            ).fetchone()
        return self._status(row)

    def list_deployment_statuses(self, deployment_id: int) -> tuple[DeploymentStatus, ...]:
        rows = self._db.execute(
            "SELECT * FROM platform_deployment_statuses WHERE deployment_id = ? ORDER BY id DESC",
            (deployment_id,),
        )
        return tuple(self._status(r) for r in rows)

    # -- environments ------------------------------------------------------------------------------
    @staticmethod
    def _spec_json(spec: EnvironmentSpec) -> str:
        policy = spec.deployment_branch_policy
        return json.dumps(
            {
                "reviewers": [[r.type, r.id, r.login] for r in spec.reviewers],
                "wait_timer": spec.wait_timer,
                "prevent_self_review": spec.prevent_self_review,
                "can_admins_bypass": spec.can_admins_bypass,
                "deployment_branch_policy": None
                if policy is None
                else [policy.protected_branches, policy.custom_branch_policies],
                "branch_policies": sorted([p.type, p.name] for p in spec.branch_policies)
                if policy is not None and policy.custom_branch_policies
                else [],
            },
            sort_keys=True,
        )

    @staticmethod
    def _environment(r: sqlite3.Row) -> Environment:
        data = json.loads(r["spec"])
        policy = data["deployment_branch_policy"]
        return Environment(
            name=r["name"],
            id=r["id"],
            reviewers=tuple(Reviewer(t, int(i), login) for t, i, login in data["reviewers"]),
            wait_timer=int(data["wait_timer"]),
            prevent_self_review=bool(data["prevent_self_review"]),
            can_admins_bypass=bool(data["can_admins_bypass"]),
            deployment_branch_policy=None
            if policy is None
            else DeploymentBranchPolicy(bool(policy[0]), bool(policy[1])),
            branch_policies=tuple(
                BranchPolicy(name, kind, r["id"] * 1000 + n)
                for n, (kind, name) in enumerate(data["branch_policies"])
            ),
            created_at=_t(r["created_at"]),
            updated_at=_t(r["updated_at"]),
        )

    def list_environments(self) -> tuple[Environment, ...]:
        return tuple(
            self._environment(r)
            for r in self._db.execute("SELECT * FROM platform_environments ORDER BY name")
        )

    def get_environment(self, name: str) -> Environment | None:
        row = self._db.execute("SELECT * FROM platform_environments WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._environment(row)

    def put_environment(self, spec: EnvironmentSpec) -> Environment:
        for reviewer in spec.reviewers:
            known = self._db.execute(
                "SELECT 1 FROM platform_reviewers WHERE type = ? AND id = ?", (reviewer.type, reviewer.id)
            ).fetchone()
            if known is None:
                raise PlatformError(
                    f"environment {spec.name}: reviewer {reviewer.type} {reviewer.id} is unknown",
                    "resolve reviewers with resolve_reviewer() first",
                )
        now = self._now()
        self._db.execute(
            "INSERT INTO platform_environments (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
            (spec.name, self._spec_json(spec), now, now),
        )
        env = self.get_environment(spec.name)
        assert env is not None
        return env

    def record_reviewer(self, type_: ReviewerType, name: str) -> Reviewer:
        """Register a local user/team that can be named as a reviewer (ids are stable per name)."""
        if type_ == "Team" and "/" not in name:
            name = f"{self.repo.owner}/{name}"  # the same name resolve_reviewer() looks up
        row = self._db.execute(
            "SELECT id FROM platform_reviewers WHERE type = ? AND name = ?", (type_, name)
        ).fetchone()
        if row is None:
            next_id = self._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM platform_reviewers").fetchone()[
                0
            ]
            self._db.execute(
                "INSERT INTO platform_reviewers (type, name, id) VALUES (?, ?, ?)", (type_, name, next_id)
            )
            return Reviewer(type_, int(next_id), name.rpartition("/")[2])
        return Reviewer(type_, int(row["id"]), name.rpartition("/")[2])

    def resolve_reviewer(self, type_: ReviewerType, name: str) -> Reviewer:
        lookup = name if type_ == "User" or "/" in name else f"{self.repo.owner}/{name}"
        row = self._db.execute(
            "SELECT id FROM platform_reviewers WHERE type = ? AND name = ?", (type_, lookup)
        ).fetchone()
        if row is None:
            raise PlatformError(
                f"reviewer {type_.lower()} {name!r} does not exist",
                "check the name (locally, reviewers are recorded with record_reviewer)",
            )
        return Reviewer(type_, int(row["id"]), lookup.rpartition("/")[2])

    # -- workflow runs, pending deployments ----------------------------------------------------------
    def record_workflow_run(
        self,
        workflow: str,
        *,
        branch: str = "main",
        sha: str = "",
        event: str = "push",
        status: str = "completed",
        conclusion: str | None = "success",
        waiting_on: Sequence[str] = (),
        jobs: Sequence[tuple[str, str | None]] = (("build", "success"),),
        created_at: float | None = None,
    ) -> int:
        """Record a run (the local pipeline records its own runs here)."""
        now = created_at if created_at is not None else self._now()
        with self.store.transaction() as db:
            number = db.execute(
                "SELECT COUNT(*) + 1 FROM platform_runs WHERE workflow = ?", (workflow,)
            ).fetchone()[0]
            cur = db.execute(
                "INSERT INTO platform_runs (workflow, head_branch, head_sha, event, status, conclusion,"
                " run_number, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    workflow,
                    branch,
                    sha or f"{number:040x}",
                    event,
                    "waiting" if waiting_on else status,
                    None if waiting_on else conclusion,
                    number,
                    now,
                    now,
                ),
            )
            run_id = int(cur.lastrowid or 0)
            for name, job_conclusion in jobs:
                db.execute(
                    "INSERT INTO platform_jobs (run_id, name, status, conclusion, started_at, completed_at)"
                    " VALUES (?, ?, 'completed', ?, ?, ?)",
                    (run_id, name, job_conclusion, now, now),
                )
            for env in waiting_on:
                db.execute(
                    "INSERT INTO platform_pending (run_id, environment, started_at) VALUES (?, ?, ?)",
                    (run_id, env, now),
                )
        for env in waiting_on:
            if self.get_environment(env) is None:
                self.put_environment(EnvironmentSpec(env))
        return run_id

    def finish_workflow_run(self, run_id: int, conclusion: str) -> None:
        self._db.execute(
            "UPDATE platform_runs SET status = 'completed', conclusion = ?, updated_at = ? WHERE id = ?",
            (conclusion, self._now(), run_id),
        )

    @staticmethod
    def _run(r: sqlite3.Row) -> WorkflowRun:
        return WorkflowRun(
            id=r["id"],
            name=r["workflow"],
            workflow_id=0,
            head_branch=r["head_branch"],
            head_sha=r["head_sha"],
            event=r["event"],
            status=r["status"],
            conclusion=r["conclusion"],
            run_number=r["run_number"],
            run_attempt=r["run_attempt"],
            created_at=_t(r["created_at"]),
            updated_at=_t(r["updated_at"]),
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
        rows = self._db.execute(
            "SELECT * FROM platform_runs WHERE workflow = ? ORDER BY created_at DESC, id DESC",
            (str(workflow),),
        )
        out = [
            self._run(r)
            for r in rows
            if branch in (None, r["head_branch"])
            and event in (None, r["event"])
            and status in (None, r["status"], r["conclusion"])
        ][:1000]
        return tuple(out[:limit] if limit is not None else out)

    def get_workflow_run(self, run_id: int) -> WorkflowRun | None:
        row = self._db.execute("SELECT * FROM platform_runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else self._run(row)

    def list_jobs(self, run_id: int) -> tuple[Job, ...]:
        rows = self._db.execute("SELECT * FROM platform_jobs WHERE run_id = ? ORDER BY id", (run_id,))
        return tuple(
            Job(
                r["id"],
                r["run_id"],
                r["name"],
                r["status"],
                r["conclusion"],
                _dt(r["started_at"]),
                _dt(r["completed_at"]),
            )
            for r in rows
        )

    def list_pending_deployments(self, run_id: int) -> tuple[PendingDeployment, ...]:
        out = []
        rows = self._db.execute(
            "SELECT * FROM platform_pending WHERE run_id = ? ORDER BY environment", (run_id,)
        )
        for r in rows:
            env = self.get_environment(r["environment"])
            if env is None:
                continue
            out.append(
                PendingDeployment(
                    environment=env.name,
                    environment_id=env.id,
                    wait_timer=env.wait_timer,
                    wait_timer_started_at=_t(r["started_at"]),
                    current_user_can_approve=True,
                    reviewers=env.reviewers,
                )
            )
        return tuple(out)

    def review_pending_deployments(
        self, run_id: int, environment_ids: Sequence[int], state: ReviewState, comment: str
    ) -> tuple[Deployment, ...]:
        if not comment.strip():
            raise ConfigError("a review needs a comment", "pass --comment 'why'", field="comment")
        pending = {p.environment_id: p for p in self.list_pending_deployments(run_id)}
        missing = [i for i in environment_ids if i not in pending]
        if not environment_ids or missing:
            raise PlatformError(
                f"run {run_id} has no pending deployment for environment id(s) {missing or '[]'}",
                "list them with `devops-agent pending --run ID`",
            )
        run = self.get_workflow_run(run_id)
        assert run is not None
        out = []
        for env_id in environment_ids:
            name = pending[env_id].environment
            self._db.execute(
                "DELETE FROM platform_pending WHERE run_id = ? AND environment = ?", (run_id, name)
            )
            self._db.execute(
                "INSERT INTO platform_reviews (run_id, environment, state, comment, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (run_id, name, state, comment, self._now()),
            )
            if state == "approved":
                out.append(
                    self.create_deployment(run.head_sha, name, description=f"approved: {comment}"[:140])
                )
        if not self.list_pending_deployments(run_id):
            if state == "approved":
                self._db.execute("UPDATE platform_runs SET status = 'in_progress' WHERE id = ?", (run_id,))
            else:
                self._db.execute(
                    "UPDATE platform_runs SET status = 'completed', conclusion = 'failure' WHERE id = ?",
                    (run_id,),
                )
        return tuple(out)

    # -- artifacts and caches ------------------------------------------------------------------------
    def record_artifact(
        self, name: str, size_in_bytes: int, *, run_id: int | None = None, created_at: float | None = None
    ) -> int:
        cur = self._db.execute(
            "INSERT INTO platform_artifacts (name, size_in_bytes, run_id, created_at) VALUES (?, ?, ?, ?)",
            (name, size_in_bytes, run_id, created_at if created_at is not None else self._now()),
        )
        return int(cur.lastrowid or 0)

    def list_artifacts(self, *, name: str | None = None) -> tuple[Artifact, ...]:
        rows = self._db.execute("SELECT * FROM platform_artifacts ORDER BY id DESC")
        return tuple(
            Artifact(
                r["id"],
                r["name"],
                r["size_in_bytes"],
                bool(r["expired"]),
                _t(r["created_at"]),
                r["run_id"],
                r["head_branch"],
            )
            for r in rows
            if name in (None, r["name"])
        )

    def delete_artifact(self, artifact_id: int) -> bool:
        return self._db.execute("DELETE FROM platform_artifacts WHERE id = ?", (artifact_id,)).rowcount > 0

    def record_cache(
        self, key: str, *, ref: str = "refs/heads/main", size_in_bytes: int = 0, at: float | None = None
    ) -> int:
        when = at if at is not None else self._now()
        cur = self._db.execute(
            "INSERT INTO platform_caches (key, ref, size_in_bytes, created_at, last_accessed_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (key, ref, size_in_bytes, when, when),
        )
        return int(cur.lastrowid or 0)

    def list_caches(self, *, key: str | None = None, ref: str | None = None) -> tuple[Cache, ...]:
        rows = self._db.execute("SELECT * FROM platform_caches ORDER BY last_accessed_at DESC, id DESC")
        return tuple(
            Cache(
                r["id"],
                r["key"],
                r["ref"],
                r["size_in_bytes"],
                _t(r["created_at"]),
                _t(r["last_accessed_at"]),
            )
            for r in rows
            if r["key"].startswith(key or "") and ref in (None, r["ref"])
        )

    def delete_cache(self, cache_id: int) -> bool:
        return self._db.execute("DELETE FROM platform_caches WHERE id = ?", (cache_id,)).rowcount > 0

    # -- packages ------------------------------------------------------------------------------------
    def record_package_version(
        self,
        owner: PackageOwner,
        package_type: PackageType,
        package_name: str,
        name: str,
        tags: Sequence[str] = (),
        *,
        created_at: float | None = None,
    ) -> int:
        when = created_at if created_at is not None else self._now()
        cur = self._db.execute(
            "INSERT INTO platform_package_versions (owner_kind, owner, package_type, package_name, name,"
            " tags, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (owner.kind, owner.login, package_type, package_name, name, json.dumps(list(tags)), when, when),
        )
        return int(cur.lastrowid or 0)

    def list_package_versions(
        self, owner: PackageOwner, package_type: PackageType, package_name: str
    ) -> tuple[PackageVersion, ...]:
        rows = self._db.execute(
            "SELECT * FROM platform_package_versions WHERE owner_kind = ? AND owner = ? AND package_type = ?"
            " AND package_name = ? ORDER BY id DESC",
            (owner.kind, owner.login, package_type, package_name),
        )
        return tuple(
            PackageVersion(
                r["id"], r["name"], tuple(json.loads(r["tags"])), _t(r["created_at"]), _t(r["updated_at"])
            )
            for r in rows
        )

    def delete_package_version(
        self, owner: PackageOwner, package_type: PackageType, package_name: str, version_id: int
    ) -> bool:
        cur = self._db.execute(
            "DELETE FROM platform_package_versions WHERE id = ? AND owner_kind = ? AND owner = ?"
            " AND package_type = ? AND package_name = ?",
            (version_id, owner.kind, owner.login, package_type, package_name),
        )
        return cur.rowcount > 0

    # -- code scanning and attestations --------------------------------------------------------------
    def upload_sarif(
        self,
        commit_sha: str,
        ref: str,
        sarif: bytes,
        *,
        tool_name: str | None = None,
        checkout_uri: str | None = None,
    ) -> SarifUpload:
        try:
            json.loads(sarif)
        except ValueError as exc:
            raise PlatformError(
                f"upload SARIF: not JSON ({exc})", "pass the SARIF document's bytes"
            ) from None
        cur = self._db.execute(
            "INSERT INTO platform_sarifs (commit_sha, ref, tool_name, document, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (commit_sha, ref, tool_name, sarif, self._now()),
        )
        return SarifUpload(f"local-{cur.lastrowid}")

    def create_attestation(self, bundle: Mapping[str, Any]) -> Attestation:
        digest = bundle_subject_digest(bundle)
        text = json.dumps(dict(bundle), sort_keys=True)
        row = self._db.execute(
            "SELECT id FROM platform_attestations WHERE subject_digest = ? AND bundle = ?", (digest, text)
        ).fetchone()
        if row is None:
            cur = self._db.execute(
                "INSERT INTO platform_attestations (subject_digest, bundle, created_at) VALUES (?, ?, ?)",
                (digest, text, self._now()),
            )
            return Attestation(int(cur.lastrowid or 0), digest, dict(bundle))
        return Attestation(int(row["id"]), digest, dict(bundle))

    def list_attestations(self, subject_digest: str) -> tuple[Attestation, ...]:
        rows = self._db.execute(
            "SELECT * FROM platform_attestations WHERE subject_digest = ? ORDER BY id", (subject_digest,)
        )
        return tuple(Attestation(r["id"], r["subject_digest"], json.loads(r["bundle"])) for r in rows)


def branch_allowed(env: Environment, ref: str, *, is_tag: bool = False, protected: bool = False) -> bool:
    """Whether ``ref`` may deploy to ``env`` under its deployment branch policy (GitHub's rules)."""
    policy = env.deployment_branch_policy
    if policy is None:
        return True
    if policy.protected_branches:
        return protected and not is_tag
    kind = "tag" if is_tag else "branch"
    return any(p.type == kind and fnmatch.fnmatchcase(ref, p.name) for p in env.branch_policies)
