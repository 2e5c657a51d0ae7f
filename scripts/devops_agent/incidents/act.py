"""Carry an :class:`~devops_agent.incidents.plan.IncidentPlan` out on a Platform.

Every write is idempotent: issues are created with a platform key (incident + run, so a retried
POST or a re-run job finds the issue again), comments carry keys (per run attempt, escalation,
resolution), labels are added (never replaced), titles are set to absolute values. Two runs that
raced and both opened an issue converge: the newer issue is closed as a duplicate of the older.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from devops_agent.core.errors import PlatformError
from devops_agent.core.gha import Actions
from devops_agent.core.platform import Issue, Platform
from devops_agent.incidents import render
from devops_agent.incidents.model import IncidentSettings, OpenIncident
from devops_agent.incidents.plan import CommentSpec, IncidentPlan, StageAction, select_open_incidents
from devops_agent.incidents.redact import redact


@dataclass(frozen=True)
class Outcome:
    """What was done for one stage."""

    stage: str
    action: str  # created | commented | unchanged | resolved
    number: int
    url: str = ""
    title: str = ""
    escalated: bool = False
    closed: bool = False
    mttr: timedelta | None = None
    duplicates_closed: tuple[int, ...] = ()


def load_open_incidents(
    platform: Platform, settings: IncidentSettings, pipeline: str, branch: str
) -> list[OpenIncident]:
    """Open incidents of pipeline + branch: listed by label (never the search API), recognised by
    the hidden marker, with the keys of their comments (to decide repeat/escalation once)."""
    issues = platform.list_issues(labels=settings.labels, state="open")
    found = []
    for issue, marker in select_open_incidents(issues, pipeline, branch):
        keys = frozenset(k for k in (c.key for c in platform.list_comments(issue.number)) if k)
        found.append(OpenIncident(issue.number, issue.title, issue.labels, marker, issue.html_url, keys))
    return found


def ensure_labels(platform: Platform, plan: IncidentPlan) -> tuple[str, ...]:
    """Create the plan's labels that are missing, with colour and description."""
    if not plan.labels:
        return ()
    existing = {label.name.lower() for label in platform.list_labels()}
    created = []
    for label in plan.labels:
        if label.name.lower() not in existing:
            platform.create_label(label.name, color=label.color, description=label.description)
            created.append(label.name)
    return tuple(created)


def _comment(platform: Platform, number: int, spec: CommentSpec | None, actions: Actions) -> None:
    if spec is not None:
        platform.add_comment(number, redact(spec.body, actions), key=spec.key)


def apply_plan(
    platform: Platform, plan: IncidentPlan, settings: IncidentSettings, actions: Actions
) -> list[Outcome]:
    ensure_labels(platform, plan)
    return [_apply(platform, action, settings, actions) for action in plan.actions]


def _apply(platform: Platform, action: StageAction, settings: IncidentSettings, actions: Actions) -> Outcome:
    if action.kind == "create":
        return _create(platform, action, settings, actions)
    assert action.number is not None
    number = action.number
    closed_dups = []
    for dup in action.duplicates:
        _close_duplicate(platform, dup, number, action.key, actions)
        closed_dups.append(dup)
    _comment(platform, number, action.comment, actions)
    escalated = False
    if action.escalation is not None:
        esc = action.escalation
        _comment(platform, number, esc.comment, actions)
        if esc.add_label:
            platform.add_labels(number, [esc.add_label])
        if esc.title:
            platform.update_issue(number, title=esc.title)
        escalated = True
    issue: Issue | None = None
    if action.close:
        issue = platform.close_issue(number, reason="completed")
    verb = {"comment": "commented", "resolve": "resolved"}.get(action.kind, "unchanged")
    return Outcome(
        action.stage,
        verb,
        number,
        url=issue.html_url if issue else "",
        title=issue.title if issue else "",
        escalated=escalated,
        closed=action.close,
        mttr=action.mttr,
        duplicates_closed=tuple(closed_dups),
    )


def _create(platform: Platform, action: StageAction, settings: IncidentSettings, actions: Actions) -> Outcome:
    spec = action.create
    assert spec is not None
    body = redact(spec.body, actions)
    try:
        issue = platform.create_issue(
            spec.title, body, labels=spec.labels, assignees=spec.assignees, key=spec.key
        )
    except PlatformError as exc:
        if not spec.assignees:
            raise
        # an assignee who cannot be assigned (422) must not lose the incident
        actions.warning(
            f"could not assign {', '.join(spec.assignees)}: {exc.cause.splitlines()[0]}; "
            "creating the incident without assignees",
            title="incidents.assignees",
        )
        issue = platform.create_issue(spec.title, body, labels=spec.labels, key=spec.key)
    # Two runs failing at once may both have created an issue: keep the oldest, close ours.
    twins = [
        i
        for i, marker in select_open_incidents(
            platform.list_issues(labels=settings.labels, state="open"), *_pipeline_branch(action, issue)
        )
        if marker.key == action.key and i.number < issue.number
    ]
    if twins:
        canonical = twins[0].number
        _close_duplicate(platform, issue.number, canonical, action.key, actions)
        return Outcome(action.stage, "commented", canonical, twins[0].html_url, twins[0].title)
    return Outcome(
        action.stage,
        "created",
        issue.number,
        url=issue.html_url,
        title=issue.title,
        escalated=action.escalates,
    )


def _pipeline_branch(action: StageAction, issue: Issue) -> tuple[str, str]:
    from devops_agent.incidents.model import IncidentMarker

    marker = IncidentMarker.parse(issue.body)
    if marker is None:  # the body came back without our marker: compare by key only
        return ("", "")
    return (marker.pipeline, marker.branch)


def _close_duplicate(platform: Platform, dup: int, canonical: int, key: str, actions: Actions) -> None:
    _comment(
        platform,
        dup,
        CommentSpec(render.render_duplicate(canonical), f"{key}:duplicate-of:{canonical}"),
        actions,
    )
    platform.close_issue(dup, reason="not_planned")


def open_incident_rows(platform: Platform, settings: IncidentSettings) -> list[list[str]]:
    """A table of every open incident of the repository (for `--list` and local mode)."""
    from devops_agent.incidents.model import IncidentMarker

    rows = []
    for issue in platform.list_issues(labels=settings.labels, state="open"):
        marker = IncidentMarker.parse(issue.body)
        if marker is None:
            continue
        rows.append(
            [
                f"#{issue.number}",
                marker.pipeline,
                marker.branch,
                marker.stage,
                render.utc(marker.first_failure_at),
                "yes" if settings.escalation_label in issue.labels else "no",
                issue.title,
            ]
        )
    return rows


OPEN_HEADERS: Sequence[str] = ("Issue", "Pipeline", "Branch", "Stage", "First failure", "Escalated", "Title")
