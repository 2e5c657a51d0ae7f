"""Property-based tests of the cleanup planner (hypothesis): for random repositories and random
policies, nothing that must stay is ever planned for deletion."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devops_agent.cleanup.model import (
    ArtifactSnapshot,
    CacheSnapshot,
    PackageRef,
    PackageSnapshot,
    RepoSnapshot,
    Tag,
)
from devops_agent.cleanup.oci import OCI_INDEX, OCI_MANIFEST, Manifest, signature_subject
from devops_agent.cleanup.planner import (
    group_name,
    plan_artifacts,
    plan_branches,
    plan_caches,
    plan_package,
    plan_tags,
)
from devops_agent.cleanup.policy import (
    ArtifactPolicy,
    BranchPolicy,
    CachePolicy,
    PackagePolicy,
    Retention,
    TagPolicy,
    matches_any,
)
from devops_agent.core.platform import Artifact, Branch, Cache, PackageVersion, PullRequest

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ages = st.integers(min_value=0, max_value=400 * 24).map(lambda h: NOW - timedelta(hours=h))
durations = st.one_of(st.none(), st.integers(min_value=0, max_value=200).map(lambda d: timedelta(days=d)))
patterns = st.lists(st.sampled_from(["release/*", "keep-*", "v1*", "*-lts", "feat/a*"]), max_size=2)


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


# ------------------------------------------------------------------------------------------------
# Branches
# ------------------------------------------------------------------------------------------------

branch_names = st.sampled_from(
    [
        "main",
        "develop",
        "release/1",
        "release/2",
        "feat/a1",
        "feat/a2",
        "feat/b",
        "fix/x",
        "keep-me",
        "old",
        "x-lts",
    ]
)


@st.composite
def repositories(draw: st.DrawFn) -> tuple[RepoSnapshot, BranchPolicy]:
    names = draw(st.lists(branch_names, min_size=1, max_size=11, unique=True))
    default = draw(st.sampled_from(names))
    branches = tuple(
        Branch(
            name,
            hashlib.sha256(name.encode()).hexdigest()[:40],  # a fake commit sha
            protected=draw(st.integers(min_value=0, max_value=3)) == 0,
            commit_date=draw(st.one_of(ages, ages, st.none())),
        )
        for name in names
    )
    pr_heads = draw(st.lists(st.sampled_from(names), max_size=4))
    open_prs = tuple(
        PullRequest(i + 1, "pr", "open", head, "sha", draw(st.sampled_from(names)))
        for i, head in enumerate(pr_heads)
    )
    closed_heads = draw(st.lists(st.sampled_from(branches), max_size=5))
    closed_prs = tuple(
        PullRequest(100 + i, "pr", "closed", b.name, b.sha, default) for i, b in enumerate(closed_heads)
    )
    policy = BranchPolicy(
        max_age=draw(durations),
        keep_newest=draw(st.integers(min_value=0, max_value=4)),
        delete_merged=draw(st.booleans()),
        merged_min_age=draw(st.integers(min_value=0, max_value=3).map(lambda d: timedelta(days=d))),
        include=tuple(draw(st.lists(st.sampled_from(["*", "feat/*", "release/*", "old"]), max_size=2))),
        keep=tuple(draw(patterns)),
    )
    return RepoSnapshot(default, branches, open_prs, closed_prs), policy


@PROPS
@given(repositories())
def test_no_protected_default_open_pr_keep_or_newest_branch_is_ever_planned(
    case: tuple[RepoSnapshot, BranchPolicy],
) -> None:
    snapshot, policy = case
    plan = plan_branches(snapshot, policy, NOW)
    deleted = {d.id for d in plan.deletions}
    by_name = {b.name: b for b in snapshot.branches}
    assert snapshot.default_branch not in deleted
    for name in deleted:
        branch = by_name[name]
        assert not branch.protected
        assert all(name not in (pr.head_ref, pr.base_ref) for pr in snapshot.open_prs)
        assert not (policy.keep and matches_any(name, policy.keep))
        assert not policy.include or matches_any(name, policy.include)
        assert branch.commit_date is not None
    considered = [
        b
        for b in snapshot.branches
        if b.name != snapshot.default_branch and (not policy.include or matches_any(b.name, policy.include))
    ]
    considered.sort(
        key=lambda b: (b.commit_date or datetime.min.replace(tzinfo=timezone.utc), b.name), reverse=True
    )
    newest = {b.name for b in considered[: policy.keep_newest]}
    assert not deleted & newest
    # every branch is decided exactly once
    assert len(plan.deletions) + len(plan.kept) == len(snapshot.branches)


# ------------------------------------------------------------------------------------------------
# Artifacts and caches
# ------------------------------------------------------------------------------------------------


@st.composite
def artifact_cases(draw: st.DrawFn) -> tuple[ArtifactSnapshot, ArtifactPolicy]:
    count = draw(st.integers(min_value=0, max_value=30))
    artifacts = tuple(
        Artifact(
            id=1000 + i,
            name=draw(st.sampled_from(["dist", "sbom-cdx", "sbom-spdx", "logs", "keep-me"])),
            size_in_bytes=draw(st.integers(min_value=0, max_value=10**6)),
            expired=draw(st.booleans()),
            created_at=draw(ages),
            run_id=draw(st.integers(min_value=1, max_value=6)),
        )
        for i in range(count)
    )
    active = frozenset(draw(st.lists(st.integers(min_value=1, max_value=6), max_size=3)))
    max_age = draw(durations)
    keep_newest = draw(st.integers(min_value=0 if max_age else 1, max_value=4))
    policy = ArtifactPolicy(
        retention=Retention(max_age, keep_newest, (), tuple(draw(patterns))),
        group_by=tuple(draw(st.lists(st.sampled_from(["sbom-", "lo"]), max_size=2))),
    )
    return ArtifactSnapshot(artifacts, active), policy


@PROPS
@given(artifact_cases())
def test_artifacts_never_of_active_runs_nor_newest_n_per_group(
    case: tuple[ArtifactSnapshot, ArtifactPolicy],
) -> None:
    snapshot, policy = case
    plan = plan_artifacts(snapshot, policy, NOW)
    deleted = {int(d.id) for d in plan.deletions}
    groups: dict[str, list[Artifact]] = {}
    for artifact in snapshot.artifacts:
        groups.setdefault(group_name(artifact.name, policy.group_by), []).append(artifact)
        if artifact.id in deleted:
            assert artifact.run_id not in snapshot.active_runs
            assert not artifact.expired
            if policy.retention.max_age is not None:
                assert NOW - artifact.created_at > policy.retention.max_age
    for members in groups.values():
        members.sort(key=lambda a: (a.created_at, a.id), reverse=True)
        assert not {a.id for a in members[: policy.retention.keep_newest]} & deleted
    assert sum(d.bytes for d in plan.deletions) == sum(
        a.size_in_bytes for a in snapshot.artifacts if a.id in deleted
    )


@st.composite
def cache_cases(draw: st.DrawFn) -> tuple[CacheSnapshot, CachePolicy]:
    count = draw(st.integers(min_value=0, max_value=30))
    caches = []
    for i in range(count):
        used = draw(ages)
        caches.append(
            Cache(
                id=i + 1,
                key=draw(st.sampled_from(["pip-Linux-", "npm-Linux-", "setup-"]))
                + draw(st.sampled_from("abcdef")),
                ref=draw(st.sampled_from(["refs/heads/main", "refs/heads/feat", "refs/pull/1/merge"])),
                size_in_bytes=draw(st.integers(min_value=0, max_value=10**6)),
                created_at=used - timedelta(hours=draw(st.integers(min_value=0, max_value=100))),
                last_accessed_at=used,
            )
        )
    active = frozenset(draw(st.lists(st.sampled_from(["refs/heads/feat", "refs/pull/1/merge"]), max_size=1)))
    max_age = draw(durations)
    policy = CachePolicy(
        retention=Retention(max_age, draw(st.integers(min_value=0 if max_age else 1, max_value=3))),
        in_use_grace=timedelta(hours=draw(st.integers(min_value=0, max_value=48))),
    )
    return CacheSnapshot(tuple(caches), active), policy


@PROPS
@given(cache_cases())
def test_caches_never_in_use_nor_newest_n_per_prefix_and_ref(case: tuple[CacheSnapshot, CachePolicy]) -> None:
    snapshot, policy = case
    plan = plan_caches(snapshot, policy, NOW)
    deleted = {int(d.id) for d in plan.deletions}
    groups: dict[tuple[str, str], list[Cache]] = {}
    for cache in snapshot.caches:
        groups.setdefault((group_name(cache.key, (), strip_last_segment=True), cache.ref), []).append(cache)
        if cache.id in deleted:
            assert cache.ref not in snapshot.active_refs
            assert NOW - cache.last_accessed_at >= policy.in_use_grace
    for members in groups.values():
        members.sort(key=lambda c: (c.last_accessed_at, c.id), reverse=True)
        assert not {c.id for c in members[: policy.retention.keep_newest]} & deleted


# ------------------------------------------------------------------------------------------------
# Registry packages: random image graphs
# ------------------------------------------------------------------------------------------------


@st.composite
def registries(draw: st.DrawFn) -> tuple[PackageSnapshot, PackagePolicy, frozenset[str]]:
    """A random container package: single images, multi-arch indexes (children untagged, some
    shared between indexes), BuildKit attestation children, OCI referrers with ``subject``, cosign
    ``sha256-<hex>.sig`` tags, untagged leftovers; random tags, ages and deployed digests."""
    versions: list[PackageVersion] = []
    manifests: dict[str, Manifest | None] = {}
    next_id = iter(range(1, 10_000))
    all_digests: list[str] = []
    children_pool: list[str] = []

    def add(d: str, tags: tuple[str, ...], created: datetime, manifest: Manifest) -> None:
        versions.append(PackageVersion(next(next_id), d, tags, created, created))
        manifests[d] = manifest
        all_digests.append(d)

    images = draw(st.integers(min_value=0, max_value=14))
    for i in range(images):
        created = draw(ages)
        tags = tuple(
            draw(
                st.lists(
                    st.sampled_from([f"v1.{i}", f"build-{i}", "latest", f"main-{i}", "v2-lts"]),
                    max_size=2,
                    unique=True,
                )
            )
        )
        image = digest(f"image-{i}")
        if draw(st.booleans()):  # multi-arch index
            kids = []
            for arch in range(draw(st.integers(min_value=1, max_value=3))):
                if children_pool and draw(st.integers(min_value=0, max_value=4)) == 0:
                    kids.append(draw(st.sampled_from(children_pool)))  # shared child
                    continue
                child = digest(f"image-{i}-arch-{arch}")
                add(
                    child,
                    (),
                    created - timedelta(minutes=1),
                    Manifest(child, OCI_MANIFEST, 500, blobs=((digest(f"layer-{i}-{arch}"), 1000),)),
                )
                kids.append(child)
                children_pool.append(child)
            if draw(st.booleans()):  # BuildKit attestation manifest inside the index
                att = digest(f"image-{i}-att")
                add(att, (), created - timedelta(minutes=1), Manifest(att, OCI_MANIFEST, 300))
                kids.append(att)
            add(image, tags, created, Manifest(image, OCI_INDEX, 400, children=tuple(kids)))
        else:
            add(
                image,
                tags,
                created,
                Manifest(image, OCI_MANIFEST, 500, blobs=((digest(f"layer-{i}"), 2000),)),
            )
        if draw(st.booleans()):  # cosign signature by tag
            sig = digest(f"sig-{i}")
            add(sig, (f"sha256-{image.split(':')[1]}.sig",), created, Manifest(sig, OCI_MANIFEST, 200))
        if draw(st.booleans()):  # OCI 1.1 referrer with subject (untagged)
            ref = digest(f"ref-{i}")
            add(ref, (), created, Manifest(ref, OCI_MANIFEST, 200, subject=image))
    for j in range(draw(st.integers(min_value=0, max_value=4))):  # untagged leftovers
        left = digest(f"leftover-{j}")
        add(left, (), draw(ages), Manifest(left, OCI_MANIFEST, 100))
    deployed = frozenset(draw(st.lists(st.sampled_from(all_digests), max_size=3)) if all_digests else [])
    max_age = draw(durations)
    policy = PackagePolicy(
        name="app",
        max_age=max_age,
        keep_newest=draw(st.integers(min_value=0 if max_age else 1, max_value=4)),
        keep_tags=tuple(draw(st.lists(st.sampled_from(["latest", "*-lts", "v1.1"]), max_size=2))),
        include_tags=tuple(draw(st.lists(st.sampled_from(["v*", "build-*", "main-*"]), max_size=2))),
        orphans=draw(st.sampled_from(["delete", "keep"])),
        orphan_min_age=timedelta(hours=draw(st.integers(min_value=0, max_value=48))),
    )
    snapshot = PackageSnapshot(PackageRef("org", "octo-org", "container", "app"), tuple(versions), manifests)
    return snapshot, policy, deployed


def _references(snapshot: PackageSnapshot, version: PackageVersion) -> set[str]:
    """Digests that must stay when ``version`` stays: index entries + its signatures/referrers."""
    out: set[str] = set()
    manifest = snapshot.manifests[version.name]
    if manifest is not None:
        out.update(manifest.children)
    for other in snapshot.versions:
        other_manifest = snapshot.manifests[other.name]
        if signature_subject(other.tags) == version.name or (
            other_manifest and other_manifest.subject == version.name
        ):
            out.add(other.name)
    return out


@PROPS
@given(registries())
def test_registry_never_deletes_deployed_children_or_signatures_of_kept_or_newest_n(
    case: tuple[PackageSnapshot, PackagePolicy, frozenset[str]],
) -> None:
    snapshot, policy, deployed = case
    plan = plan_package(snapshot, policy, deployed, NOW)
    assert plan.skipped is None
    deleted = {
        snapshot_version.name
        for snapshot_version in snapshot.versions
        if str(snapshot_version.id) in {d.id for d in plan.deletions}
    }
    # 1. no deployed digest
    assert not deleted & deployed
    # 2. nothing a kept version references (index children, signatures, attestations)
    for version in snapshot.versions:
        if version.name not in deleted:
            assert not _references(snapshot, version) & deleted, version
    # 3. the newest N tagged images and keep_tags matches stay
    roots = [v for v in snapshot.versions if v.tags and signature_subject(v.tags) is None]
    roots.sort(key=lambda v: (v.created_at, v.id), reverse=True)
    assert not {v.name for v in roots[: policy.keep_newest]} & deleted
    for version in roots:
        if policy.keep_tags and any(matches_any(t, policy.keep_tags) for t in version.tags):
            assert version.name not in deleted
    assert not roots or any(v.name not in deleted for v in roots)  # a package is never emptied
    # 4. an orphan (not part of a deleted tagged image) goes only under `orphans: delete` and
    #    only when older than orphan_min_age
    by_name = {v.name: v for v in snapshot.versions}
    reach = {v.name for v in roots if v.name in deleted}
    frontier = list(reach)
    while frontier:
        for ref in _references(snapshot, by_name[frontier.pop()]):
            if ref in by_name and ref not in reach:
                reach.add(ref)
                frontier.append(ref)
    for name in deleted - reach:
        assert policy.orphans == "delete"
        assert NOW - by_name[name].created_at >= policy.orphan_min_age
    # 5. every version decided once; bytes never negative
    assert len(plan.deletions) + len(plan.kept) == len(snapshot.versions)
    assert all(d.bytes >= 0 for d in plan.deletions)
    # 6. applying the plan and planning again deletes nothing more (idempotent end state)
    remaining = tuple(v for v in snapshot.versions if v.name not in deleted)
    again = plan_package(replace(snapshot, versions=remaining), policy, deployed, NOW)
    assert again.deletions == ()


@PROPS
@given(registries())
def test_registry_skips_the_package_when_any_manifest_is_unknown(
    case: tuple[PackageSnapshot, PackagePolicy, frozenset[str]],
) -> None:
    snapshot, policy, deployed = case
    if not snapshot.versions:
        return
    manifests = dict(snapshot.manifests)
    manifests.pop(snapshot.versions[0].name)
    plan = plan_package(replace(snapshot, manifests=manifests), policy, deployed, NOW)
    assert plan.deletions == ()
    assert plan.skipped


@st.composite
def tag_cases(draw: st.DrawFn) -> tuple[list[Tag], TagPolicy, set[str]]:
    names = draw(
        st.lists(
            st.sampled_from(["v1.0", "v1.1", "v2.0", "nightly-1", "nightly-2", "rc-1", "x"]), unique=True
        )
    )
    tags = [
        Tag(n, hashlib.sha256(n.encode()).hexdigest()[:40], draw(st.one_of(ages, ages, st.none())))
        for n in names
    ]
    max_age = draw(durations)
    retention = Retention(
        max_age,
        draw(st.integers(min_value=0 if max_age else 1, max_value=3)),
        tuple(draw(st.lists(st.sampled_from(["v*", "nightly-*", "*"]), max_size=2))),
        tuple(draw(st.lists(st.sampled_from(["v*", "rc-*"]), max_size=1))),
    )
    protected = set(draw(st.lists(st.sampled_from(names), max_size=2))) if names else set()
    return tags, TagPolicy(enabled=True, retention=retention), protected


@PROPS
@given(tag_cases())
def test_tags_never_keep_pattern_protected_or_newest_n(case: tuple[list[Tag], TagPolicy, set[str]]) -> None:
    tags, policy, protected = case
    plan = plan_tags(tags, policy, NOW, protected=protected)
    deleted = {d.id for d in plan.deletions}
    retention = policy.retention
    assert not deleted & protected
    for name in deleted:
        assert not (retention.keep and matches_any(name, retention.keep))
        assert not retention.include or matches_any(name, retention.include)
    considered = [t for t in tags if not retention.include or matches_any(t.name, retention.include)]
    considered.sort(key=lambda t: (t.date or datetime.min.replace(tzinfo=timezone.utc), t.name), reverse=True)
    assert not {t.name for t in considered[: retention.keep_newest]} & deleted
