"""Environments as code: the YAML file, the desired specs, and the diff against what exists.

parse (:func:`load_file`: YAML → schema → :class:`DesiredEnvironment`) → resolve reviewer names
to ids (:func:`resolve`, the only platform reads) → diff (:func:`diff_environment`, pure) → the
stage applies what differs with ``Platform.put_environment`` (which sends every field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devops_agent.core.errors import ConfigError
from devops_agent.core.platform import (
    BranchPolicy,
    BranchPolicyType,
    DeploymentBranchPolicy,
    EnvironmentSpec,
    Reviewer,
    ReviewerType,
)

SCHEMA_NAME = "environments.schema.json"
#: The fields compared and shown, in display order.
FIELDS: tuple[str, ...] = (
    "reviewers",
    "wait_timer",
    "prevent_self_review",
    "can_admins_bypass",
    "deployment_branches",
    "branch_policies",
)


@dataclass(frozen=True)
class ReviewerName:
    type: ReviewerType
    name: str  # user login, or org/team-slug


@dataclass(frozen=True)
class DesiredEnvironment:
    """One environment as the file states it (reviewers by name, not id yet)."""

    name: str
    reviewers: tuple[ReviewerName, ...] = ()
    wait_timer: int = 0
    prevent_self_review: bool = False
    can_admins_bypass: bool = True
    deployment_branches: str = "all"  # all | protected | custom
    branch_policies: tuple[BranchPolicy, ...] = ()

    def spec(self, reviewers: Sequence[Reviewer]) -> EnvironmentSpec:
        policy = {
            "all": None,
            "protected": DeploymentBranchPolicy(protected_branches=True, custom_branch_policies=False),
            "custom": DeploymentBranchPolicy(protected_branches=False, custom_branch_policies=True),
        }[self.deployment_branches]
        return EnvironmentSpec(
            name=self.name,
            reviewers=tuple(reviewers),
            wait_timer=self.wait_timer,
            prevent_self_review=self.prevent_self_review,
            can_admins_bypass=self.can_admins_bypass,
            deployment_branch_policy=policy,
            branch_policies=self.branch_policies,
        )


def load_schema() -> dict[str, Any]:
    from devops_agent.core.config import load_schema as _load

    return _load(SCHEMA_NAME)


def parse_document(data: Any, *, source: str, owner: str | None = None) -> tuple[DesiredEnvironment, ...]:
    """A parsed YAML document → desired environments; ConfigError (all problems) when invalid."""
    from devops_agent.core.config import ConfigErrors, find_literal_secrets, validate_document

    if data is None:
        raise ConfigError(f"{source}: the file is empty", "start from examples/environments.yml")
    errors = validate_document(data, load_schema(), source=source)
    for path, kind in find_literal_secrets(data):
        errors.append(ConfigError(f"{source}: {path}: looks like {kind}", "never write tokens in this file"))
    if errors:
        raise ConfigErrors(errors)
    out = []
    for name, section in sorted((data.get("environments") or {}).items()):
        raw = section or {}
        where = f"environments.{name}"
        reviewers_raw = raw.get("reviewers") or {}
        reviewers = [ReviewerName("User", str(u)) for u in reviewers_raw.get("users") or ()]
        for team in reviewers_raw.get("teams") or ():
            text = str(team)
            if "/" not in text:
                if not owner:
                    raise ConfigError(
                        f"team {text!r} has no organisation",
                        "write it as org/team-slug",
                        field=f"{where}.reviewers.teams",
                    )
                text = f"{owner}/{text}"
            reviewers.append(ReviewerName("Team", text))
        if len(reviewers) > 6:
            raise ConfigError(
                f"{len(reviewers)} reviewers given; GitHub allows at most 6 users and teams together",
                "list at most 6 (a team counts as one)",
                field=f"{where}.reviewers",
            )
        branches = str(raw.get("deployment_branches", "all"))
        policies: list[BranchPolicy] = []
        for item in raw.get("branch_policies") or ():
            if isinstance(item, str):
                policies.append(BranchPolicy(item, "branch"))
            else:
                policy_type: BranchPolicyType = "tag" if item.get("type") == "tag" else "branch"
                policies.append(BranchPolicy(str(item["name"]), policy_type))
        if policies and branches != "custom":
            raise ConfigError(
                f"branch_policies are given but deployment_branches is {branches!r}",
                "set deployment_branches: custom (or drop branch_policies)",
                field=f"{where}.branch_policies",
            )
        if branches == "custom" and not policies:
            raise ConfigError(
                "deployment_branches is custom but no branch_policies are listed (nothing could deploy)",
                "list branch or tag patterns, e.g. branch_policies: [main, {name: 'v*', type: tag}]",
                field=f"{where}.branch_policies",
            )
        out.append(
            DesiredEnvironment(
                name=str(name),
                reviewers=tuple(reviewers),
                wait_timer=int(raw.get("wait_timer", 0)),
                prevent_self_review=bool(raw.get("prevent_self_review", False)),
                can_admins_bypass=bool(raw.get("can_admins_bypass", True)),
                deployment_branches=branches,
                branch_policies=tuple(sorted(set(policies), key=lambda p: (p.type, p.name))),
            )
        )
    return tuple(out)


def load_file(path: Path, *, owner: str | None = None) -> tuple[DesiredEnvironment, ...]:
    from devops_agent.core.config import read_yaml

    if not path.is_file():
        raise ConfigError(
            f"environments file {path} does not exist",
            "pass the YAML file to apply, e.g. `devops-agent environments apply .github/environments.yml`",
            field="FILE",
        )
    return parse_document(read_yaml(path), source=str(path), owner=owner)


def resolve(
    desired: Sequence[DesiredEnvironment], lookup: Callable[[ReviewerType, str], Reviewer]
) -> dict[str, EnvironmentSpec]:
    """Reviewer names → ids (one lookup per distinct name) → complete specs."""
    cache: dict[tuple[str, str], Reviewer] = {}
    out: dict[str, EnvironmentSpec] = {}
    for env in desired:
        reviewers = []
        for r in env.reviewers:
            key = (r.type, r.name.lower())
            if key not in cache:
                cache[key] = lookup(r.type, r.name)
            reviewers.append(cache[key])
        out[env.name] = env.spec(reviewers)
    return out


# -- diff --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str
    after: str


@dataclass(frozen=True)
class EnvironmentDiff:
    name: str
    action: str  # create | update | unchanged
    changes: tuple[FieldChange, ...] = ()

    @property
    def changed(self) -> bool:
        return self.action != "unchanged"

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.name,
            "action": self.action,
            "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in self.changes],
        }


def _branches(spec: EnvironmentSpec) -> str:
    p = spec.deployment_branch_policy
    if p is None:
        return "all"
    return "protected" if p.protected_branches else "custom"


def _values(spec: EnvironmentSpec) -> dict[str, str]:
    reviewers = sorted(f"{r.type.lower()}:{r.login or r.id}" for r in spec.reviewers)
    policies = (
        sorted(f"{p.type}:{p.name}" for p in spec.branch_policies) if _branches(spec) == "custom" else []
    )
    return {
        "reviewers": ", ".join(reviewers) or "(none)",
        "wait_timer": f"{spec.wait_timer} min",
        "prevent_self_review": str(spec.prevent_self_review).lower(),
        "can_admins_bypass": str(spec.can_admins_bypass).lower(),
        "deployment_branches": _branches(spec),
        "branch_policies": ", ".join(policies) or "(none)",
    }


def _same(current: EnvironmentSpec, desired: EnvironmentSpec, name: str) -> bool:
    if name == "reviewers":
        return {(r.type, r.id) for r in current.reviewers} == {(r.type, r.id) for r in desired.reviewers}
    if name == "branch_policies":
        if _branches(desired) != "custom":
            return True  # not applicable: GitHub drops policies when custom is off
        return {(p.type, p.name) for p in current.branch_policies} == {
            (p.type, p.name) for p in desired.branch_policies
        }
    return _values(current)[name] == _values(desired)[name]


def diff_environment(current: EnvironmentSpec | None, desired: EnvironmentSpec) -> EnvironmentDiff:
    """Field-by-field differences (pure). ``current`` None: the environment will be created."""
    after = _values(desired)
    if current is None:
        return EnvironmentDiff(
            desired.name, "create", tuple(FieldChange(f, "(absent)", after[f]) for f in FIELDS)
        )
    before = _values(current)
    changes = tuple(FieldChange(f, before[f], after[f]) for f in FIELDS if not _same(current, desired, f))
    return EnvironmentDiff(desired.name, "update" if changes else "unchanged", changes)


def render_diff(diffs: Sequence[EnvironmentDiff], unmanaged: Sequence[str] = ()) -> str:
    """A unified-diff-like text for the terminal (``--dry-run``)."""
    lines = []
    for d in diffs:
        if not d.changed:
            lines.append(f"  {d.name}: unchanged")
            continue
        lines.append(f"{'+' if d.action == 'create' else '~'} {d.name} ({d.action})")
        for c in d.changes:
            if d.action == "create":
                lines.append(f"    + {c.field}: {c.after}")
            else:
                lines.append(f"    - {c.field}: {c.before}")
                lines.append(f"    + {c.field}: {c.after}")
    for name in unmanaged:
        lines.append(f"  {name}: not in the file (left as it is)")
    return "\n".join(lines) + "\n"


def mapping_of(specs: Mapping[str, EnvironmentSpec]) -> dict[str, dict[str, str]]:
    return {name: _values(spec) for name, spec in specs.items()}
