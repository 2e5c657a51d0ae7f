"""Collectors: read the listings the planner needs from the platform, the registry, the state
store and git — as few requests as possible (one listing per target, lookups only for the items
the planner would otherwise delete)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

from devops_agent.cleanup.model import (
    ArtifactSnapshot,
    CacheSnapshot,
    PackageRef,
    PackageSnapshot,
    RepoSnapshot,
    Tag,
)
from devops_agent.cleanup.oci import Manifest, RegistryClient, normalize_digest
from devops_agent.cleanup.planner import plan_artifacts
from devops_agent.cleanup.policy import ArtifactPolicy, BranchPolicy, PackagePolicy, matches_any
from devops_agent.core.errors import ConfigError, PlatformError
from devops_agent.core.platform import (
    Branch,
    OwnerKind,
    PackageOwner,
    PackageType,
    Platform,
    PullRequest,
    Repository,
)
from devops_agent.core.state import STATE_DIR, StateStore

#: A workflow run cannot last longer than this on GitHub (35 days), so an older artifact's run
#: is certainly finished and need not be looked up.
MAX_RUN_AGE = timedelta(days=35)
ACTIVE_RUN_STATES = frozenset({"queued", "in_progress", "waiting", "requested", "pending"})

ManifestSource = Callable[[PackagePolicy, PackageRef, Iterable[str]], Mapping[str, Manifest | None]]


def collect_branches(platform: Platform, repository: Repository, policy: BranchPolicy) -> RepoSnapshot:
    """Branches, open pull requests, and for each branch the planner may delete: its head commit
    date and whether a closed pull request had exactly this head."""
    branches = platform.list_branches()
    open_prs = platform.list_pull_requests(state="open")
    blocked = {pr.head_ref for pr in open_prs} | {pr.base_ref for pr in open_prs}
    eligible = [
        b
        for b in branches
        if b.name != repository.default_branch
        and not b.protected
        and b.name not in blocked
        and not (policy.keep and matches_any(b.name, policy.keep))
        and (not policy.include or matches_any(b.name, policy.include))
    ]
    dated: dict[str, Branch] = {}
    gone: set[str] = set()
    closed: list[PullRequest] = []
    for branch in eligible:
        if branch.commit_date is None:
            fresh = platform.get_branch(branch.name)
            if fresh is None:  # deleted meanwhile
                gone.add(branch.name)
                continue
            dated[branch.name] = fresh
        if policy.delete_merged:
            closed.extend(
                pr
                for pr in platform.list_pull_requests(state="closed", head=branch.name)
                if pr.head_ref == branch.name
            )
    current = tuple(dated.get(b.name, b) for b in branches if b.name not in gone)
    return RepoSnapshot(repository.default_branch, current, open_prs, tuple(closed))


def collect_artifacts(
    platform: Platform, policy: ArtifactPolicy, now: datetime, *, current_run: int | None = None
) -> ArtifactSnapshot:
    """Artifacts; the status of a run is looked up only for artifacts the planner would delete and
    whose run may still be going (younger than 35 days)."""
    artifacts = platform.list_artifacts()
    active = {current_run} if current_run else set()
    first = plan_artifacts(ArtifactSnapshot(artifacts, frozenset(active)), policy, now)
    candidates = {int(d.id) for d in first.deletions}
    runs = sorted(
        {
            a.run_id
            for a in artifacts
            if a.id in candidates
            and a.run_id is not None
            and a.run_id not in active
            and now - a.created_at < MAX_RUN_AGE
        }
    )
    for run_id in runs:
        run = platform.get_workflow_run(run_id)
        if run is not None and run.status in ACTIVE_RUN_STATES:
            active.add(run_id)
    return ArtifactSnapshot(artifacts, frozenset(active))


def collect_caches(platform: Platform, *, active_refs: Iterable[str] = ()) -> CacheSnapshot:
    return CacheSnapshot(platform.list_caches(), frozenset(r for r in active_refs if r))


def package_ref(policy: PackagePolicy, repository_owner: str, owner_kind: OwnerKind) -> PackageRef:
    return PackageRef(
        owner_kind=policy.owner_kind or owner_kind,
        owner=policy.owner or repository_owner,
        type=policy.type,
        name=policy.name,
    )


def collect_package(
    platform: Platform,
    policy: PackagePolicy,
    ref: PackageRef,
    manifests: ManifestSource | None,
) -> PackageSnapshot:
    versions = platform.list_package_versions(
        PackageOwner(ref.owner_kind, ref.owner), cast(PackageType, ref.type), ref.name
    )
    if ref.type not in ("container", "docker") or not versions:
        return PackageSnapshot(ref, versions)
    if manifests is None:
        return PackageSnapshot(ref, versions, unresolved="no registry access configured")
    try:
        found = manifests(policy, ref, (normalize_digest(v.name) for v in versions))
    except (PlatformError, ConfigError) as exc:
        return PackageSnapshot(ref, versions, unresolved=f"manifests unreadable: {exc.cause}")
    missing = [d for d, m in found.items() if m is None]
    if missing:
        return PackageSnapshot(
            ref,
            versions,
            dict(found),
            unresolved=f"the registry lacks the manifest of {len(missing)} version(s), e.g. {missing[0]}",
        )
    return PackageSnapshot(ref, versions, dict(found))


@dataclass
class RegistryManifests:
    """A :data:`ManifestSource` over OCI registries (one client per registry host), counting requests."""

    username: str | None = None
    password: str | None = None
    default_registry: str | None = "ghcr.io"

    def __post_init__(self) -> None:
        self.clients: dict[str, RegistryClient] = {}

    def image_for(self, policy: PackagePolicy, ref: PackageRef) -> str:
        return policy.image or f"{ref.owner}/{ref.name}".lower()

    def __call__(
        self, policy: PackagePolicy, ref: PackageRef, digests: Iterable[str]
    ) -> Mapping[str, Manifest | None]:
        host = policy.registry or self.default_registry
        if not host:
            raise ConfigError(
                f"package {ref.label}: no registry to resolve its manifests",
                "set `registry:` on the package in the cleanup policy (e.g. http://127.0.0.1:5000)",
                field="packages[].registry",
            )
        client = self.clients.get(host)
        if client is None:
            client = self.clients[host] = RegistryClient(host, username=self.username, password=self.password)
        return client.get_manifests(self.image_for(policy, ref), digests)

    @property
    def requests(self) -> int:
        return sum(c.requests for c in self.clients.values())


def deployed_digests(platform: Platform | None, app_dir: Path | None) -> frozenset[str]:
    """Every digest recorded as deployed, in any environment and any state: GitHub deployments
    (payload ``digest``) and the local state store. Rollback targets are among them."""
    found: set[str] = set()
    if platform is not None:
        for deployment in platform.list_deployments():
            value = deployment.payload.get("digest") if isinstance(deployment.payload, Mapping) else None
            if isinstance(value, str) and value:
                found.add(normalize_digest(value))
    if app_dir is not None and (app_dir / STATE_DIR / "state.db").is_file():
        store = StateStore.for_app(app_dir)
        try:
            for record in store.deployments(limit=1_000_000):
                found.add(normalize_digest(record.digest))
        finally:
            store.close()
    return frozenset(found)


def deployed_shas(platform: Platform | None) -> frozenset[str]:
    """Commit shas of every recorded deployment (tags pointing at them are kept)."""
    if platform is None:
        return frozenset()
    return frozenset(d.sha for d in platform.list_deployments() if d.sha)


# ------------------------------------------------------------------------------------------------
# Git tags (the platform interface has no tag operations: tags are read and deleted through git)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitTags:
    """Tags of a git checkout; deletions are pushed to ``remote`` then removed locally."""

    repo_dir: Path
    remote: str = "origin"

    def _git(self, *args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(self.repo_dir), *args],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PlatformError(f"git {args[0]} failed: {exc}", "check that git is installed") from None
        if done.returncode != 0:
            raise PlatformError(
                f"git {' '.join(args)} failed: {done.stderr.strip()}",
                "check the checkout (fetch tags with `git fetch --tags`) and push credentials",
            )
        return done.stdout

    def list(self) -> tuple[Tag, ...]:
        fmt = "%(refname:strip=2)%09%(objectname)%09%(*objectname)%09%(creatordate:iso-strict)"
        out = []
        for line in self._git("for-each-ref", f"--format={fmt}", "refs/tags").splitlines():
            name, obj, peeled, date = line.split("\t")
            out.append(Tag(name, peeled or obj, datetime.fromisoformat(date) if date else None))
        return tuple(out)

    def delete(self, name: str) -> bool:
        """Delete ``name`` on the remote and locally. False when it was already gone."""
        existed = bool(self._git("tag", "--list", name).strip())
        remote_has = bool(self._git("ls-remote", "--tags", self.remote, f"refs/tags/{name}").strip())
        if remote_has:
            self._git("push", self.remote, "--delete", f"refs/tags/{name}")
        if existed:
            self._git("tag", "-d", name)
        return existed or remote_has
