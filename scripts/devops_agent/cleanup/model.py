"""Values of the cleanup janitor: what the planner reads (snapshots) and what it decides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devops_agent.cleanup.oci import Manifest
from devops_agent.core.platform import Artifact, Branch, Cache, OwnerKind, PackageVersion, PullRequest


@dataclass(frozen=True)
class PackageRef:
    owner_kind: OwnerKind
    owner: str
    type: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.owner}/{self.name} ({self.type}, {self.owner_kind})"


@dataclass(frozen=True)
class Tag:
    """A git tag: name, the commit it points at and its date (tagger or commit date)."""

    name: str
    sha: str
    date: datetime | None


@dataclass(frozen=True)
class RepoSnapshot:
    default_branch: str
    branches: tuple[Branch, ...]
    open_prs: tuple[PullRequest, ...] = ()
    closed_prs: tuple[PullRequest, ...] = ()


@dataclass(frozen=True)
class ArtifactSnapshot:
    artifacts: tuple[Artifact, ...]
    #: ids of workflow runs not completed (queued, in progress, waiting…): their artifacts stay.
    active_runs: frozenset[int] = frozenset()


@dataclass(frozen=True)
class CacheSnapshot:
    caches: tuple[Cache, ...]
    #: refs (refs/heads/x, refs/pull/N/merge) of runs in progress: their caches stay.
    active_refs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PackageSnapshot:
    ref: PackageRef
    versions: tuple[PackageVersion, ...]
    #: digest → manifest (None: the registry does not have it). Container packages only.
    manifests: Mapping[str, Manifest | None] = field(default_factory=dict)
    #: why manifests could not be read at all (then nothing of this package is deleted)
    unresolved: str | None = None


@dataclass(frozen=True)
class Deletion:
    """One item the plan deletes, with the reason."""

    target: str  # branches | tags | artifacts | caches | packages
    id: str  # what the delete call needs: branch/tag name, artifact/cache/version id
    name: str  # what a human reads
    reason: str
    bytes: int = 0
    package: PackageRef | None = None
    created_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.target,
            "id": self.id,
            "name": self.name,
            "reason": self.reason,
            "bytes": self.bytes,
        }
        if self.package is not None:
            out["package"] = {
                "owner": self.package.owner,
                "owner_kind": self.package.owner_kind,
                "type": self.package.type,
                "name": self.package.name,
            }
        if self.created_at is not None:
            out["created_at"] = self.created_at.isoformat()
        return out


@dataclass(frozen=True)
class Kept:
    target: str
    id: str
    name: str
    reason: str


@dataclass(frozen=True)
class TargetPlan:
    """The decision for one target (one package counts as one target scope)."""

    target: str
    scope: str
    deletions: tuple[Deletion, ...] = ()
    kept: tuple[Kept, ...] = ()
    skipped: str | None = None  # the whole scope was left alone, and why

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.deletions)


@dataclass(frozen=True)
class Plan:
    targets: tuple[TargetPlan, ...]
    now: datetime

    @property
    def deletions(self) -> tuple[Deletion, ...]:
        return tuple(d for t in self.targets for d in t.deletions)
