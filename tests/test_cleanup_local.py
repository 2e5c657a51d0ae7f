"""cleanup on the local platform (SQLite state store), git tags through real git, the CLI, the
policy file and the --local-images housekeeping (a fake engine executable on PATH)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from devops_agent.cleanup.collect import GitTags
from devops_agent.cleanup.policy import load_policy, parse_duration, policy_from_data
from devops_agent.cleanup.report import build_report, render_markdown
from devops_agent.core.errors import ConfigError
from devops_agent.core.platform import RepoRef
from devops_agent.core.state import StateStore
from devops_agent.platform.local import LocalPlatform
from devops_agent.stages import cleanup as stage
from devops_agent.stages.cleanup import Janitor

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime.now(timezone.utc)


def ago(days: float) -> float:
    return (NOW - timedelta(days=days)).timestamp()


# ------------------------------------------------------------------------------------------------
# Policy file
# ------------------------------------------------------------------------------------------------


def test_example_policy_is_valid_and_enables_the_default_targets() -> None:
    policy = load_policy(ROOT / "examples" / "cleanup-policy.yml")
    assert policy.enabled_targets() == ("branches", "artifacts", "caches", "packages")
    assert policy.packages[0].keep_tags == ("latest", "v*", "main")
    assert policy.deletions.max_deletions == 2000


def test_packaged_schema_is_the_repository_schema() -> None:
    packaged = ROOT / "scripts" / "devops_agent" / "data" / "cleanup-policy.schema.json"
    assert packaged.is_symlink()
    assert json.loads(packaged.read_text()) == json.loads(
        (ROOT / "schemas" / "cleanup-policy.schema.json").read_text()
    )


@pytest.mark.parametrize(
    ("data", "field", "fix"),
    [
        ({"version": 1, "artifacts": {"max_age": "2 weeks"}}, "artifacts.max_age", "pattern"),
        ({"version": 1, "artifacts": {"max_agee": "2d"}}, "artifacts.max_agee", "did you mean `max_age`"),
        ({"version": 1, "caches": {"keep": ["x"]}}, "caches", "allowed shapes"),
        ({"version": 2}, "version", "use 1"),
        (
            {"version": 1, "packages": [{"name": "a", "keep_newest": 1}, {"name": "a", "keep_newest": 2}]},
            "packages[1]",
            "merge",
        ),
    ],
)
def test_bad_policies_name_the_field_and_the_fix(data: dict[str, object], field: str, fix: str) -> None:
    with pytest.raises(ConfigError) as err:
        policy_from_data(data, source="p.yml")
    assert err.value.field == field
    assert fix in (err.value.fix or "")


def test_durations() -> None:
    assert parse_duration("90d", field_name="x") == timedelta(days=90)
    assert parse_duration("2w", field_name="x") == timedelta(days=14)
    with pytest.raises(ConfigError, match="x: '1y' is not a duration"):
        parse_duration("1y", field_name="x")


# ------------------------------------------------------------------------------------------------
# Local platform: runs in progress, branches, deployed digests from the state store
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalPlatform:
    store = StateStore.for_app(tmp_path)
    return LocalPlatform(store, repo=RepoRef("octo-org", "app"))


def test_artifacts_of_runs_in_progress_stay_and_only_candidates_runs_are_looked_up(
    local: LocalPlatform,
) -> None:
    running = local.record_workflow_run("ci.yml", status="in_progress", conclusion=None)
    done = local.record_workflow_run("ci.yml")
    keep_running = local.record_artifact("dist", 10, run_id=running, created_at=ago(20))
    old_done = local.record_artifact("dist", 10, run_id=done, created_at=ago(30))
    newest = local.record_artifact("dist", 10, run_id=done, created_at=ago(1))
    ancient = local.record_artifact("dist", 10, run_id=999, created_at=ago(60))  # run long gone
    policy = policy_from_data({"version": 1, "artifacts": {"max_age": "14d", "keep_newest": 1}})
    looked_up: list[int] = []
    real = local.get_workflow_run

    def counting(run_id: int):  # type: ignore[no-untyped-def]
        looked_up.append(run_id)
        return real(run_id)

    local.get_workflow_run = counting  # type: ignore[method-assign]
    plan = Janitor(policy, local).plan(("artifacts",), NOW)
    assert {int(d.id) for d in plan.deletions} == {old_done, ancient}
    kept = {int(k.id): k.reason for t in plan.targets for k in t.kept}
    assert kept[keep_running] == f"run {running} is still in progress"
    assert "newest" in kept[newest]
    assert sorted(looked_up) == sorted({running, done})  # not 999: older than a run can last
    # the current run (GITHUB_RUN_ID) is in progress by definition
    plan = Janitor(policy, local, env={"GITHUB_RUN_ID": str(done)}).plan(("artifacts",), NOW)
    assert {int(d.id) for d in plan.deletions} == {ancient}


def test_branches_and_state_store_deployments_on_the_local_platform(
    local: LocalPlatform, tmp_path: Path
) -> None:
    local.record_branch("main", "a" * 40, protected=True, commit_date=ago(500))
    local.record_branch("stale", "b" * 40, commit_date=ago(200))
    local.record_branch("wip", "c" * 40, commit_date=ago(200))
    local.record_pull_request("wip")
    policy = policy_from_data({"version": 1, "branches": {"max_age": "90d"}})
    janitor = Janitor(policy, local, tmp_path)
    plan = janitor.plan(("branches",), NOW)
    assert [d.id for d in plan.deletions] == ["stale"]
    janitor.act(plan)
    assert [b.name for b in local.list_branches()] == ["main", "wip"]
    assert janitor.plan(("branches",), NOW).deletions == ()


def test_cli_on_the_local_platform_dry_run_then_execute(tmp_path: Path) -> None:
    store = StateStore.for_app(tmp_path)
    platform = LocalPlatform(store, repo=RepoRef("local", tmp_path.name))
    platform.record_cache("pip-Linux-1", size_in_bytes=100, at=ago(30))
    platform.record_cache("pip-Linux-2", size_in_bytes=100, at=ago(0.5))
    store.close()
    policy = tmp_path / ".github" / "cleanup-policy.yml"
    policy.parent.mkdir()
    policy.write_text("version: 1\ncaches:\n  max_age: 7d\n")
    env = {"PATH": os.environ.get("PATH", "")}
    assert stage.main(["--app", str(tmp_path), "--json"], env=env) == 0
    report = json.loads((tmp_path / ".devops-agent" / "cleanup-report.json").read_text())
    assert report["mode"] == "dry-run"
    assert [d["name"] for d in report["targets"][0]["deletions"]] == ["pip-Linux-1"]
    assert stage.main(["--app", str(tmp_path), "--execute"], env=env) == 0
    with StateStore.for_app(tmp_path) as store2:
        assert [c.key for c in LocalPlatform(store2).list_caches()] == ["pip-Linux-2"]
    report = json.loads((tmp_path / ".devops-agent" / "cleanup-report.json").read_text())
    assert report["totals"]["deleted"] == 1
    assert report["totals"]["bytes_freed"] == 100


def test_markdown_report_has_headline_table_and_reasons(local: LocalPlatform) -> None:
    local.record_artifact("dist", 2048, created_at=ago(30))
    local.record_cache("pip-Linux-x", size_in_bytes=1024, at=ago(30))
    policy = policy_from_data({"version": 1, "artifacts": {"max_age": "14d"}, "caches": {"max_age": "7d"}})
    plan = Janitor(policy, local).plan(("artifacts", "caches"), NOW)
    text = render_markdown(build_report(plan, (), executed=False))
    assert text.startswith("## Cleanup (dry run): 2 item(s) would be deleted, 3.0 KiB freed")
    assert "| target | scope | planned |" in text
    assert "30d old (max_age 2w)" in text
    assert '```mermaid\npie title Bytes to free\n    "artifacts repository" : 2048\n' in text


# ------------------------------------------------------------------------------------------------
# Git tags through real git (a bare "origin")
# ------------------------------------------------------------------------------------------------


def git(cwd: Path, *args: str, date: float | None = None) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    if date is not None:
        stamp = f"@{int(date)} +0000"
        env |= {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_tags_by_age_keep_patterns_and_deployed_commits_through_git(
    tmp_path: Path, local: LocalPlatform
) -> None:
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    git(tmp_path, "init", "--bare", "-q", str(origin))
    git(tmp_path, "init", "-q", str(work))
    git(work, "remote", "add", "origin", str(origin))
    shas = {}
    for name, days in (
        ("v1.0", 400),
        ("nightly-1", 400),
        ("nightly-2", 300),
        ("nightly-3", 2),
        ("deployed-1", 400),
    ):
        (work / "f").write_text(name)
        git(work, "add", "f")
        git(work, "commit", "-q", "-m", name, date=ago(days))
        git(work, "tag", "-a", name, "-m", name, date=ago(days))
        shas[name] = git(work, "rev-parse", "HEAD").strip()
    git(work, "push", "-q", "origin", "HEAD:refs/heads/main", "--tags")
    local.create_deployment(shas["deployed-1"], "production", payload={"digest": "sha256:" + "0" * 64})
    policy = policy_from_data({"version": 1, "tags": {"enabled": True, "max_age": "180d", "keep": ["v*"]}})
    janitor = Janitor(policy, local, tags=GitTags(work))
    plan = janitor.plan(("tags",), NOW)
    assert sorted(d.id for d in plan.deletions) == ["nightly-1", "nightly-2"]
    kept = {k.id: k.reason for t in plan.targets for k in t.kept}
    assert kept["deployed-1"] == "protected (a deployed release)"
    assert kept["v1.0"] == "matches a keep pattern"
    assert {o.status for o in janitor.act(plan)} == {"deleted"}
    remote_tags = git(tmp_path, "ls-remote", "--tags", str(origin))
    assert "nightly-1" not in remote_tags
    assert "nightly-3" in remote_tags
    assert janitor.plan(("tags",), NOW).deletions == ()
    # deleting again (a re-run after a partial failure) is "already gone", not an error
    assert GitTags(work).delete("nightly-1") is False


# ------------------------------------------------------------------------------------------------
# --local-images with a fake engine
# ------------------------------------------------------------------------------------------------


def test_local_images_dry_run_runs_no_prune_and_execute_prunes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "docker.log"
    engine = bindir / "docker"
    engine.write_text(f'#!/bin/sh\necho "$@" >> {log}\necho "TYPE TOTAL RECLAIMABLE"\n')
    engine.chmod(engine.stat().st_mode | stat.S_IEXEC)
    policy = tmp_path / "p.yml"
    policy.write_text("version: 1\nlocal_images:\n  engine: docker\n  max_age: 2d\n")
    env = {"PATH": f"{bindir}:{os.environ.get('PATH', '')}"}
    monkeypatch.setenv("PATH", env["PATH"])  # shutil.which reads the process PATH
    assert stage.main(["--app", str(tmp_path), "--policy", str(policy), "--local-images"], env=env) == 0
    assert log.read_text().splitlines() == ["system df"]
    assert (
        stage.main(["--app", str(tmp_path), "--policy", str(policy), "--local-images", "--execute"], env=env)
        == 0
    )
    calls = log.read_text().splitlines()[1:]
    assert calls == [
        "system df",
        "image prune --all --force --filter until=48h",
        "builder prune --force --filter until=48h",
        "system df",
    ]
    report = json.loads((tmp_path / ".devops-agent" / "cleanup-report.json").read_text())
    assert report["local_images"]["executed"] is True
