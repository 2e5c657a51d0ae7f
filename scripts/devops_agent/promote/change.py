"""The change record of a production promotion (P-ITIL-CHANGE).

What changed (digest, version, the commits since the last production release), why (the commit
subjects), the risk (a small explicit scoring, :func:`assess_risk`), the rollback plan, who
approved, and links. Built purely from values (:func:`build_change_record`); rendered to
markdown for the job summary and to JSON for the deployment history.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

RiskLevel = Literal["low", "medium", "high"]
MAX_COMMITS_SHOWN = 50


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str = ""


@dataclass(frozen=True)
class ReleaseRef:
    """One release: what identifies it in the record."""

    digest: str  # sha256:<hex>
    version: str
    commit: str | None = None
    at: str | None = None  # ISO time it went live (previous release only)


@dataclass(frozen=True)
class Risk:
    level: RiskLevel
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ChangeRecord:
    app: str
    environment: str
    release: ReleaseRef
    previous: ReleaseRef | None
    commits: tuple[Commit, ...] | None  # None: unknown (no git, or no commits to compare)
    commits_note: str
    risk: Risk
    rollback_plan: tuple[str, ...]
    approver: str
    approval_comment: str = ""
    links: tuple[tuple[str, str], ...] = ()
    freeze: Mapping[str, Any] = field(default_factory=dict)
    staging: Mapping[str, Any] = field(default_factory=dict)
    verification: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "environment": self.environment,
            "release": self.release.__dict__,
            "previous": self.previous.__dict__ if self.previous else None,
            "commits": [c.__dict__ for c in self.commits] if self.commits is not None else None,
            "commits_note": self.commits_note,
            "risk": {"level": self.risk.level, "reasons": list(self.risk.reasons)},
            "rollback_plan": list(self.rollback_plan),
            "approver": self.approver,
            "approval_comment": self.approval_comment,
            "links": [{"label": label, "url": url} for label, url in self.links],
            "freeze": dict(self.freeze),
            "staging": dict(self.staging),
            "verification": self.verification,
        }


def commits_between(
    repo_dir: Path, old: str | None, new: str | None
) -> tuple[tuple[Commit, ...] | None, str]:
    """Commits in ``old..new`` (newest first) with git, or (None, why not)."""
    if not new:
        return None, "the commit of this release is unknown"
    if not old:
        return None, "first production release: no earlier release to compare with"
    if old == new:
        return (), "same commit as the previous production release (a re-deploy)"
    try:
        proc = subprocess.run(
            [
                "git",
                "-C",
                str(repo_dir),
                "log",
                "--no-merges",
                "--format=%H%x1f%s%x1f%an%x1e",
                f"{old}..{new}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"git is not available ({type(exc).__name__})"
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["unknown error"])[0]
        return (
            None,
            f"git could not compare {old[:12]}..{new[:12]} ({first}); fetch full history (fetch-depth: 0)",
        )
    commits = []
    for record in proc.stdout.split("\x1e"):
        parts = record.strip("\n").split("\x1f")
        if len(parts) == 3 and parts[0]:
            commits.append(Commit(parts[0].strip(), parts[1], parts[2]))
    return tuple(commits), f"{len(commits)} commit(s) since {old[:12]}"


def assess_risk(
    *,
    previous: ReleaseRef | None,
    commits: Sequence[Commit] | None,
    freeze_overridden: bool,
) -> Risk:
    """An explicit, documented scoring: each factor adds points; 0-1 low, 2-3 medium, 4+ high."""
    points = 0
    reasons: list[str] = []
    if freeze_overridden:
        points += 4
        reasons.append("promoted during a freeze window (override)")
    if previous is None:
        points += 2
        reasons.append("first production release: no earlier validated release to roll back to")
    if commits is None:
        points += 1
        reasons.append("the change set is unknown")
    elif len(commits) > 50:
        points += 3
        reasons.append(f"large change set ({len(commits)} commits)")
    elif len(commits) > 10:
        points += 1
        reasons.append(f"medium change set ({len(commits)} commits)")
    else:
        reasons.append(f"small change set ({len(commits)} commits)")
    level: RiskLevel = "low" if points <= 1 else "medium" if points <= 3 else "high"
    return Risk(level, tuple(reasons))


def rollback_plan(
    driver: str, environment: str, previous: ReleaseRef | None, auto_rollback: bool
) -> tuple[str, ...]:
    steps = []
    if previous is not None:
        if auto_rollback:
            steps.append(
                f"automatic: a failed validation of {environment} rolls back to {previous.version} "
                f"({previous.digest[:19]}…) with the {driver} driver, then re-validates"
            )
        steps.append(
            f"manual: `devops-agent rollback --environment {environment} --yes` "
            f"(restores {previous.version}), or promote {previous.digest} again"
        )
    else:
        steps.append(f"no earlier production release: stop or fix forward (driver {driver})")
    return tuple(steps)


def build_change_record(
    *,
    app: str,
    environment: str,
    release: ReleaseRef,
    previous: ReleaseRef | None,
    commits: tuple[Commit, ...] | None,
    commits_note: str,
    approver: str,
    approval_comment: str,
    driver: str,
    auto_rollback: bool,
    freeze: Mapping[str, Any],
    staging: Mapping[str, Any],
    verification: str,
    links: Sequence[tuple[str, str]] = (),
) -> ChangeRecord:
    overridden = freeze.get("status") == "overridden"
    return ChangeRecord(
        app=app,
        environment=environment,
        release=release,
        previous=previous,
        commits=commits,
        commits_note=commits_note,
        risk=assess_risk(
            previous=previous,
            commits=commits,
            freeze_overridden=overridden,
        ),
        rollback_plan=rollback_plan(driver, environment, previous, auto_rollback),
        approver=approver,
        approval_comment=approval_comment,
        links=tuple(links),
        freeze=dict(freeze),
        staging=dict(staging),
        verification=verification,
    )


def render_markdown(record: ChangeRecord) -> str:
    from devops_agent.core.gha import md_table

    r = record
    prev = f"{r.previous.version} `{r.previous.digest[:19]}…`" if r.previous else "(none)"
    rows = [
        ["Release", f"{r.release.version} `{r.release.digest}`"],
        ["Commit", f"`{r.release.commit[:12]}`" if r.release.commit else "unknown"],
        ["Previous production release", prev],
        ["Risk", f"**{r.risk.level}** — " + "; ".join(r.risk.reasons)],
        ["Approver", r.approver + (f" — “{r.approval_comment}”" if r.approval_comment else "")],
        ["Staging validation", str(r.staging.get("reason", ""))],
        ["Verification", r.verification],
        ["Freeze", str(r.freeze.get("status", "clear"))],
    ]
    override = r.freeze.get("override")
    if isinstance(override, Mapping):
        rows.append(["Freeze override", f"by {override.get('by')}: {override.get('reason')}"])
    text = f"### 📝 Change record — {r.app} → {r.environment}\n\n" + md_table(["", ""], rows) + "\n"
    text += f"**What changed:** {r.commits_note}\n\n"
    if r.commits:
        for c in r.commits[:MAX_COMMITS_SHOWN]:
            text += f"- `{c.sha[:10]}` {c.subject}" + (f" ({c.author})" if c.author else "") + "\n"
        if len(r.commits) > MAX_COMMITS_SHOWN:
            text += f"- … and {len(r.commits) - MAX_COMMITS_SHOWN} more\n"
        text += "\n"
    text += "**Rollback plan:**\n\n" + "".join(f"- {step}\n" for step in r.rollback_plan)
    if r.links:
        text += "\n**Links:** " + " · ".join(f"[{label}]({url})" for label, url in r.links) + "\n"
    return text
