"""The planner: PURE functions from listings + policy (+ deployed digests + now) to deletions.

Nothing here performs I/O. Every item is either deleted with a reason or kept with a reason, and
the rules that must never be broken are applied before any retention rule:

- branches: never the default branch, a protected branch, the head or base of an open pull
  request, or a branch matching ``keep``;
- artifacts: never one of a run still in progress; caches: never one used within the grace
  period or belonging to the ref of a run in progress;
- packages: never a version whose digest is deployed; never a manifest reachable from a kept
  version (platform manifests of a kept index, signatures/attestations of a kept image, through
  index entries, OCI ``subject`` or cosign ``sha256-<hex>.sig`` tags); untagged orphans only when
  nothing kept references them and they are older than ``orphan_min_age``;
- everywhere: the newest ``keep_newest`` items of a group are never deleted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from devops_agent.cleanup.model import (
    ArtifactSnapshot,
    CacheSnapshot,
    Deletion,
    Kept,
    PackageSnapshot,
    RepoSnapshot,
    Tag,
    TargetPlan,
)
from devops_agent.cleanup.oci import Manifest, normalize_digest, signature_subject
from devops_agent.cleanup.policy import (
    ArtifactPolicy,
    BranchPolicy,
    CachePolicy,
    PackagePolicy,
    Retention,
    TagPolicy,
    matches_any,
)
from devops_agent.core.platform import Artifact, Cache, PackageVersion

T = TypeVar("T")
_EPOCH = datetime.min


def human_age(age: timedelta) -> str:
    days = age.total_seconds() / 86400
    if days >= 2:
        return f"{int(days)}d"
    hours = age.total_seconds() / 3600
    return f"{int(hours)}h" if hours >= 1 else f"{int(age.total_seconds() // 60)}m"


def human_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _newest_first(
    items: Iterable[T], date: Callable[[T], datetime | None], key: Callable[[T], str]
) -> list[T]:
    """Newest first; ties by key (descending) so the order is total and reproducible."""
    return sorted(
        items,
        key=lambda item: (date(item) or _EPOCH.replace(tzinfo=None), key(item)),
        reverse=True,
    )


def _date_key(value: datetime | None) -> datetime | None:
    # Compare naive UTC (inputs are aware UTC; None sorts oldest).
    return value.replace(tzinfo=None) if value is not None and value.tzinfo is not None else value


def _retention_decision(index: int, age: timedelta, retention: Retention, what: str) -> tuple[bool, str]:
    """(delete?, reason) for the ``index``-th newest item of a group, age ``age``."""
    if index < retention.keep_newest:
        return False, f"among the {retention.keep_newest} newest of {what}"
    if retention.max_age is not None and age <= retention.max_age:
        return False, f"younger than max_age {human_duration(retention.max_age)}"
    if retention.max_age is not None:
        why = f"{human_age(age)} old (max_age {human_duration(retention.max_age)})"
        if retention.keep_newest:
            why += f", not among the {retention.keep_newest} newest of {what}"
        return True, why
    return True, f"not among the {retention.keep_newest} newest of {what}"


# ------------------------------------------------------------------------------------------------
# Branches and tags
# ------------------------------------------------------------------------------------------------


def plan_branches(snapshot: RepoSnapshot, policy: BranchPolicy, now: datetime) -> TargetPlan:
    kept: list[Kept] = []
    deletions: list[Deletion] = []
    open_heads: dict[str, int] = {}
    open_bases: dict[str, int] = {}
    for pr in snapshot.open_prs:
        open_heads.setdefault(pr.head_ref, pr.number)
        open_bases.setdefault(pr.base_ref, pr.number)
    closed_by_sha: dict[str, int] = {}
    for pr in snapshot.closed_prs:
        closed_by_sha.setdefault(pr.head_sha, pr.number)

    considered = [
        b
        for b in snapshot.branches
        if b.name != snapshot.default_branch and (not policy.include or matches_any(b.name, policy.include))
    ]
    ordered = sorted(considered, key=lambda b: (_date_key(b.commit_date) or _EPOCH, b.name), reverse=True)
    rank = {b.name: i for i, b in enumerate(ordered)}
    for branch in snapshot.branches:
        name = branch.name

        def keep(reason: str, name: str = name) -> None:
            kept.append(Kept("branches", name, name, reason))

        if name == snapshot.default_branch:
            keep("default branch")
        elif branch.protected:
            keep("protected branch")
        elif name in open_heads:
            keep(f"head of open pull request #{open_heads[name]}")
        elif name in open_bases:
            keep(f"base of open pull request #{open_bases[name]}")
        elif policy.keep and matches_any(name, policy.keep):
            keep("matches a keep pattern")
        elif policy.include and not matches_any(name, policy.include):
            keep("not matched by include")
        elif rank[name] < policy.keep_newest:
            keep(f"among the {policy.keep_newest} newest branches")
        elif branch.commit_date is None:
            keep("head commit date unknown")
        else:
            age = now - branch.commit_date
            merged_pr = closed_by_sha.get(branch.sha)
            if policy.delete_merged and merged_pr is not None and age >= policy.merged_min_age:
                deletions.append(
                    Deletion(
                        "branches",
                        name,
                        name,
                        f"merged: pull request #{merged_pr} closed with this head, no commit since",
                        created_at=branch.commit_date,
                    )
                )
            elif policy.max_age is not None and age > policy.max_age:
                deletions.append(
                    Deletion(
                        "branches",
                        name,
                        name,
                        f"stale: last commit {human_age(age)} ago (max_age {human_duration(policy.max_age)})",
                        created_at=branch.commit_date,
                    )
                )
            else:
                keep("recent" if merged_pr is None else "merged but within merged_min_age")
    return TargetPlan("branches", "repository", tuple(deletions), tuple(kept))


def plan_tags(
    tags: Sequence[Tag], policy: TagPolicy, now: datetime, *, protected: Iterable[str] = ()
) -> TargetPlan:
    """Git tags by age/keep-N. ``protected``: tag names that must stay (e.g. deployed releases)."""
    retention = policy.retention
    keep_names = set(protected)
    kept: list[Kept] = []
    deletions: list[Deletion] = []
    considered = [t for t in tags if not retention.include or matches_any(t.name, retention.include)]
    ordered = sorted(considered, key=lambda t: (_date_key(t.date) or _EPOCH, t.name), reverse=True)
    rank = {t.name: i for i, t in enumerate(ordered)}
    for tag in tags:
        if tag.name in keep_names:
            kept.append(Kept("tags", tag.name, tag.name, "protected (a deployed release)"))
        elif retention.keep and matches_any(tag.name, retention.keep):
            kept.append(Kept("tags", tag.name, tag.name, "matches a keep pattern"))
        elif tag.name not in rank:
            kept.append(Kept("tags", tag.name, tag.name, "not matched by include"))
        elif tag.date is None:
            kept.append(Kept("tags", tag.name, tag.name, "date unknown"))
        else:
            delete, why = _retention_decision(rank[tag.name], now - tag.date, retention, "tags")
            if delete:
                deletions.append(Deletion("tags", tag.name, tag.name, why, created_at=tag.date))
            else:
                kept.append(Kept("tags", tag.name, tag.name, why))
    return TargetPlan("tags", f"remote {policy.remote}", tuple(deletions), tuple(kept))


# ------------------------------------------------------------------------------------------------
# Artifacts and caches
# ------------------------------------------------------------------------------------------------


def group_name(name: str, prefixes: Sequence[str], *, strip_last_segment: bool = False) -> str:
    """The keep-N group of ``name``: the longest matching prefix, else the name itself (caches:
    the key without its last '-' segment, which is usually a hash)."""
    matching = [p for p in prefixes if name.startswith(p)]
    if matching:
        return max(matching, key=len) + "*"
    if strip_last_segment and "-" in name:
        return name.rsplit("-", 1)[0] + "-*"
    return name


def plan_artifacts(snapshot: ArtifactSnapshot, policy: ArtifactPolicy, now: datetime) -> TargetPlan:
    retention = policy.retention
    kept: list[Kept] = []
    deletions: list[Deletion] = []
    groups: dict[str, list[Artifact]] = {}
    for artifact in snapshot.artifacts:
        if retention.include and not matches_any(artifact.name, retention.include):
            kept.append(Kept("artifacts", str(artifact.id), artifact.name, "not matched by include"))
            continue
        groups.setdefault(group_name(artifact.name, policy.group_by), []).append(artifact)
    for group, members in sorted(groups.items()):
        ordered = _newest_first(members, lambda a: _date_key(a.created_at), lambda a: f"{a.id:020d}")
        for index, artifact in enumerate(ordered):
            ident, name = str(artifact.id), artifact.name
            if index < retention.keep_newest:
                kept.append(
                    Kept("artifacts", ident, name, f"among the {retention.keep_newest} newest of {group}")
                )
            elif artifact.run_id is not None and artifact.run_id in snapshot.active_runs:
                kept.append(Kept("artifacts", ident, name, f"run {artifact.run_id} is still in progress"))
            elif artifact.expired:
                kept.append(Kept("artifacts", ident, name, "expired (storage already freed)"))
            elif retention.keep and matches_any(name, retention.keep):
                kept.append(Kept("artifacts", ident, name, "matches a keep pattern"))
            else:
                delete, why = _retention_decision(index, now - artifact.created_at, retention, group)
                if delete:
                    deletions.append(
                        Deletion(
                            "artifacts",
                            ident,
                            name,
                            why,
                            bytes=artifact.size_in_bytes,
                            created_at=artifact.created_at,
                        )
                    )
                else:
                    kept.append(Kept("artifacts", ident, name, why))
    return TargetPlan("artifacts", "repository", tuple(deletions), tuple(kept))


def plan_caches(snapshot: CacheSnapshot, policy: CachePolicy, now: datetime) -> TargetPlan:
    retention = policy.retention
    kept: list[Kept] = []
    deletions: list[Deletion] = []
    groups: dict[tuple[str, str], list[Cache]] = {}
    for cache in snapshot.caches:
        if retention.include and not matches_any(cache.key, retention.include):
            kept.append(Kept("caches", str(cache.id), cache.key, "not matched by include"))
            continue
        group = group_name(cache.key, policy.group_by, strip_last_segment=True)
        groups.setdefault((group, cache.ref), []).append(cache)
    for (group, ref), members in sorted(groups.items()):
        ordered = _newest_first(members, lambda c: _date_key(c.last_accessed_at), lambda c: f"{c.id:020d}")
        label = f"{group} on {ref}"
        for index, cache in enumerate(ordered):
            ident, name = str(cache.id), cache.key
            idle = now - cache.last_accessed_at
            if index < retention.keep_newest:
                kept.append(
                    Kept(
                        "caches",
                        ident,
                        name,
                        f"among the {retention.keep_newest} most recently used of {label}",
                    )
                )
            elif cache.ref in snapshot.active_refs:
                kept.append(Kept("caches", ident, name, f"a run on {cache.ref} is in progress"))
            elif idle < policy.in_use_grace:
                kept.append(Kept("caches", ident, name, f"used {human_age(idle)} ago (in_use_grace)"))
            elif retention.keep and matches_any(name, retention.keep):
                kept.append(Kept("caches", ident, name, "matches a keep pattern"))
            else:
                delete, why = _retention_decision(index, idle, retention, label)
                if delete:
                    deletions.append(
                        Deletion(
                            "caches",
                            ident,
                            name,
                            why.replace(" old ", " unused "),
                            bytes=cache.size_in_bytes,
                            created_at=cache.created_at,
                        )
                    )
                else:
                    kept.append(Kept("caches", ident, name, why))
    return TargetPlan("caches", "repository", tuple(deletions), tuple(kept))


# ------------------------------------------------------------------------------------------------
# Packages
# ------------------------------------------------------------------------------------------------


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _version_label(version: PackageVersion) -> str:
    tags = ", ".join(version.tags)
    return f"{version.name} ({tags})" if tags else version.name


def _closure(
    seeds: Iterable[str], edges: Mapping[str, Sequence[str]], parents: dict[str, str] | None = None
) -> set[str]:
    """Every digest reachable from ``seeds`` (``parents`` records who reached whom first)."""
    seen = set(seeds)
    queue = deque(sorted(seen))
    while queue:
        digest = queue.popleft()
        for nxt in edges.get(digest, ()):
            if nxt not in seen:
                seen.add(nxt)
                if parents is not None:
                    parents[nxt] = digest
                queue.append(nxt)
    return seen


def missing_manifests(snapshot: PackageSnapshot) -> frozenset[str]:
    """Digests whose manifest the planner needs but the snapshot lacks (container packages)."""
    if snapshot.ref.type not in ("container", "docker"):
        return frozenset()
    return frozenset(normalize_digest(v.name) for v in snapshot.versions) - set(snapshot.manifests)


def plan_package(
    snapshot: PackageSnapshot, policy: PackagePolicy, deployed: frozenset[str], now: datetime
) -> TargetPlan:
    """Decide every version of one package (see the module docstring for the rules)."""
    ref = snapshot.ref
    scope = f"package {ref.owner}/{ref.name}"
    container = ref.type in ("container", "docker")
    deployed_n = frozenset(normalize_digest(d) for d in deployed)
    versions = _newest_first(snapshot.versions, lambda v: _date_key(v.created_at), lambda v: f"{v.id:020d}")
    if container and (snapshot.unresolved or missing_manifests(snapshot)):
        why = snapshot.unresolved or f"{len(missing_manifests(snapshot))} manifest(s) not resolved"
        untouched = tuple(Kept("packages", str(v.id), _version_label(v), "package skipped") for v in versions)
        return TargetPlan(
            "packages",
            scope,
            (),
            untouched,
            skipped=f"{why}; nothing is deleted without the full image graph",
        )

    by_digest: dict[str, PackageVersion] = {}
    for version in versions:
        by_digest.setdefault(normalize_digest(version.name), version)

    def digest_of(version: PackageVersion) -> str:
        return normalize_digest(version.name)

    # Edges: index → its entries; image → its signatures/attestations (subject or cosign tag).
    edges: dict[str, list[str]] = {}
    relation: dict[tuple[str, str], str] = {}
    if container:
        for version in versions:
            digest = digest_of(version)
            manifest: Manifest | None = snapshot.manifests.get(digest)
            if manifest is not None:
                for child in manifest.children:
                    edges.setdefault(digest, []).append(child)
                    relation[(digest, child)] = "platform manifest/attestation of index"
                if manifest.subject:
                    edges.setdefault(manifest.subject, []).append(digest)
                    relation[(manifest.subject, digest)] = "referrer (signature/attestation) of"
            tag_subject = signature_subject(version.tags)
            if tag_subject:
                edges.setdefault(tag_subject, []).append(digest)
                relation[(tag_subject, digest)] = "signature/attestation (cosign tag) of"

    def is_root(version: PackageVersion) -> bool:
        if not container:
            return True
        return bool(version.tags) and signature_subject(version.tags) is None

    kept_reason: dict[str, str] = {}
    candidates: dict[str, str] = {}  # digest → deletion reason (roots chosen by retention)
    retention = Retention(policy.max_age, policy.keep_newest, (), ())
    roots = [v for v in versions if is_root(v)]
    what = "tagged images" if container else "versions"
    for index, version in enumerate(roots):
        digest = digest_of(version)
        names = version.tags or (version.name,)
        if digest in deployed_n:
            kept_reason[digest] = "deployed (recorded in a deployment)"
        elif policy.keep_tags and any(matches_any(t, policy.keep_tags) for t in names):
            kept_reason[digest] = "a tag matches keep_tags"
        elif policy.include_tags and not any(matches_any(t, policy.include_tags) for t in names):
            kept_reason[digest] = "not matched by include_tags"
        else:
            delete, why = _retention_decision(index, now - version.created_at, retention, what)
            if delete:
                candidates[digest] = why
            else:
                kept_reason[digest] = why
    for version in versions:
        digest = digest_of(version)
        if digest in deployed_n:
            kept_reason[digest] = "deployed (recorded in a deployment)"
            candidates.pop(digest, None)
    if roots and all(digest_of(v) in candidates for v in roots):
        # GitHub refuses to delete the last tagged version of a package (delete the package
        # instead), and a package emptied by a retention rule is rarely what anyone meant.
        newest = digest_of(roots[0])
        candidates.pop(newest)
        kept_reason[newest] = "the newest version: a package is never emptied (delete the package instead)"

    parents: dict[str, str] = {}
    kept_set = _closure(kept_reason, edges, parents)
    # Orphans: neither kept nor part of a deleted image. Young ones (a push in progress uploads
    # children before the index) and all of them under ``orphans: keep`` stay — with everything
    # they reference.
    doomed = _closure((d for d in candidates if d not in kept_set), edges)
    orphan_keep: dict[str, str] = {}
    for version in versions:
        digest = digest_of(version)
        if digest in kept_set or digest in doomed:
            continue
        if policy.orphans == "keep":
            orphan_keep[digest] = "orphan kept (orphans: keep)"
        elif now - version.created_at < policy.orphan_min_age:
            orphan_keep[digest] = (
                f"orphan younger than orphan_min_age {human_duration(policy.orphan_min_age)}"
            )
    if orphan_keep:
        kept_reason.update(orphan_keep)
        parents = {}
        kept_set = _closure(kept_reason, edges, parents)
    cascade_parents: dict[str, str] = {}
    roots_deleted = [d for d in candidates if d not in kept_set]
    doomed = _closure(roots_deleted, edges, cascade_parents)

    # Bytes: manifest + blobs no kept manifest uses (each blob counted once).
    kept_blobs = {blob for digest in kept_set for blob, _ in (snapshot.manifests.get(digest) or _EMPTY).blobs}
    counted: set[str] = set()

    def freed(digest: str) -> int:
        manifest = snapshot.manifests.get(digest)
        if manifest is None:
            return 0
        total = manifest.size
        for blob, size in manifest.blobs:
            if blob not in kept_blobs and blob not in counted:
                counted.add(blob)
                total += size
        return total

    deletions: list[Deletion] = []
    kept: list[Kept] = []
    for version in versions:
        digest = digest_of(version)
        label = _version_label(version)
        ident = str(version.id)
        if digest in kept_set:
            if digest in kept_reason:
                reason = kept_reason[digest]
            else:
                parent = parents.get(digest, "")
                reason = f"{relation.get((parent, digest), 'referenced by')} kept {_short(parent)}"
            kept.append(Kept("packages", ident, label, reason))
            continue
        if digest in candidates:
            reason = candidates[digest]
        elif digest in doomed:
            parent = cascade_parents.get(digest, "")
            reason = f"{relation.get((parent, digest), 'part of')} deleted {_short(parent)}"
        else:
            what_orphan = (
                "signature/attestation of a missing image" if signature_subject(version.tags) else "untagged"
            )
            reason = (
                f"{what_orphan}, referenced by no kept version, {human_age(now - version.created_at)} old"
            )
        deletions.append(
            Deletion(
                "packages",
                ident,
                label,
                reason,
                bytes=freed(digest),
                package=ref,
                created_at=version.created_at,
            )
        )
    return TargetPlan("packages", scope, tuple(_parents_first(deletions, edges)), tuple(kept))


def _parents_first(deletions: list[Deletion], edges: Mapping[str, Sequence[str]]) -> list[Deletion]:
    """Order deletions so an index goes before its entries and an image before its signatures:
    a run interrupted half-way then leaves harmless orphans, never a tag pointing at a broken
    index. Within one level the planner's order (newest first) is kept."""
    digest_of = {d.id: normalize_digest(d.name.split(" ", 1)[0]) for d in deletions}
    doomed = set(digest_of.values())
    indegree = dict.fromkeys(doomed, 0)
    for parent in doomed:
        for child in edges.get(parent, ()):
            if child in doomed and child != parent:
                indegree[child] += 1
    ordered: list[Deletion] = []
    remaining = list(deletions)
    while remaining:
        ready = [d for d in remaining if indegree[digest_of[d.id]] == 0] or remaining[
            :1
        ]  # no cycles, but never loop
        for deletion in ready:
            remaining.remove(deletion)
            ordered.append(deletion)
            for child in edges.get(digest_of[deletion.id], ()):
                if child in indegree:
                    indegree[child] -= 1
    return ordered


_EMPTY = Manifest(digest="", media_type="", size=0)
