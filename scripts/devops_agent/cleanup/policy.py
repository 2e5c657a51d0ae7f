"""The cleanup policy: a YAML/JSON file validated by ``schemas/cleanup-policy.schema.json`` and
turned once into frozen dataclasses the planner reads."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from devops_agent.core.errors import ConfigError

SCHEMA_NAME = "cleanup-policy.schema.json"
TARGETS: tuple[str, ...] = ("branches", "tags", "artifacts", "caches", "packages")
DEFAULT_TARGETS: tuple[str, ...] = ("branches", "artifacts", "caches", "packages")

_DURATION = re.compile(r"^([0-9]+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

OwnerKindOpt = Literal["user", "org"]


def parse_duration(value: str, *, field_name: str) -> timedelta:
    """``"30d"`` → 30 days. ConfigError naming ``field_name`` otherwise."""
    match = _DURATION.match(value.strip())
    if not match:
        raise ConfigError(
            f"{value!r} is not a duration",
            "write a whole number and a unit s|m|h|d|w, e.g. 12h, 30d or 2w",
            field=field_name,
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def matches_any(name: str, patterns: Sequence[str]) -> bool:
    """Whether ``name`` matches one of the shell-style ``patterns`` (case-sensitive)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


@dataclass(frozen=True)
class Retention:
    """Delete an item only when older than ``max_age`` (if set) AND not among the newest
    ``keep_newest`` of its group. At least one of the two is set (the schema says so)."""

    max_age: timedelta | None = None
    keep_newest: int = 0
    include: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class BranchPolicy:
    enabled: bool = True
    max_age: timedelta | None = None
    keep_newest: int = 0
    delete_merged: bool = True
    merged_min_age: timedelta = timedelta(days=1)
    include: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class TagPolicy:
    enabled: bool = False
    retention: Retention = field(default_factory=Retention)
    remote: str = "origin"


@dataclass(frozen=True)
class ArtifactPolicy:
    enabled: bool = True
    retention: Retention = field(default_factory=Retention)
    group_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class CachePolicy:
    enabled: bool = True
    retention: Retention = field(default_factory=Retention)
    group_by: tuple[str, ...] = ()
    in_use_grace: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class PackagePolicy:
    name: str
    owner: str | None = None
    owner_kind: OwnerKindOpt | None = None
    type: str = "container"
    enabled: bool = True
    max_age: timedelta | None = None
    keep_newest: int = 0
    include_tags: tuple[str, ...] = ()
    keep_tags: tuple[str, ...] = ()
    orphans: Literal["delete", "keep"] = "delete"
    orphan_min_age: timedelta = timedelta(days=1)
    registry: str | None = None
    image: str | None = None

    @property
    def label(self) -> str:
        owner = f"{self.owner}/" if self.owner else ""
        return f"{self.type}:{owner}{self.name}"


@dataclass(frozen=True)
class DeletionSettings:
    write_interval: float = 1.0
    max_deletions: int = 5000


@dataclass(frozen=True)
class LocalImagesPolicy:
    engine: Literal["auto", "docker", "podman"] = "auto"
    max_age: timedelta = timedelta(days=7)
    prune_build_cache: bool = True


@dataclass(frozen=True)
class CleanupPolicy:
    """The whole policy. A target whose section is absent is ``None`` (nothing to do)."""

    branches: BranchPolicy | None = None
    tags: TagPolicy | None = None
    artifacts: ArtifactPolicy | None = None
    caches: CachePolicy | None = None
    packages: tuple[PackagePolicy, ...] = ()
    deletions: DeletionSettings = field(default_factory=DeletionSettings)
    local_images: LocalImagesPolicy = field(default_factory=LocalImagesPolicy)
    source: str = "<policy>"

    def enabled_targets(self) -> tuple[str, ...]:
        out = []
        if self.branches and self.branches.enabled:
            out.append("branches")
        if self.tags and self.tags.enabled:
            out.append("tags")
        if self.artifacts and self.artifacts.enabled:
            out.append("artifacts")
        if self.caches and self.caches.enabled:
            out.append("caches")
        if any(p.enabled for p in self.packages):
            out.append("packages")
        return tuple(out)


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


def load_schema() -> Mapping[str, Any]:
    from importlib import resources

    text = resources.files("devops_agent").joinpath("data").joinpath(SCHEMA_NAME).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def load_policy(path: Path) -> CleanupPolicy:
    """Read, validate and convert a policy file. ConfigError (exit 2) on any problem."""
    from devops_agent.core.config import read_yaml

    if not path.is_file():
        raise ConfigError(
            f"cleanup policy {path} does not exist",
            "pass --policy FILE (action input `policy`); start from examples/cleanup-policy.yml",
            field="--policy",
        )
    return policy_from_data(read_yaml(path), source=str(path))


def policy_from_data(data: Any, *, source: str = "<policy>") -> CleanupPolicy:
    from devops_agent.core.config import validate_document

    if data is None:
        raise ConfigError(f"{source}: the policy file is empty", "start from examples/cleanup-policy.yml")
    errors = validate_document(data, load_schema(), source=source)
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(first.cause + more, first.fix, field=first.field)
    return _convert(data, source)


def _dur(
    section: Mapping[str, Any], key: str, where: str, default: timedelta | None = None
) -> timedelta | None:
    value = section.get(key)
    if value is None:
        return default
    return parse_duration(str(value), field_name=f"{where}.{key}")


def _retention(section: Mapping[str, Any], where: str) -> Retention:
    return Retention(
        max_age=_dur(section, "max_age", where),
        keep_newest=int(section.get("keep_newest", 0)),
        include=tuple(section.get("include", ())),
        keep=tuple(section.get("keep", ())),
    )


def _convert(data: Mapping[str, Any], source: str) -> CleanupPolicy:
    branches = tags = artifacts = caches = None
    if "branches" in data:
        b = data["branches"]
        branches = BranchPolicy(
            enabled=bool(b.get("enabled", True)),
            max_age=_dur(b, "max_age", "branches"),
            keep_newest=int(b.get("keep_newest", 0)),
            delete_merged=bool(b.get("delete_merged", True)),
            merged_min_age=_dur(b, "merged_min_age", "branches", timedelta(days=1)) or timedelta(0),
            include=tuple(b.get("include", ())),
            keep=tuple(b.get("keep", ())),
        )
    if "tags" in data:
        t = data["tags"]
        tags = TagPolicy(
            enabled=bool(t.get("enabled", False)),
            retention=_retention(t, "tags"),
            remote=str(t.get("remote", "origin")),
        )
    if "artifacts" in data:
        a = data["artifacts"]
        artifacts = ArtifactPolicy(
            enabled=bool(a.get("enabled", True)),
            retention=_retention(a, "artifacts"),
            group_by=tuple(a.get("group_by", ())),
        )
    if "caches" in data:
        c = data["caches"]
        caches = CachePolicy(
            enabled=bool(c.get("enabled", True)),
            retention=_retention(c, "caches"),
            group_by=tuple(c.get("group_by", ())),
            in_use_grace=_dur(c, "in_use_grace", "caches", timedelta(hours=1)) or timedelta(0),
        )
    packages = []
    seen: set[tuple[str | None, str, str]] = set()
    for index, p in enumerate(data.get("packages", ())):
        where = f"packages[{index}]"
        pkg = PackagePolicy(
            name=str(p["name"]),
            owner=p.get("owner"),
            owner_kind=p.get("owner_kind"),
            type=str(p.get("type", "container")),
            enabled=bool(p.get("enabled", True)),
            max_age=_dur(p, "max_age", where),
            keep_newest=int(p.get("keep_newest", 0)),
            include_tags=tuple(p.get("include_tags", ())),
            keep_tags=tuple(p.get("keep_tags", ())),
            orphans=p.get("orphans", "delete"),
            orphan_min_age=_dur(p, "orphan_min_age", where, timedelta(days=1)) or timedelta(0),
            registry=p.get("registry"),
            image=p.get("image"),
        )
        identity = (pkg.owner, pkg.type, pkg.name)
        if identity in seen:
            raise ConfigError(
                f"package {pkg.label} is listed twice",
                "merge the two entries into one (a version must be decided by one rule)",
                field=where,
            )
        seen.add(identity)
        packages.append(pkg)
    d = data.get("deletions", {})
    li = data.get("local_images", {})
    return CleanupPolicy(
        branches=branches,
        tags=tags,
        artifacts=artifacts,
        caches=caches,
        packages=tuple(packages),
        deletions=DeletionSettings(
            write_interval=float(d.get("write_interval", 1.0)),
            max_deletions=int(d.get("max_deletions", 5000)),
        ),
        local_images=LocalImagesPolicy(
            engine=li.get("engine", "auto"),
            max_age=_dur(li, "max_age", "local_images", timedelta(days=7)) or timedelta(days=7),
            prune_build_cache=bool(li.get("prune_build_cache", True)),
        ),
        source=source,
    )
