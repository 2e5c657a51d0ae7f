"""Local-backend specifics: durability, upgrade of an older state store, key markers, branch rules."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from devops_agent.core.platform import (
    BranchPolicy,
    DeploymentBranchPolicy,
    EnvironmentSpec,
    body_key,
    get_platform,
    with_key,
)
from devops_agent.core.state import MIGRATIONS, StateStore
from devops_agent.platform.local import LocalPlatform, branch_allowed

KEYS = st.text(
    alphabet=st.characters(categories=("L", "N"), include_characters="._:/"), min_size=1, max_size=40
)


@given(body=st.text(max_size=200).filter(lambda b: "<!-- devops-agent:key=" not in b), key=KEYS)
def test_key_marker_round_trip(body: str, key: str) -> None:
    tagged = with_key(body, key)
    assert body_key(tagged) == key
    assert with_key(tagged, key) == tagged  # tagging twice changes nothing
    assert tagged.startswith(body.rstrip())


def test_state_survives_reopening(tmp_path: Path) -> None:
    with get_platform(tmp_path, {}) as first:
        issue = first.create_issue("t", "b", labels=["deployment-failure"], key="k")
        dep = first.create_deployment("a" * 40, "staging", key="d")
    with get_platform(tmp_path, {}) as second:
        assert second.find_issue_by_key("k") == issue
        assert second.get_deployment(dep.id) == dep


def test_a_version_1_store_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / ".devops-agent" / "state.db"
    path.parent.mkdir()
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO deployments (environment, digest, status, created_at, updated_at)"
        " VALUES ('staging', 'sha256:x', 'success', 1, 1)"
    )
    db.commit()
    db.close()
    store = StateStore(path)
    try:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert [d.digest for d in store.deployments()] == ["sha256:x"]
        platform = LocalPlatform(store)
        assert platform.list_issues() == ()
    finally:
        store.close()


def test_branch_rules_of_an_environment(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    try:
        platform = LocalPlatform(store)
        anyone = platform.put_environment(EnvironmentSpec("dev"))
        protected = platform.put_environment(
            EnvironmentSpec("staging", deployment_branch_policy=DeploymentBranchPolicy(True, False))
        )
        custom = platform.put_environment(
            EnvironmentSpec(
                "production",
                deployment_branch_policy=DeploymentBranchPolicy(False, True),
                branch_policies=(BranchPolicy("release/*"), BranchPolicy("v*", "tag")),
            )
        )
    finally:
        store.close()
    assert branch_allowed(anyone, "feature/x")
    assert branch_allowed(protected, "main", protected=True)
    assert not branch_allowed(protected, "feature/x")
    assert branch_allowed(custom, "release/1.2")
    assert not branch_allowed(custom, "main")
    assert branch_allowed(custom, "v1.0.0", is_tag=True)
    assert not branch_allowed(custom, "v1.0.0")


def test_recorded_reviewers_resolve_by_the_same_name(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.db")
    try:
        platform = LocalPlatform(store)
        team = platform.record_reviewer("Team", "ops")
        user = platform.record_reviewer("User", "alice")
        assert platform.resolve_reviewer("Team", "ops") == team
        assert platform.resolve_reviewer("Team", f"{platform.repo.owner}/ops") == team
        assert platform.resolve_reviewer("User", "alice") == user
        assert platform.record_reviewer("User", "alice") == user  # stable id
    finally:
        store.close()
