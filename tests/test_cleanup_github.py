"""cleanup end to end: GitHubPlatform against the fake GitHub server (packages API, branches,
artifacts, caches, deployments) + the fake OCI registry for manifests, with fault injection."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from devops_agent.cleanup.collect import RegistryManifests
from devops_agent.cleanup.model import Plan
from devops_agent.cleanup.policy import CleanupPolicy, policy_from_data
from devops_agent.core.errors import GateFailed
from devops_agent.core.platform import Platform, RepoRef
from devops_agent.platform.github import GitHubPlatform
from devops_agent.stages import cleanup as stage
from devops_agent.stages.cleanup import Janitor
from tests.fakes.github.harness import FakeClock, policy_for
from tests.fakes.github.server import FakeGitHub
from tests.fakes.registry import FakeRegistry, ImagePackage, iso

WRITES = ("POST", "PUT", "PATCH", "DELETE")
ALL = ("branches", "artifacts", "caches", "packages")


@dataclass
class World:
    clock: FakeClock
    fake: FakeGitHub
    registry: FakeRegistry
    now: datetime
    expected: set[tuple[str, str]]  # (target, name) the plan must delete
    digests: dict[str, str]
    old_children: list[str]

    def platform(self, **overrides: float | int) -> GitHubPlatform:
        return GitHubPlatform(
            RepoRef(self.fake.owner, self.fake.repo),
            token=self.fake.token,
            api_url=self.fake.api_url,
            policy=policy_for(self.clock, **overrides),
            timeout=10,
        )

    def policy(self, **extra: Any) -> CleanupPolicy:
        data: dict[str, Any] = {
            "version": 1,
            "branches": {"max_age": "90d", "merged_min_age": "1d", "keep": ["release/*"]},
            "artifacts": {"max_age": "14d", "keep_newest": 1},
            "caches": {"max_age": "7d", "in_use_grace": "1h"},
            "packages": [
                {
                    "name": "app",
                    "max_age": "30d",
                    "keep_newest": 1,
                    "keep_tags": ["latest"],
                    "registry": self.registry.url,
                    "image": "octo-org/app",
                },
                {
                    "name": "tool",
                    "owner": "octocat",
                    "owner_kind": "user",
                    "keep_newest": 1,
                    "registry": self.registry.url,
                    "image": "octocat/tool",
                },
            ],
            "deletions": {"write_interval": 0},
        }
        data.update(extra)
        return policy_from_data(data)

    def janitor(self, platform: Platform, policy: CleanupPolicy | None = None) -> Janitor:
        return Janitor(policy or self.policy(), platform, None, RegistryManifests(), None, {})

    def writes(self) -> list[Any]:
        return [r for r in self.fake.log if r.method in WRITES]

    def state(self) -> set[tuple[str, str]]:
        """(target, name) of everything that exists now."""
        out = {("branches", name) for name in self.fake.branches}
        out |= {("artifacts", str(a["id"])) for a in self.fake.artifacts.values()}
        out |= {("caches", c["key"]) for c in self.fake.caches.values()}
        for versions in self.fake.packages.values():
            out |= {("packages", v["name"]) for v in versions}
        return out


def planned(plan: Plan) -> set[tuple[str, str]]:
    out = set()
    for d in plan.deletions:
        if d.target == "packages":
            out.add(("packages", d.name.split(" ", 1)[0]))
        elif d.target == "caches":
            out.add(("caches", d.name))
        else:
            out.add((d.target, d.id))
    return out


def build_world(clock: FakeClock) -> World:
    fake = FakeGitHub(clock=clock.time).start()
    registry = FakeRegistry().start()
    now = datetime.fromtimestamp(clock.now, tz=timezone.utc)

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    expected: set[tuple[str, str]] = set()
    # -- branches (main is the protected default)
    fake.add_branch("develop", protected=True, commit_date=iso(ago(400)))
    fake.add_branch("release/1", commit_date=iso(ago(400)))
    fake.add_branch("feat/open", commit_date=iso(ago(300)))
    fake.add_branch("feat/base", commit_date=iso(ago(300)))
    fake.add_pull("feat/open", base="feat/base")
    fake.add_branch("feat/merged", commit_date=iso(ago(3)))
    fake.add_pull("feat/merged", state="closed")
    fake.add_branch("feat/merged-today", commit_date=iso(ago(0.1)))
    fake.add_pull("feat/merged-today", state="closed")
    fake.add_branch("feat/stale", commit_date=iso(ago(200)))
    fake.add_branch("feat/recent", commit_date=iso(ago(1)))
    expected |= {("branches", "feat/merged"), ("branches", "feat/stale")}
    # -- artifacts: keep the newest per name; others older than 14 days go
    for name, days in (("dist", 1), ("dist", 20), ("dist", 40), ("sbom", 30), ("logs", 2), ("logs", 5)):
        aid = fake.add_artifact(name, size=1000, created_at=iso(ago(days)))
        if (name, days) in (("dist", 20), ("dist", 40)):
            expected.add(("artifacts", str(aid)))
    # -- caches
    fake.add_cache("pip-Linux-old", at=iso(ago(30)))
    fake.add_cache("pip-Linux-new", at=iso(ago(0.01)))
    fake.add_cache("npm-Linux-mid", ref="refs/heads/feat/x", at=iso(ago(10)))
    expected |= {("caches", "pip-Linux-old"), ("caches", "npm-Linux-mid")}
    # -- org package "app": multi-arch images with BuildKit attestations, signatures, referrers
    app = ImagePackage(registry, "octo-org/app")
    old, old_children = app.index(["v0.9"], ago(100))
    deployed, deployed_children = app.index(["v0.8"], ago(120))
    new, new_children = app.index(["v1.0"], ago(1))
    latest = app.image(["latest"], ago(200))
    old_sig = app.signature(old, ago(100))
    new_sig = app.signature(new, ago(1))
    old_ref = app.referrer(old, ago(100))
    new_ref = app.referrer(new, ago(1))
    orphan_old = app.leftover(ago(50))
    orphan_young = app.leftover(now - timedelta(hours=1))
    app.publish(
        lambda d, tags, at: fake.add_package_version("org", "octo-org", "container", "app", d, tags, at)
    )
    expected |= {("packages", d) for d in (old, *old_children, old_sig, old_ref, orphan_old)}
    # -- user package "tool": three single-arch images, keep the newest
    tool = ImagePackage(registry, "octocat/tool")
    tools = [tool.image([f"t{i}"], ago(10 - i)) for i in range(3)]
    tool.publish(
        lambda d, tags, at: fake.add_package_version("user", "octocat", "container", "tool", d, tags, at)
    )
    expected |= {("packages", tools[0]), ("packages", tools[1])}
    # -- the deployed digest (a GitHub Deployment written by the deploy stage)
    seed = GitHubPlatform(
        RepoRef(fake.owner, fake.repo), token=fake.token, api_url=fake.api_url, policy=policy_for(clock)
    )
    seed.create_deployment("a" * 40, "production", payload={"digest": deployed, "version": "0.8"})
    seed.close()
    fake.log.clear()
    digests = {
        "old": old,
        "deployed": deployed,
        "new": new,
        "latest": latest,
        "new_sig": new_sig,
        "new_ref": new_ref,
        "orphan_young": orphan_young,
    }
    del deployed_children, new_children
    return World(clock, fake, registry, now, expected, digests, old_children)


@pytest.fixture
def world() -> Iterator[World]:
    w = build_world(FakeClock())
    try:
        yield w
    finally:
        w.fake.stop()
        w.registry.stop()


def test_dry_run_plans_exactly_the_expected_set_and_sends_no_write(world: World) -> None:
    with world.platform() as platform:
        plan = world.janitor(platform).plan(ALL, world.now)
    assert planned(plan) == world.expected
    assert world.writes() == []
    assert not world.fake.violations
    reasons = {d.name.split(" ", 1)[0]: d.reason for d in plan.deletions}
    assert "merged" in reasons["feat/merged"]
    assert "stale" in reasons["feat/stale"]
    for child in world.old_children:
        assert "of index deleted" in reasons[child]
    kept = {k.name.split(" ", 1)[0]: k.reason for t in plan.targets for k in t.kept}
    assert kept[world.digests["deployed"]].startswith("deployed")
    assert "kept" in kept[world.digests["new_sig"]]
    assert "orphan younger" in kept[world.digests["orphan_young"]]
    assert kept["feat/base"].startswith("base of open pull request")
    assert kept["feat/merged-today"] == "merged but within merged_min_age"


def test_execute_deletes_exactly_the_plan_and_a_rerun_deletes_nothing(world: World) -> None:
    before = world.state()
    with world.platform() as platform:
        janitor = world.janitor(platform)
        plan = janitor.plan(ALL, world.now)
        outcomes = janitor.act(plan)
        stats = platform.stats()
    assert {o.status for o in outcomes} == {"deleted"}
    assert world.state() == before - world.expected
    deletes = [r for r in world.writes() if r.method == "DELETE"]
    assert len(deletes) == len(plan.deletions) == len(world.writes())
    assert stats.writes == len(plan.deletions)
    world.fake.log.clear()
    with world.platform() as platform:
        again = world.janitor(platform).plan(ALL, world.now)
    assert again.deletions == ()
    assert world.writes() == []


def test_index_is_deleted_before_its_children_and_signatures(world: World) -> None:
    id_to_digest = {str(v["id"]): v["name"] for vs in world.fake.packages.values() for v in vs}
    with world.platform() as platform:
        janitor = world.janitor(platform)
        janitor.act(janitor.plan(("packages",), world.now))
    order = [id_to_digest[r.path.rsplit("/", 1)[-1]] for r in world.writes()]
    index_at = order.index(world.digests["old"])
    for child in world.old_children:
        assert order.index(child) > index_at


@pytest.mark.parametrize(
    ("fault", "kwargs"),
    [
        ("too_many", {"method": "DELETE", "times": 2, "retry_after": 3}),
        ("secondary", {"method": "DELETE", "times": 1, "retry_after": 5}),
        ("primary", {"method": "GET", "path": "/versions", "times": 1, "reset_in": 30}),
        ("status", {"method": "DELETE", "path": "/versions/", "times": 2, "status": 502}),
        (
            "status",
            {"method": "DELETE", "path": "/actions/artifacts/", "times": 1, "status": 503, "after": True},
        ),
        ("status", {"method": "GET", "path": "/branches", "times": 1, "status": 500}),
    ],
)
def test_faults_still_end_in_exactly_the_planned_state(
    world: World, fault: str, kwargs: dict[str, Any]
) -> None:
    before = world.state()
    world.fake.page_size = 1  # every listing paginates item by item
    world.fake.inject(fault, **kwargs)
    with world.platform() as platform:
        janitor = world.janitor(platform)
        plan = janitor.plan(ALL, world.now)
        outcomes = janitor.act(plan)
        stats = platform.stats()
    assert planned(plan) == world.expected
    assert {o.status for o in outcomes} <= {"deleted", "already-gone"}
    assert world.state() == before - world.expected
    assert stats.retries >= 1
    assert not world.fake.violations


def test_a_404_on_delete_counts_as_already_gone(world: World) -> None:
    with world.platform() as platform:
        janitor = world.janitor(platform)
        plan = janitor.plan(("artifacts", "caches"), world.now)
        victim = plan.deletions[0]
        world.fake.artifacts.pop(int(victim.id), None)  # someone else deleted it meanwhile
        outcomes = janitor.act(plan)
    status = {o.deletion.id: o.status for o in outcomes}
    assert status[victim.id] == "already-gone"
    assert sum(1 for s in status.values() if s == "deleted") == len(plan.deletions) - 1


def test_unresolvable_manifests_leave_the_package_untouched(world: World) -> None:
    key = next(k for k in world.registry.manifests if k[1] == world.digests["new"])
    del world.registry.manifests[key]  # the registry lost one manifest
    with world.platform() as platform:
        plan = world.janitor(platform).plan(("packages",), world.now)
    app = next(t for t in plan.targets if t.scope.endswith("/app"))
    assert app.deletions == ()
    assert app.skipped
    assert "lacks the manifest" in app.skipped


@pytest.fixture
def live_world() -> Iterator[World]:
    """The same world around the real clock (the CLI plans with the real now)."""
    w = build_world(FakeClock(now=time.time()))
    try:
        yield w
    finally:
        w.fake.stop()
        w.registry.stop()


def test_cli_dry_run_then_execute_writes_report_summary_and_outputs(
    live_world: World, tmp_path: Path
) -> None:
    world = live_world
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(world_policy_data(world)))
    summary = tmp_path / "summary.md"
    outputs = tmp_path / "outputs.txt"
    env = {
        "GITHUB_REPOSITORY": f"{world.fake.owner}/{world.fake.repo}",
        "GITHUB_API_URL": world.fake.api_url,
        "GITHUB_TOKEN": world.fake.token,
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(outputs),
        "DEVOPS_AGENT_INPUT_POLICY": str(policy_file),
        "DEVOPS_AGENT_INPUT_TARGETS": "artifacts, caches",
        "DEVOPS_AGENT_INPUT_REPORT": str(tmp_path / "report.json"),
    }
    assert stage.main(["--app", str(tmp_path)], env=env) == 0
    assert world.writes() == []
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["mode"] == "dry-run"
    assert report["totals"]["planned"] == 4
    assert "would be deleted" in summary.read_text()
    assert re.search(r"^planned<<(\S+)\n4\n\1$", outputs.read_text(), re.M)
    # execute through the action input dry-run: "false"
    assert stage.main(["--app", str(tmp_path)], env={**env, "DEVOPS_AGENT_INPUT_DRY_RUN": "false"}) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["mode"] == "execute"
    assert report["totals"]["deleted"] == 4
    assert report["totals"]["bytes_freed"] == 2000 + 200
    assert len([r for r in world.writes() if r.method == "DELETE"]) == 4
    assert world.fake.token not in summary.read_text()


def world_policy_data(world: World) -> dict[str, Any]:
    return {
        "version": 1,
        "artifacts": {"max_age": "14d", "keep_newest": 1},
        "caches": {"max_age": "7d"},
        "deletions": {"write_interval": 0},
    }


def test_cli_rejects_bad_input_with_exit_2_and_changes_nothing(world: World, tmp_path: Path) -> None:
    env = {
        "GITHUB_REPOSITORY": f"{world.fake.owner}/{world.fake.repo}",
        "GITHUB_API_URL": world.fake.api_url,
        "GITHUB_TOKEN": world.fake.token,
    }
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 1\nartifacts:\n  max_age: 2 weeks\n")
    assert stage.main(["--app", str(tmp_path), "--policy", str(bad), "--execute"], env=env) == 2
    good = tmp_path / "good.yml"
    good.write_text("version: 1\nartifacts:\n  max_age: 2d\n")
    assert (
        stage.main(["--app", str(tmp_path), "--policy", str(good), "--targets", "nope", "--execute"], env=env)
        == 2
    )
    assert (
        stage.main(
            ["--app", str(tmp_path), "--policy", str(good), "--targets", "caches", "--execute"], env=env
        )
        == 2
    )
    assert world.fake.log == []


def test_max_deletions_guard_fails_before_any_write(world: World, tmp_path: Path) -> None:
    with world.platform() as platform:
        janitor = world.janitor(platform, world.policy(deletions={"write_interval": 0, "max_deletions": 3}))
        plan = janitor.plan(ALL, world.now)
        with pytest.raises(GateFailed):
            janitor.act(plan)
    assert world.writes() == []


def test_one_run_reaches_the_end_state_within_pages_plus_deletions_plus_two(tmp_path: Path) -> None:
    clock = FakeClock()
    now = datetime.fromtimestamp(clock.now, tz=timezone.utc)
    with FakeGitHub(clock=clock.time) as fake, FakeRegistry() as registry:
        package = ImagePackage(registry, "octo-org/app")
        for i in range(230):
            package.image([f"build-{i}"], now - timedelta(hours=230 - i))
        package.publish(
            lambda d, tags, at: fake.add_package_version("org", "octo-org", "container", "app", d, tags, at)
        )
        policy = policy_from_data(
            {
                "version": 1,
                "packages": [
                    {
                        "name": "app",
                        "owner": "octo-org",
                        "owner_kind": "org",
                        "keep_newest": 10,
                        "registry": registry.url,
                        "image": "octo-org/app",
                    }
                ],
                "deletions": {"write_interval": 1.0},
            }
        )
        platform = GitHubPlatform(
            RepoRef(fake.owner, fake.repo),
            token=fake.token,
            api_url=fake.api_url,
            policy=policy_for(clock, write_interval=1.0),
        )
        with platform:
            janitor = Janitor(policy, platform, None, RegistryManifests(), None, {})
            outcomes = janitor.act(janitor.plan(("packages",), now))
            stats = platform.stats()
        pages = len([r for r in fake.log if r.method == "GET" and r.path.endswith("/versions")])
        assert pages == 3
        assert len(outcomes) == 220
        assert stats.requests <= pages + len(outcomes) + 2
        assert sum(len(v) for v in fake.packages.values()) == 10
        # writes were paced: one second between deletions, never two in flight
        assert sum(clock.slept) == pytest.approx(219.0)
        assert not fake.violations
