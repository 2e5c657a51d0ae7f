"""Frozen inputs of the incident planner and the hidden markers kept in issue bodies."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from devops_agent.core.config import Config
from devops_agent.core.errors import ConfigError
from devops_agent.core.platform import Label

DEFAULT_LABELS: tuple[str, ...] = ("deployment-failure", "cicd-incident")
DEFAULT_ESCALATION_LABEL = "escalated"
DEFAULT_CONTEXT_DIR = "docs/operations/failed_deployments"
URGENT_PREFIX = "[URGENT] "

#: Colours and descriptions of the labels we create when they are missing.
KNOWN_LABELS: Mapping[str, Label] = {
    "deployment-failure": Label(
        "deployment-failure", "d73a4a", "A devops-agent pipeline stage failed on this branch"
    ),
    "cicd-incident": Label("cicd-incident", "b60205", "Open CI/CD incident tracked by devops-agent"),
    "escalated": Label("escalated", "e11d21", "Repeated pipeline failures: owners were paged"),
}
FALLBACK_COLOR = "fbca04"

#: Conclusions of a workflow run that count as a failure; success ends a failure streak; every
#: other conclusion (cancelled, skipped, neutral, stale, action_required) is ignored.
FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "startup_failure"})
#: ``needs.<job>.result`` values (GitHub: success, failure, cancelled, skipped).
NEED_RESULTS = frozenset({"success", "failure", "cancelled", "skipped"})

INCIDENT_MARKER_PREFIX = "<!-- devops-agent:incident "
INCIDENT_MARKER_SUFFIX = " -->"
_MARKER_RE = re.compile(re.escape(INCIDENT_MARKER_PREFIX) + r"(\{.*?\})" + re.escape(INCIDENT_MARKER_SUFFIX))


def label_for(name: str) -> Label:
    """The label to create for ``name``: ours with colour and description, others in yellow."""
    return KNOWN_LABELS.get(name) or Label(name, FALLBACK_COLOR, "Managed by devops-agent incidents")


def _safe(value: str) -> str:
    """A key part without newlines or ``--`` (which would end an HTML comment)."""
    value = value.replace("\n", " ").replace("\r", " ").strip()
    return re.sub(r"-{2,}", lambda m: "-" + "%2D" * (len(m.group()) - 1), value)


def incident_key(pipeline: str, branch: str, stage: str) -> str:
    """The identity of an incident: one open issue per pipeline + branch + failing stage."""
    return f"incident:{_safe(pipeline)}:{_safe(branch)}:{_safe(stage)}"


@dataclass(frozen=True)
class IncidentSettings:
    """The ``incidents`` section of the pipeline config (schemas/devops-agent.schema.json)."""

    enabled: bool = True
    labels: tuple[str, ...] = DEFAULT_LABELS
    escalate_after: int = 3
    owners: tuple[str, ...] = ()
    escalation_label: str = DEFAULT_ESCALATION_LABEL
    assignees: tuple[str, ...] = ()
    context_dir: str = DEFAULT_CONTEXT_DIR
    log_lines: int = 40

    def __post_init__(self) -> None:
        if any("," in label for label in (*self.labels, self.escalation_label)):
            raise ConfigError(
                "a label contains a comma (labels are listed comma-separated by the issues API)",
                "rename the label without commas",
                field="incidents.labels",
            )
        if not self.labels:
            raise ConfigError(
                "needs at least one label (incidents are found by label)",
                "remove incidents.labels to use the defaults deployment-failure, cicd-incident",
                field="incidents.labels",
            )
        if self.escalate_after < 1:
            raise ConfigError(
                f"{self.escalate_after} is below 1",
                "use 1 or more (default 3)",
                field="incidents.escalate_after",
            )
        parts = self.context_dir.replace("\\", "/").split("/")
        if self.context_dir.startswith("/") or ".." in parts:
            raise ConfigError(
                f"{self.context_dir!r} leaves the app directory",
                "use a relative path such as docs/operations/failed_deployments",
                field="incidents.context_dir",
            )
        if self.escalation_label in self.labels:
            raise ConfigError(
                f"{self.escalation_label!r} is also an incident label",
                "use a distinct escalation label (default: escalated)",
                field="incidents.escalation_label",
            )

    @classmethod
    def from_config(cls, config: Config | None) -> IncidentSettings:
        section: Mapping[str, Any] = config.section("incidents") if config else {}
        return cls(
            enabled=bool(section.get("enabled", True)),
            labels=tuple(section.get("labels") or DEFAULT_LABELS),
            escalate_after=int(section.get("escalate_after", 3)),
            owners=tuple(section.get("owners") or ()),
            escalation_label=str(section.get("escalation_label") or DEFAULT_ESCALATION_LABEL),
            assignees=tuple(section.get("assignees") or ()),
            context_dir=str(section.get("context_dir") or DEFAULT_CONTEXT_DIR),
            log_lines=int(section.get("log_lines", 40)),
        )

    @property
    def mentions(self) -> tuple[str, ...]:
        """Owners as @-mentions (``alice`` → ``@alice``, ``@org/team`` unchanged)."""
        return tuple(o if o.startswith("@") else f"@{o}" for o in self.owners)


@dataclass(frozen=True)
class RunInfo:
    """The pipeline run being reported (GitHub Actions run, or a local `devops-agent run`)."""

    pipeline: str  # "<app>" or "<app>/<workflow file>": part of the incident identity
    workflow: str  # the caller's workflow file (e.g. ci.yml) for the runs API; "local" locally
    run_id: str
    branch: str
    sha: str
    run_attempt: int = 1
    run_number: int = 0
    run_url: str = ""
    repository: str = ""
    event: str = ""
    actor: str = ""
    workflow_name: str = ""

    @property
    def short_sha(self) -> str:
        return self.sha[:12] if self.sha else "unknown"

    @property
    def label(self) -> str:
        """``run 123 (attempt 2)`` — for humans."""
        number = f"#{self.run_number}" if self.run_number else self.run_id
        attempt = f" (attempt {self.run_attempt})" if self.run_attempt > 1 else ""
        return f"run {number}{attempt}"

    def link(self) -> str:
        return f"[{self.label}]({self.run_url})" if self.run_url else self.label


@dataclass(frozen=True)
class StageResult:
    """One job of the pipeline as the final job sees it (``needs.<id>.result`` + outputs)."""

    name: str
    result: str  # success | failure | cancelled | skipped
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobView:
    """A job of the run from the jobs API (failed ones carry the log excerpt)."""

    name: str
    conclusion: str | None
    url: str = ""
    log_excerpt: str = ""
    log_note: str = ""  # why there is no excerpt


@dataclass(frozen=True)
class Finding:
    rule: str
    level: str
    message: str
    location: str = ""


@dataclass(frozen=True)
class FailureContext:
    """Everything known about a failed run; rendered into the context file and the issue."""

    run: RunInfo
    stages: tuple[StageResult, ...]
    reported_at: datetime
    jobs: tuple[JobView, ...] = ()
    findings: tuple[Finding, ...] = ()
    findings_total: int = 0
    deployment: tuple[tuple[str, str], ...] = ()  # (field, value) rows: deploy/validate/rollback
    error: str = ""  # a message given by the caller (e.g. the failed command's error)
    notes: tuple[str, ...] = ()

    @property
    def failed_stages(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages if s.result == "failure")

    @property
    def failed_jobs(self) -> tuple[JobView, ...]:
        return tuple(j for j in self.jobs if j.conclusion in FAILED_CONCLUSIONS)


@dataclass(frozen=True)
class RunView:
    """A past run of the workflow on the branch (for the consecutive-failure count)."""

    id: str
    status: str
    conclusion: str | None
    url: str = ""


@dataclass(frozen=True)
class IncidentMarker:
    """What an incident issue remembers about itself, hidden in its body."""

    key: str
    pipeline: str
    branch: str
    stage: str
    first_failure_at: datetime
    first_run_id: str
    first_run_attempt: int = 1
    first_run_url: str = ""
    #: True when the issue was opened already escalated (owners mentioned in its body)
    escalated: bool = False

    def render(self) -> str:
        data = {
            "key": self.key,
            "pipeline": self.pipeline,
            "branch": self.branch,
            "stage": self.stage,
            "first_failure_at": self.first_failure_at.astimezone(timezone.utc).isoformat(),
            "first_run_id": self.first_run_id,
            "first_run_attempt": self.first_run_attempt,
            "first_run_url": self.first_run_url,
            "escalated": self.escalated,
        }
        text = json.dumps(data, sort_keys=True, ensure_ascii=True)
        # an HTML comment ends at "-->" and must not contain "--": escape dashes (valid JSON)
        text = text.replace("--", "-\\u002d").replace(">", "\\u003e")
        return f"{INCIDENT_MARKER_PREFIX}{text}{INCIDENT_MARKER_SUFFIX}"

    @classmethod
    def parse(cls, body: str | None) -> IncidentMarker | None:
        """The marker in an issue body, or None (not ours, or damaged)."""
        match = _MARKER_RE.search(body or "")
        if match is None:
            return None
        try:
            data = json.loads(match.group(1))
            first = datetime.fromisoformat(str(data["first_failure_at"]))
            if first.tzinfo is None:
                first = first.replace(tzinfo=timezone.utc)
            return cls(
                key=str(data["key"]),
                pipeline=str(data["pipeline"]),
                branch=str(data["branch"]),
                stage=str(data["stage"]),
                first_failure_at=first,
                first_run_id=str(data["first_run_id"]),
                first_run_attempt=int(data.get("first_run_attempt", 1)),
                first_run_url=str(data.get("first_run_url", "")),
                escalated=data.get("escalated") is True,
            )
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class OpenIncident:
    """An open issue carrying our labels and an incident marker."""

    number: int
    title: str
    labels: tuple[str, ...]
    marker: IncidentMarker
    url: str = ""
    comment_keys: frozenset[str] = frozenset()
