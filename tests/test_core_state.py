"""The SQLite state store: migrations, runs, artifacts, idempotent deployment records."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from devops_agent.core.errors import PlatformError
from devops_agent.core.state import MIGRATIONS, StateStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def test_migrations_apply_once_and_set_user_version(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore(path).close()
    StateStore(path).close()  # re-open: nothing re-applied
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_newer_schema_is_refused_with_fix(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.commit()
    db.close()
    with pytest.raises(PlatformError, match="upgrade devops-agent"):
        StateStore(path)


def test_runs_and_artifacts(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db", clock=Clock()) as store:
        run = store.start_run(version="1.0.0", commit_sha="abc", branch="main")
        store.record_artifact(run, "a.pyz", "dist/a.pyz", "00" * 32, 12)
        store.record_artifact(run, "a.pyz", "dist/a.pyz", "11" * 32, 13)  # re-run replaces
        store.finish_run(run, "success", {"stages": ["build"]})
        record = store.get_run(run)
        assert record is not None
        assert record.status == "success"
        assert record.details == {"stages": ["build"]}
        assert [(a.name, a.sha256) for a in store.artifacts(run)] == [("a.pyz", "11" * 32)]
        found = store.find_artifact("11" * 32)
        assert found is not None
        assert found.run_id == run
        assert store.find_artifact("22" * 32) is None


def test_deployment_record_is_idempotent_per_run(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db", clock=Clock()) as store:
        first = store.record_deployment(
            "staging", "sha256:aa", version="1", run_id="r1", status="in_progress"
        )
        again = store.record_deployment("staging", "sha256:aa", version="1", run_id="r1", status="success")
        other = store.record_deployment("staging", "sha256:aa", version="1", run_id="r2", status="success")
        assert first == again != other
        records = store.deployments("staging")
        assert [(d.id, d.status) for d in records] == [(other, "success"), (first, "success")]
        store.update_deployment(first, "inactive", {"superseded_by": other})
        assert store.deployments()[1].details == {"superseded_by": other}
        assert store.deployments("production") == []
