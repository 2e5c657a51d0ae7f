"""Pure decisions of the incident lifecycle.

Given what happened in this run (the failure context), the open incidents of the pipeline and
branch (found by label + hidden marker) and the run history of the workflow, decide:

- which stages failed → open an incident, or comment on the open one (once per run attempt);
- whether the branch has failed ``escalate_after`` runs in a row → escalate (label, owners
  mentioned, urgent title) exactly once;
- which stages passed → close their open incident with the MTTR;
- or that the run is to be ignored (cancelled, skipped, incidents disabled).

Nothing here performs I/O; :mod:`devops_agent.incidents.act` carries a plan out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from devops_agent.core.errors import ConfigError
from devops_agent.core.platform import Issue, Label
from devops_agent.incidents import render
from devops_agent.incidents.model import (
    FAILED_CONCLUSIONS,
    NEED_RESULTS,
    URGENT_PREFIX,
    FailureContext,
    IncidentMarker,
    IncidentSettings,
    OpenIncident,
    RunView,
    StageResult,
    incident_key,
    label_for,
)

Outcome = Literal["failure", "success", "cancelled", "skipped"]
ActionKind = Literal["create", "comment", "unchanged", "resolve"]


# -- the run ------------------------------------------------------------------------------------


def parse_needs(text: str) -> tuple[StageResult, ...]:
    """``${{ toJSON(needs) }}`` → stage results, in the order the workflow lists them."""
    if not text.strip():
        return ()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            "pass `needs: ${{ toJSON(needs) }}` to the report-failure action",
            field="needs",
        ) from None
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"must be a JSON object of jobs, got {type(data).__name__}",
            "pass `needs: ${{ toJSON(needs) }}` to the report-failure action",
            field="needs",
        )
    stages = []
    for name, job in data.items():
        result = job.get("result") if isinstance(job, Mapping) else None
        if result not in NEED_RESULTS:
            raise ConfigError(
                f"job {name!r} has result {result!r}",
                f"each job needs a result among {', '.join(sorted(NEED_RESULTS))} "
                "(pass `${{ toJSON(needs) }}` unchanged)",
                field="needs",
            )
        outputs = job.get("outputs") or {}
        if not isinstance(outputs, Mapping):
            raise ConfigError(
                f"outputs of job {name!r} are not an object", "pass toJSON(needs)", field="needs"
            )
        stages.append(StageResult(str(name), str(result), {str(k): str(v) for k, v in outputs.items()}))
    return tuple(stages)


def classify(stages: Sequence[StageResult]) -> Outcome:
    """The outcome of the run from its jobs' results.

    Any failure → failure. Otherwise any cancelled job → cancelled (ignored: a cancelled run
    proves nothing). All skipped (or no job) → skipped (ignored). Otherwise → success.
    """
    results = {s.result for s in stages}
    if "failure" in results:
        return "failure"
    if "cancelled" in results:
        return "cancelled"
    if not results or results == {"skipped"}:
        return "skipped"
    return "success"


def count_consecutive_failures(runs: Sequence[RunView], current_run_id: str) -> int:
    """Failed runs in a row on the branch, this (failing) run included.

    ``runs`` are the workflow's runs on the branch, newest first. Runs newer than the current one
    (when it is a re-run of an older run) and unfinished runs are skipped; cancelled, skipped and
    other neutral conclusions neither count nor break the streak; the first success ends it.
    """
    count = 1  # the current run, which is failing (it is still in progress while we report)
    seen_current = not any(r.id == current_run_id for r in runs)
    for run in runs:
        if run.id == current_run_id:
            seen_current = True
            continue
        if not seen_current or run.status != "completed":
            continue
        if run.conclusion == "success":
            break
        if run.conclusion in FAILED_CONCLUSIONS:
            count += 1
    return count


def select_open_incidents(
    issues: Iterable[Issue], pipeline: str, branch: str
) -> list[tuple[Issue, IncidentMarker]]:
    """Open issues of this pipeline and branch that carry an incident marker (oldest first)."""
    found = []
    for issue in issues:
        if issue.state != "open":
            continue
        marker = IncidentMarker.parse(issue.body)
        if marker is not None and marker.pipeline == pipeline and marker.branch == branch:
            found.append((issue, marker))
    return sorted(found, key=lambda pair: pair[0].number)


# -- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssueSpec:
    title: str
    body: str
    labels: tuple[str, ...]
    assignees: tuple[str, ...]
    key: str  # platform idempotency key: incident key + run id


@dataclass(frozen=True)
class CommentSpec:
    body: str
    key: str


@dataclass(frozen=True)
class Escalation:
    comment: CommentSpec | None  # None when the escalation comment exists already
    add_label: str | None  # None when the issue has it already
    title: str | None  # the urgent title, None when the title is urgent already


@dataclass(frozen=True)
class StageAction:
    stage: str
    key: str
    kind: ActionKind
    number: int | None = None  # the existing incident
    create: IssueSpec | None = None
    comment: CommentSpec | None = None
    escalation: Escalation | None = None
    close: bool = False
    duplicates: tuple[int, ...] = ()
    mttr: timedelta | None = None
    first_failure_at: datetime | None = None
    reason: str = ""

    @property
    def escalates(self) -> bool:
        return self.escalation is not None or (
            self.create is not None and self.create.title.startswith(URGENT_PREFIX)
        )


@dataclass(frozen=True)
class IncidentPlan:
    outcome: Outcome
    consecutive_failures: int
    actions: tuple[StageAction, ...] = ()
    labels: tuple[Label, ...] = ()  # labels to create when missing
    ignored: str = ""  # why nothing is done
    context_path: str = ""

    @property
    def writes(self) -> bool:
        return any(a.kind != "unchanged" or a.escalation or a.duplicates for a in self.actions)


def comment_key(key: str, run_id: str, attempt: int) -> str:
    return f"{key}:run:{run_id}:attempt:{attempt}"


def plan_incidents(
    ctx: FailureContext,
    settings: IncidentSettings,
    incidents: Sequence[OpenIncident],
    *,
    consecutive: int,
    now: datetime,
    app: str,
    context_path: str,
    resolve_all: bool = False,
) -> IncidentPlan:
    """Decide every write of this run. ``incidents`` are the open ones of pipeline + branch.

    ``resolve_all`` (the `resolve` command without job results) closes every open incident of the
    pipeline and branch; otherwise only those whose stage succeeded in this run are closed.
    """
    outcome = "success" if resolve_all and not ctx.stages else classify(ctx.stages)
    if not settings.enabled:
        return IncidentPlan(outcome, consecutive, ignored="incidents.enabled is false")
    if outcome in ("cancelled", "skipped"):
        return IncidentPlan(outcome, 0, ignored=f"the run was {outcome}: it neither fails nor resolves")
    run = ctx.run
    actions: list[StageAction] = []
    urgent = outcome == "failure" and consecutive >= settings.escalate_after
    for stage in ctx.failed_stages:
        key = incident_key(run.pipeline, run.branch, stage)
        mine = sorted((i for i in incidents if i.marker.key == key), key=lambda i: i.number)
        if not mine:
            actions.append(_open(ctx, settings, stage, key, consecutive, urgent, now, app, context_path))
        else:
            actions.append(_repeat(ctx, settings, stage, key, consecutive, urgent, mine, context_path))
    succeeded = {s.name for s in ctx.stages if s.result == "success"}
    failed = set(ctx.failed_stages)
    for incident in sorted(incidents, key=lambda i: i.number):
        stage = incident.marker.stage
        if stage in failed or not (resolve_all or stage in succeeded):
            continue
        if any(a.number == incident.number or incident.number in a.duplicates for a in actions):
            continue
        actions.append(_resolve(ctx, incident, now))
    labels: tuple[Label, ...] = ()
    if any(a.create or a.escalation for a in actions):
        names = [*settings.labels, settings.escalation_label]
        labels = tuple(label_for(n) for n in dict.fromkeys(names))
    return IncidentPlan(outcome, consecutive, tuple(actions), labels, context_path=context_path)


def _open(
    ctx: FailureContext,
    settings: IncidentSettings,
    stage: str,
    key: str,
    consecutive: int,
    urgent: bool,
    now: datetime,
    app: str,
    context_path: str,
) -> StageAction:
    run = ctx.run
    marker = IncidentMarker(
        key=key,
        pipeline=run.pipeline,
        branch=run.branch,
        stage=stage,
        first_failure_at=now,
        first_run_id=run.run_id,
        first_run_attempt=run.run_attempt,
        first_run_url=run.run_url,
        escalated=urgent,
    )
    escalation = render.render_escalation(settings, consecutive, run.branch) if urgent else ""
    body = render.render_issue_body(ctx, stage, consecutive, context_path, settings, escalation=escalation)
    labels = (*settings.labels, settings.escalation_label) if urgent else settings.labels
    spec = IssueSpec(
        title=render.incident_title(app, stage, run.branch, urgent=urgent),
        body=f"{body.rstrip()}\n\n{marker.render()}\n",
        labels=tuple(labels),
        assignees=settings.assignees,
        key=f"{key}:run:{run.run_id}",
    )
    return StageAction(stage, key, "create", create=spec, first_failure_at=now, reason="first failure")


def _repeat(
    ctx: FailureContext,
    settings: IncidentSettings,
    stage: str,
    key: str,
    consecutive: int,
    urgent: bool,
    mine: Sequence[OpenIncident],
    context_path: str,
) -> StageAction:
    run = ctx.run
    canonical, duplicates = mine[0], tuple(i.number for i in mine[1:])
    ckey = comment_key(key, run.run_id, run.run_attempt)
    opened_by_this_attempt = (
        canonical.marker.first_run_id == run.run_id and canonical.marker.first_run_attempt == run.run_attempt
    )
    comment: CommentSpec | None = None
    if opened_by_this_attempt:
        reason = "already reported by this run attempt (the incident was opened by it)"
    elif ckey in canonical.comment_keys:
        reason = "already reported by this run attempt"
    else:
        reason = f"repeat failure ({consecutive} in a row)"
        comment = CommentSpec(render.render_repeat_comment(ctx, stage, consecutive, context_path), ckey)
    escalation = None
    if urgent:
        ekey = f"{key}:escalated"
        has_label = settings.escalation_label in canonical.labels
        has_title = canonical.title.startswith(URGENT_PREFIX)
        # opened escalated: the owners were mentioned in the body, never mention them again
        has_comment = ekey in canonical.comment_keys or canonical.marker.escalated
        if not (has_label and has_title and has_comment):
            escalation = Escalation(
                comment=None
                if has_comment
                else CommentSpec(render.render_escalation(settings, consecutive, run.branch), ekey),
                add_label=None if has_label else settings.escalation_label,
                title=None if has_title else f"{URGENT_PREFIX}{canonical.title}"[: render.MAX_TITLE],
            )
    return StageAction(
        stage,
        key,
        "comment" if comment else "unchanged",
        number=canonical.number,
        comment=comment,
        escalation=escalation,
        duplicates=duplicates,
        first_failure_at=canonical.marker.first_failure_at,
        reason=reason,
    )


def _resolve(ctx: FailureContext, incident: OpenIncident, now: datetime) -> StageAction:
    marker = incident.marker
    mttr = now - marker.first_failure_at
    rkey = f"{marker.key}:resolved"
    comment = None
    if rkey not in incident.comment_keys:
        body = render.render_resolution(ctx.run, marker.stage, marker.first_failure_at, now, mttr)
        comment = CommentSpec(body, rkey)
    return StageAction(
        marker.stage,
        marker.key,
        "resolve",
        number=incident.number,
        comment=comment,
        close=True,
        mttr=mttr,
        first_failure_at=marker.first_failure_at,
        reason=f"recovered after {render.duration_text(mttr)}",
    )


def plan_to_json(plan: IncidentPlan) -> dict[str, Any]:
    """A JSON view of the plan (for --json and --dry-run)."""
    return {
        "outcome": plan.outcome,
        "consecutive_failures": plan.consecutive_failures,
        "ignored": plan.ignored or None,
        "context_file": plan.context_path or None,
        "actions": [
            {
                "stage": a.stage,
                "key": a.key,
                "action": a.kind,
                "issue": a.number,
                "title": a.create.title if a.create else None,
                "comment": bool(a.comment),
                "escalate": a.escalates,
                "close": a.close,
                "duplicates": list(a.duplicates),
                "mttr_seconds": int(a.mttr.total_seconds()) if a.mttr is not None else None,
                "reason": a.reason,
            }
            for a in plan.actions
        ],
    }
