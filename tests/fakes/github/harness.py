"""Test harnesses: one Platform backend plus the means to seed what only GitHub creates.

``GitHubHarness`` runs ``GitHubPlatform`` against the fake server; ``LocalHarness`` runs
``LocalPlatform`` on a temporary state store. Both expose the same seeding methods, so one contract
suite (tests/test_platform_contract.py) runs against both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from devops_agent.core.platform import PackageOwner, Platform, RepoRef, Reviewer
from devops_agent.core.state import StateStore
from devops_agent.platform.github import GitHubPlatform
from devops_agent.platform.local import LocalPlatform
from devops_agent.platform.retry import RetryPolicy

from .server import FakeGitHub

START = 1_800_000_000.0  # 2027-01-15, an arbitrary fixed instant


@dataclass
class FakeClock:
    """A clock whose sleep() only moves time forward (tests never really sleep)."""

    now: float = START
    slept: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def iso(self, offset: float = 0.0) -> str:
        return datetime.fromtimestamp(self.now + offset, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def policy_for(clock: FakeClock, **overrides: float | int) -> RetryPolicy:
    values: dict[str, float | int] = {"write_interval": 0.0}
    values.update(overrides)
    return RetryPolicy(clock=clock.time, sleep=clock.sleep, **values)  # type: ignore[arg-type]


class GitHubHarness:
    kind = "github"

    def __init__(self, clock: FakeClock, *, prefix: str = "", **policy: float | int) -> None:
        self.clock = clock
        self.fake = FakeGitHub(clock=clock.time, prefix=prefix).start()
        self.platform: Platform = GitHubPlatform(
            RepoRef(self.fake.owner, self.fake.repo),
            token=self.fake.token,
            api_url=self.fake.api_url,
            policy=policy_for(clock, **policy),
            timeout=10,
        )

    def close(self) -> None:
        self.platform.close()
        self.fake.stop()

    def add_branch(self, name: str, *, protected: bool = False, age_days: float = 0) -> None:
        self.fake.add_branch(name, protected=protected, commit_date=self.clock.iso(-age_days * 86400))

    def add_pull(self, head: str, base: str = "main") -> int:
        return self.fake.add_pull(head, base)

    def add_user(self, login: str) -> None:
        self.fake.users.setdefault(login, len(self.fake.users) + 10)

    def add_team(self, org: str, slug: str) -> None:
        self.fake.add_team(org, slug)

    def add_run(
        self,
        workflow: str,
        *,
        branch: str = "main",
        conclusion: str | None = "success",
        waiting_on: Sequence[str] = (),
        age_seconds: float = 0,
    ) -> int:
        return self.fake.add_run(
            workflow,
            branch=branch,
            conclusion=conclusion,
            waiting_on=list(waiting_on),
            created_at=self.clock.iso(-age_seconds),
        )

    def add_artifact(self, name: str, size: int = 10) -> int:
        return self.fake.add_artifact(name, size=size)

    def add_cache(self, key: str, *, ref: str = "refs/heads/main", age_seconds: float = 0) -> int:
        return self.fake.add_cache(key, ref=ref, at=self.clock.iso(-age_seconds))

    def add_package_version(
        self, owner: PackageOwner, package: str, digest: str, tags: Sequence[str] = ()
    ) -> int:
        return self.fake.add_package_version(
            owner.kind, owner.login, "container", package, digest, list(tags)
        )

    def default_branch(self) -> str:
        return self.fake.default_branch


class LocalHarness:
    kind = "local"

    def __init__(self, clock: FakeClock, tmp: Path) -> None:
        self.clock = clock
        self.store = StateStore(tmp / ".devops-agent" / "state.db", clock=clock.time)
        self.local = LocalPlatform(self.store, repo=RepoRef("octo-org", "hello-world"), clock=clock.time)
        self.platform: Platform = self.local
        self.local.record_branch("main", "a" * 40, protected=True, required_checks=["build"])

    def close(self) -> None:
        self.store.close()

    def add_branch(self, name: str, *, protected: bool = False, age_days: float = 0) -> None:
        sha = f"{abs(hash(name)) % (1 << 160):040x}"
        self.local.record_branch(
            name, sha, protected=protected, commit_date=self.clock.now - age_days * 86400
        )

    def add_pull(self, head: str, base: str = "main") -> int:
        return self.local.record_pull_request(head, base)

    def add_user(self, login: str) -> None:
        self.local.record_reviewer("User", login)

    def add_team(self, org: str, slug: str) -> None:
        self.local.record_reviewer("Team", f"{org}/{slug}")

    def add_run(
        self,
        workflow: str,
        *,
        branch: str = "main",
        conclusion: str | None = "success",
        waiting_on: Sequence[str] = (),
        age_seconds: float = 0,
    ) -> int:
        return self.local.record_workflow_run(
            workflow,
            branch=branch,
            conclusion=conclusion,
            waiting_on=waiting_on,
            created_at=self.clock.now - age_seconds,
        )

    def add_artifact(self, name: str, size: int = 10) -> int:
        return self.local.record_artifact(name, size)

    def add_cache(self, key: str, *, ref: str = "refs/heads/main", age_seconds: float = 0) -> int:
        return self.local.record_cache(key, ref=ref, at=self.clock.now - age_seconds)

    def add_package_version(
        self, owner: PackageOwner, package: str, digest: str, tags: Sequence[str] = ()
    ) -> int:
        return self.local.record_package_version(owner, "container", package, digest, tags)

    def default_branch(self) -> str:
        return "main"


Harness = GitHubHarness | LocalHarness

__all__ = ["START", "FakeClock", "GitHubHarness", "Harness", "LocalHarness", "Reviewer", "policy_for"]
