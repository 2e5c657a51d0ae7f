"""Markdown of the incident lifecycle: context file, issue body, comments and job summary (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from devops_agent.core.gha import md_table
from devops_agent.incidents.model import FailureContext, IncidentSettings, RunInfo, StageResult

#: GitHub refuses issue/comment bodies above 65,536 characters.
MAX_BODY = 60_000
RESULT_ICONS = {"success": "✅", "failure": "❌", "cancelled": "🚫", "skipped": "⏭️"}
MANAGED_NOTE = (
    "_Managed by devops-agent: a repeated failure adds a comment here, {n} consecutive failed runs "
    "escalate it, and the next successful run closes it with the time to recovery._"
)


def context_file_name(run: RunInfo) -> str:
    """``.devops_cicd_cache_<sha>.md`` (the run id when the commit is unknown)."""
    return f".devops_cicd_cache_{run.sha or run.run_id}.md"


def artifact_name(run: RunInfo) -> str:
    """The name the workflow uploads the context file under (see docs/incidents.md)."""
    return f"devops-agent-failure-context-{run.run_id}-{run.run_attempt}"


def duration_text(delta: timedelta | float) -> str:
    """``3725`` → ``1h 02m 05s``; negative durations (clock skew) count as 0."""
    seconds = int(max(delta.total_seconds() if isinstance(delta, timedelta) else delta, 0))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


#: GitHub's limit on issue titles.
MAX_TITLE = 256


def incident_title(app: str, stage: str, branch: str, *, urgent: bool) -> str:
    title = f"Pipeline failure: {stage} failed on {branch} ({app})"
    title = f"[URGENT] {title}" if urgent else title
    return title if len(title) <= MAX_TITLE - 9 else title[: MAX_TITLE - 10] + "…"


def _fence(text: str) -> str:
    """A code fence longer than any backtick run inside ``text``."""
    longest = 0
    run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _code(text: str, lang: str = "text") -> str:
    fence = _fence(text)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}\n"


def _stages_mermaid(stages: Sequence[StageResult]) -> str:
    lines = ["```mermaid", "flowchart LR"]
    for i, stage in enumerate(stages):
        icon = RESULT_ICONS.get(stage.result, "❔")
        name = stage.name.replace('"', "'")
        lines.append(f'  s{i}["{icon} {name}"]:::{stage.result}')
        if i:
            lines.append(f"  s{i - 1} --> s{i}")
    lines += [
        "  classDef success fill:#d4f8d4,stroke:#2da44e",
        "  classDef failure fill:#ffd8d3,stroke:#cf222e",
        "  classDef cancelled fill:#eeeeee,stroke:#999999",
        "  classDef skipped fill:#eeeeee,stroke:#999999",
        "```",
    ]
    return "\n".join(lines) + "\n"


def facts_table(ctx: FailureContext, stage: str, consecutive: int, context_path: str) -> str:
    run = ctx.run
    rows = [
        ["Failure point", f"`{stage}`"],
        ["Pipeline", f"`{run.pipeline}`"],
        ["Branch", f"`{run.branch}`"],
        ["Commit", f"`{run.sha or 'unknown'}`"],
        ["Run", run.link()],
        ["Attempt", str(run.run_attempt)],
        ["Event", run.event or "—"],
        ["Consecutive failed runs", str(consecutive)],
        ["Reported", utc(ctx.reported_at)],
        ["Context file", f"`{context_path}`"],
    ]
    if run.actor:
        rows.insert(6, ["Triggered by", f"@{run.actor}"])
    return md_table(["Field", "Value"], rows)


def _jobs_section(ctx: FailureContext, *, details: bool) -> str:
    failed = ctx.failed_jobs
    if not failed:
        return ""
    text = "### Failed jobs\n\n"
    for job in failed:
        name = f"[{job.name}]({job.url})" if job.url else job.name
        text += f"- {name}: {job.conclusion}\n"
    for job in failed:
        if job.log_excerpt:
            body = _code(job.log_excerpt)
            if details:
                text += f"\n<details><summary>Log excerpt: {job.name}</summary>\n\n{body}\n</details>\n"
            else:
                text += f"\n#### Log excerpt: {job.name}\n\n{body}"
        elif job.log_note:
            text += f"\n_Log of {job.name}: {job.log_note}_\n"
    return text + "\n"


def _findings_section(ctx: FailureContext) -> str:
    if not ctx.findings:
        return ""
    shown = len(ctx.findings)
    head = f"### Gate findings ({shown} of {ctx.findings_total})\n\n"
    rows = [
        [f.level, f"`{f.rule}`", f.message, f"`{f.location}`" if f.location else ""] for f in ctx.findings
    ]
    return head + md_table(["Level", "Rule", "Message", "Location"], rows) + "\n"


def _deployment_section(ctx: FailureContext) -> str:
    if not ctx.deployment:
        return ""
    return (
        "### Deployment and rollback\n\n"
        + md_table(["Field", "Value"], [list(r) for r in ctx.deployment])
        + "\n"
    )


def _clip(text: str) -> str:
    if len(text) <= MAX_BODY:
        return text
    return text[: MAX_BODY - 80].rstrip() + "\n\n_… truncated; the full context is in the context file._\n"


def render_context_file(ctx: FailureContext, stage: str, consecutive: int, context_path: str) -> str:
    """The preserved failure context (``.devops_cicd_cache_<sha>.md``)."""
    run = ctx.run
    text = f"# Failure context: {stage} failed — {run.pipeline} @ {run.branch}\n\n"
    text += (
        f"Deployment failed for commit `{run.sha or 'unknown'}`. Pipeline logs: "
        f"{run.run_url or run.label}. Failure point: {stage}.\n\n"
    )
    text += facts_table(ctx, stage, consecutive, context_path) + "\n"
    if ctx.error:
        text += "### Error\n\n" + _code(ctx.error) + "\n"
    if ctx.stages:
        text += "### Stages\n\n" + _stages_mermaid(ctx.stages) + "\n"
        rows = [[s.name, f"{RESULT_ICONS.get(s.result, '')} {s.result}".strip()] for s in ctx.stages]
        text += md_table(["Stage", "Result"], rows) + "\n"
        outputs = [[s.name, k, v] for s in ctx.stages for k, v in sorted(s.outputs.items())]
        if outputs:
            text += "### Stage outputs\n\n" + md_table(["Stage", "Output", "Value"], outputs) + "\n"
    text += _jobs_section(ctx, details=False)
    text += _findings_section(ctx)
    text += _deployment_section(ctx)
    if ctx.notes:
        text += "### Notes\n\n" + "".join(f"- {n}\n" for n in ctx.notes) + "\n"
    return text


def render_issue_body(
    ctx: FailureContext,
    stage: str,
    consecutive: int,
    context_path: str,
    settings: IncidentSettings,
    *,
    escalation: str = "",
) -> str:
    run = ctx.run
    text = f"## ❌ `{stage}` failed on `{run.branch}`\n\n"
    text += (
        f"Deployment failed for commit `{run.sha or 'unknown'}`. Full execution context: `{context_path}`"
        f" (artifact `{artifact_name(run)}`). Pipeline logs: {run.run_url or run.label}. "
        f"Failure point: {stage}.\n\n"
    )
    if escalation:
        text += escalation + "\n\n"
    text += facts_table(ctx, stage, consecutive, context_path) + "\n"
    if ctx.error:
        text += "### Error\n\n" + _code(ctx.error) + "\n"
    text += _jobs_section(ctx, details=True)
    text += _findings_section(ctx)
    text += _deployment_section(ctx)
    text += MANAGED_NOTE.format(n=settings.escalate_after) + "\n"
    return _clip(text)


def render_repeat_comment(ctx: FailureContext, stage: str, consecutive: int, context_path: str) -> str:
    run = ctx.run
    text = f"### ❌ Failed again: {run.link()} at `{run.short_sha}`\n\n"
    text += f"Failure point: `{stage}`. Consecutive failed runs on `{run.branch}`: **{consecutive}**.\n\n"
    text += facts_table(ctx, stage, consecutive, context_path) + "\n"
    if ctx.error:
        text += "### Error\n\n" + _code(ctx.error) + "\n"
    text += _jobs_section(ctx, details=True)
    text += _findings_section(ctx)
    text += _deployment_section(ctx)
    return _clip(text)


def render_escalation(settings: IncidentSettings, consecutive: int, branch: str) -> str:
    who = (
        " ".join(settings.mentions) if settings.mentions else "_(no owners configured: set incidents.owners)_"
    )
    return (
        f"### 🚨 Escalated: {consecutive} consecutive failed runs on `{branch}`\n\n"
        f"{who} — this pipeline has failed {consecutive} runs in a row "
        f"(threshold: incidents.escalate_after = {settings.escalate_after}). Please take a look."
    )


def render_resolution(
    run: RunInfo, stage: str, first_failure_at: datetime, recovered_at: datetime, mttr: timedelta
) -> str:
    return (
        f"### ✅ Recovered: `{stage}` passed again in {run.link()} at `{run.short_sha}`\n\n"
        + md_table(
            ["Field", "Value"],
            [
                ["MTTR", f"**{duration_text(mttr)}** (first failure → recovery)"],
                ["First failure", utc(first_failure_at)],
                ["Recovered", utc(recovered_at)],
                ["Fixing run", run.link()],
            ],
        )
        + "\nClosing this incident. MTTR was recorded in the deployment history.\n"
    )


def render_duplicate(canonical: int) -> str:
    return (
        f"Closing as a duplicate of #{canonical}: two runs reported the same incident at once. "
        "Further updates go there."
    )
