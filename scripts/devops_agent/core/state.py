"""The local state store: SQLite in ``<app>/.devops-agent/state.db``.

Runs, artifacts and deployments are recorded here by the local pipeline; the local platform
backend keeps its issues/environments/... here too. Schema changes are appended to MIGRATIONS
(never edited), applied in order and tracked with ``PRAGMA user_version``.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devops_agent.core.errors import PlatformError

STATE_DIR = ".devops-agent"
DB_NAME = "state.db"

MIGRATIONS: list[str] = [
    # 1: runs, artifacts, deployments
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        started_at REAL NOT NULL,
        finished_at REAL,
        status TEXT NOT NULL,            -- running | success | failure | cancelled
        version TEXT,
        commit_sha TEXT,
        branch TEXT,
        details TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE artifacts (
        run_id TEXT NOT NULL REFERENCES runs(id),
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    CREATE INDEX artifacts_sha256 ON artifacts(sha256);
    CREATE TABLE deployments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        environment TEXT NOT NULL,
        digest TEXT NOT NULL,
        version TEXT,
        run_id TEXT,
        status TEXT NOT NULL,            -- pending | in_progress | success | failure | inactive
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        details TEXT NOT NULL DEFAULT '{}',
        UNIQUE (environment, digest, run_id)
    );
    """,
    # 2: the local platform backend (devops_agent.platform.local): GitHub's objects, kept locally
    """
    CREATE TABLE platform_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE platform_branches (
        name TEXT PRIMARY KEY,
        sha TEXT NOT NULL,
        protected INTEGER NOT NULL DEFAULT 0,
        required_checks TEXT NOT NULL DEFAULT '[]',
        commit_date REAL
    );
    CREATE TABLE platform_pulls (
        number INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        state TEXT NOT NULL,
        head_ref TEXT NOT NULL,
        base_ref TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE platform_issues (
        number INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        state TEXT NOT NULL,
        state_reason TEXT,
        labels TEXT NOT NULL DEFAULT '[]',
        assignees TEXT NOT NULL DEFAULT '[]',
        key TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        closed_at REAL
    );
    CREATE INDEX platform_issues_key ON platform_issues(key);
    CREATE TABLE platform_comments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        issue INTEGER NOT NULL REFERENCES platform_issues(number),
        body TEXT NOT NULL,
        author TEXT NOT NULL,
        key TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE platform_labels (
        name TEXT PRIMARY KEY,
        color TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE platform_deployments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sha TEXT NOT NULL,
        ref TEXT NOT NULL,
        environment TEXT NOT NULL,
        task TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}',
        description TEXT NOT NULL DEFAULT '',
        production INTEGER NOT NULL DEFAULT 0,
        transient INTEGER NOT NULL DEFAULT 0,
        key TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX platform_deployments_env ON platform_deployments(environment, sha);
    CREATE TABLE platform_deployment_statuses (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        deployment_id INTEGER NOT NULL REFERENCES platform_deployments(id),
        state TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        environment TEXT NOT NULL,
        environment_url TEXT NOT NULL DEFAULT '',
        log_url TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE TABLE platform_environments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE platform_reviewers (
        type TEXT NOT NULL,
        name TEXT NOT NULL,
        id INTEGER NOT NULL,
        PRIMARY KEY (type, name)
    );
    CREATE TABLE platform_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workflow TEXT NOT NULL,
        head_branch TEXT NOT NULL,
        head_sha TEXT NOT NULL,
        event TEXT NOT NULL,
        status TEXT NOT NULL,
        conclusion TEXT,
        run_number INTEGER NOT NULL,
        run_attempt INTEGER NOT NULL DEFAULT 1,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE platform_jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES platform_runs(id),
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        conclusion TEXT,
        started_at REAL,
        completed_at REAL
    );
    CREATE TABLE platform_pending (
        run_id INTEGER NOT NULL REFERENCES platform_runs(id),
        environment TEXT NOT NULL,
        started_at REAL NOT NULL,
        PRIMARY KEY (run_id, environment)
    );
    CREATE TABLE platform_reviews (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL,
        environment TEXT NOT NULL,
        state TEXT NOT NULL,
        comment TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE platform_artifacts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        size_in_bytes INTEGER NOT NULL,
        run_id INTEGER,
        head_branch TEXT,
        expired INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE platform_caches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        ref TEXT NOT NULL,
        size_in_bytes INTEGER NOT NULL,
        created_at REAL NOT NULL,
        last_accessed_at REAL NOT NULL
    );
    CREATE TABLE platform_package_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        owner_kind TEXT NOT NULL,
        owner TEXT NOT NULL,
        package_type TEXT NOT NULL,
        package_name TEXT NOT NULL,
        name TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE platform_sarifs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        commit_sha TEXT NOT NULL,
        ref TEXT NOT NULL,
        tool_name TEXT,
        document BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE platform_attestations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        subject_digest TEXT NOT NULL,
        bundle TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX platform_attestations_digest ON platform_attestations(subject_digest);
    """,
]


def state_dir(app_dir: Path) -> Path:
    return app_dir / STATE_DIR


@dataclass(frozen=True)
class RunRecord:
    id: str
    started_at: float
    status: str
    version: str | None
    finished_at: float | None
    details: Mapping[str, Any]


@dataclass(frozen=True)
class ArtifactRecord:
    run_id: str
    name: str
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DeploymentRecord:
    id: int
    environment: str
    digest: str
    version: str | None
    run_id: str | None
    status: str
    created_at: float
    updated_at: float
    details: Mapping[str, Any]


class StateStore:
    """A small typed wrapper around one SQLite file. Safe to open many times."""

    def __init__(self, path: Path, *, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        gitignore = path.parent / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("# devops-agent local state: never commit\n*\n", encoding="utf-8")
        try:
            self._db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise PlatformError(
                f"cannot open state store {path}: {exc}", "check the directory is writable"
            ) from None
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._migrate()

    @classmethod
    def for_app(cls, app_dir: Path) -> StateStore:
        return cls(state_dir(app_dir) / DB_NAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        current = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if current > len(MIGRATIONS):
            raise PlatformError(
                f"state store {self.path} has schema version {current}, newer than this "
                f"devops-agent understands ({len(MIGRATIONS)})",
                "upgrade devops-agent, or move the .devops-agent directory aside",
            )
        for version in range(current, len(MIGRATIONS)):
            with self.transaction() as db:
                for statement in _split_sql(MIGRATIONS[version]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")

    # -- runs ------------------------------------------------------------------------------
    def start_run(
        self,
        *,
        version: str | None = None,
        commit_sha: str | None = None,
        branch: str | None = None,
        run_id: str | None = None,
    ) -> str:
        run_id = run_id or f"local-{uuid.uuid4().hex[:12]}"
        self._db.execute(
            "INSERT OR IGNORE INTO runs (id, started_at, status, version, commit_sha, branch)"
            " VALUES (?, ?, 'running', ?, ?, ?)",
            (run_id, self._clock(), version, commit_sha, branch),
        )
        return run_id

    def finish_run(self, run_id: str, status: str, details: Mapping[str, Any] | None = None) -> None:
        self._db.execute(
            "UPDATE runs SET status = ?, finished_at = ?, details = ? WHERE id = ?",
            (status, self._clock(), json.dumps(dict(details or {}), sort_keys=True), run_id),
        )

    def set_run_version(self, run_id: str, version: str) -> None:
        self._db.execute("UPDATE runs SET version = ? WHERE id = ?", (version, run_id))

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        return RunRecord(
            row["id"],
            row["started_at"],
            row["status"],
            row["version"],
            row["finished_at"],
            json.loads(row["details"]),
        )

    def runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self._db.execute("SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,))
        return [
            RunRecord(
                r["id"],
                r["started_at"],
                r["status"],
                r["version"],
                r["finished_at"],
                json.loads(r["details"]),
            )
            for r in rows
        ]

    # -- artifacts -------------------------------------------------------------------------
    def record_artifact(self, run_id: str, name: str, path: str, sha256: str, size: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO artifacts (run_id, name, path, sha256, size, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, name, path, sha256, size, self._clock()),
        )

    def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        rows = self._db.execute("SELECT * FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,))
        return [ArtifactRecord(r["run_id"], r["name"], r["path"], r["sha256"], r["size"]) for r in rows]

    def find_artifact(self, sha256: str) -> ArtifactRecord | None:
        row = self._db.execute(
            "SELECT * FROM artifacts WHERE sha256 = ? ORDER BY created_at DESC LIMIT 1", (sha256,)
        ).fetchone()
        if row is None:
            return None
        return ArtifactRecord(row["run_id"], row["name"], row["path"], row["sha256"], row["size"])

    # -- deployments -----------------------------------------------------------------------
    def record_deployment(
        self,
        environment: str,
        digest: str,
        *,
        version: str | None,
        run_id: str | None,
        status: str,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Create or update the deployment of (environment, digest, run): idempotent on re-run."""
        now = self._clock()
        payload = json.dumps(dict(details or {}), sort_keys=True)
        with self.transaction() as db:
            row = db.execute(
                "SELECT id FROM deployments WHERE environment = ? AND digest = ? AND run_id IS ?",
                (environment, digest, run_id),
            ).fetchone()
            if row is not None:
                db.execute(
                    "UPDATE deployments SET status = ?, updated_at = ?, details = ? WHERE id = ?",
                    (status, now, payload, row["id"]),
                )
                return int(row["id"])
            cur = db.execute(
                "INSERT INTO deployments (environment, digest, version, run_id, status, created_at,"
                " updated_at, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (environment, digest, version, run_id, status, now, now, payload),
            )
            return int(cur.lastrowid or 0)

    def update_deployment(
        self, deployment_id: int, status: str, details: Mapping[str, Any] | None = None
    ) -> None:
        if details is None:
            self._db.execute(
                "UPDATE deployments SET status = ?, updated_at = ? WHERE id = ?",
                (status, self._clock(), deployment_id),
            )
        else:
            self._db.execute(
                "UPDATE deployments SET status = ?, updated_at = ?, details = ? WHERE id = ?",
                (status, self._clock(), json.dumps(dict(details), sort_keys=True), deployment_id),
            )

    def deployments(self, environment: str | None = None, limit: int = 100) -> list[DeploymentRecord]:
        if environment is None:
            rows = self._db.execute("SELECT * FROM deployments ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._db.execute(
                "SELECT * FROM deployments WHERE environment = ? ORDER BY id DESC LIMIT ?",
                (environment, limit),
            )
        return [_deployment(r) for r in rows]


def _deployment(r: sqlite3.Row) -> DeploymentRecord:
    return DeploymentRecord(
        r["id"],
        r["environment"],
        r["digest"],
        r["version"],
        r["run_id"],
        r["status"],
        r["created_at"],
        r["updated_at"],
        json.loads(r["details"]),
    )


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (no semicolons inside our literals)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
