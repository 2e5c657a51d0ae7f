"""Gather the failure context: the run (environment or local state), its jobs and their logs,
gate findings (SARIF), deployment / rollback results, and the workflow's run history.

Everything collected here passes through :func:`devops_agent.incidents.redact.redact` before it
can reach an issue, a comment or the context file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devops_agent.core.errors import ConfigError, PlatformError
from devops_agent.core.gha import Actions
from devops_agent.core.platform import TOKEN_ENV_VARS, Platform
from devops_agent.incidents.logs import LogResult, excerpt_log, fetch_job_log
from devops_agent.incidents.model import FAILED_CONCLUSIONS, Finding, JobView, RunInfo, RunView, StageResult
from devops_agent.incidents.redact import redact

MAX_FINDINGS = 10
MAX_LOG_JOBS = 3
_LEVEL_ORDER = {"error": 0, "warning": 1, "note": 2, "none": 3}
_DEPLOY_STAGES = ("deploy", "validate", "rollback", "promote")

LogFetcher = Callable[[int], LogResult]


def _int(value: str, name: str, default: int) -> int:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{value!r} is not a number", f"set {name} to an integer", field=name) from None


def workflow_file(env: Mapping[str, str]) -> str:
    """The caller's workflow file from ``GITHUB_WORKFLOW_REF`` (``o/r/.github/workflows/ci.yml@ref``).

    Inside a reusable workflow this is still the caller's workflow, whose runs are counted.
    """
    ref = env.get("GITHUB_WORKFLOW_REF", "")
    path = ref.split("@", 1)[0]
    if "/.github/workflows/" in path:
        return path.rsplit("/", 1)[-1]
    return env.get("GITHUB_WORKFLOW", "").strip()


def run_from_github_env(env: Mapping[str, str], app: str, overrides: Mapping[str, str]) -> RunInfo:
    """The run as GitHub Actions describes it; ``overrides`` (CLI options) win."""
    repository = env.get("GITHUB_REPOSITORY", "")
    run_id = overrides.get("run_id") or env.get("GITHUB_RUN_ID", "")
    if not run_id:
        raise ConfigError(
            "the run id is unknown", "run inside GitHub Actions or pass --run-id", field="GITHUB_RUN_ID"
        )
    workflow = overrides.get("workflow") or workflow_file(env)
    if not workflow:
        raise ConfigError(
            "the caller's workflow is unknown",
            "run inside GitHub Actions (GITHUB_WORKFLOW_REF) or pass --workflow FILE",
            field="GITHUB_WORKFLOW_REF",
        )
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    branch = overrides.get("branch") or env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME", "")
    if not branch:
        raise ConfigError("the branch is unknown", "pass --branch NAME", field="GITHUB_REF_NAME")
    return RunInfo(
        pipeline=f"{app}/{workflow}",
        workflow=workflow,
        run_id=run_id,
        branch=branch,
        sha=overrides.get("sha") or env.get("GITHUB_SHA", ""),
        run_attempt=_int(
            overrides.get("attempt") or env.get("GITHUB_RUN_ATTEMPT", ""), "GITHUB_RUN_ATTEMPT", 1
        ),
        run_number=_int(env.get("GITHUB_RUN_NUMBER", ""), "GITHUB_RUN_NUMBER", 0),
        run_url=f"{server}/{repository}/actions/runs/{run_id}" if repository else "",
        repository=repository,
        event=env.get("GITHUB_EVENT_NAME", ""),
        actor=env.get("GITHUB_TRIGGERING_ACTOR") or env.get("GITHUB_ACTOR", ""),
        workflow_name=env.get("GITHUB_WORKFLOW", ""),
    )


# -- local mode ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalRun:
    id: str
    status: str  # running | success | failure | cancelled
    branch: str | None
    commit: str | None
    details: Mapping[str, Any]


def local_runs(app_dir: Path, branch: str | None) -> list[LocalRun]:
    """The local pipeline runs (``devops-agent run`` records them), newest first."""
    from devops_agent.core.state import StateStore

    with StateStore.for_app(app_dir) as store:
        rows = store.db.execute(
            "SELECT id, status, branch, commit_sha, details FROM runs"
            " ORDER BY started_at DESC, rowid DESC LIMIT 200"
        ).fetchall()
    out = []
    for row in rows:
        if branch is not None and row["branch"] not in (None, branch):
            continue
        try:
            details = json.loads(row["details"] or "{}")
        except json.JSONDecodeError:
            details = {}
        out.append(
            LocalRun(
                str(row["id"]),
                str(row["status"]),
                row["branch"],
                row["commit_sha"],
                details if isinstance(details, dict) else {},
            )
        )
    return out


def run_from_local(
    app_dir: Path, app: str, overrides: Mapping[str, str]
) -> tuple[RunInfo, Mapping[str, Any]]:
    """The local run to report (the newest one unless --run-id) and its recorded details."""
    from devops_agent.core.versioning import git_branch, git_commit

    runs = local_runs(app_dir, None)
    wanted = overrides.get("run_id")
    chosen = next((r for r in runs if r.id == wanted), None) if wanted else (runs[0] if runs else None)
    if wanted and chosen is None:
        raise ConfigError(
            f"run {wanted!r} is not in the local state store",
            "pass the id of a local run (see `devops-agent history`) or omit --run-id",
            field="--run-id",
        )
    branch = overrides.get("branch") or (chosen.branch if chosen else None) or git_branch(app_dir) or "local"
    sha = overrides.get("sha") or (chosen.commit if chosen else None) or git_commit(app_dir) or ""
    return (
        RunInfo(
            pipeline=f"{app}/local",
            workflow="local",
            run_id=chosen.id if chosen else (wanted or "local"),
            branch=branch,
            sha=sha,
            run_attempt=_int(overrides.get("attempt", ""), "--attempt", 1),
        ),
        chosen.details if chosen else {},
    )


def local_history(app_dir: Path, branch: str) -> list[RunView]:
    status_map = {"success": "success", "failure": "failure", "cancelled": "cancelled"}
    return [
        RunView(r.id, "completed" if r.status in status_map else "in_progress", status_map.get(r.status))
        for r in local_runs(app_dir, branch)
    ]


def local_deployments(app_dir: Path, limit: int = 3) -> list[tuple[str, str]]:
    from devops_agent.core.state import StateStore

    rows: list[tuple[str, str]] = []
    with StateStore.for_app(app_dir) as store:
        for dep in store.deployments(limit=limit):
            extra = {k: v for k, v in dep.details.items() if isinstance(v, str | int | float | bool)}
            detail = ", ".join(f"{k}={v}" for k, v in sorted(extra.items()))
            rows.append(
                (
                    f"{dep.environment} deployment #{dep.id}",
                    f"{dep.status} · {dep.version or '?'} · `{dep.digest[:19]}`"
                    + (f" · {detail}" if detail else ""),
                )
            )
    return rows


# -- GitHub -------------------------------------------------------------------------------------


def github_history(platform: Platform, run: RunInfo, *, limit: int = 100) -> list[RunView]:
    """The caller workflow's runs on the branch, newest first (one page is enough to count)."""
    runs = platform.list_workflow_runs(run.workflow, branch=run.branch, limit=limit)
    return [RunView(str(r.id), r.status, r.conclusion, r.html_url) for r in runs]


def github_jobs(
    platform: Platform,
    run: RunInfo,
    *,
    log_lines: int,
    fetch_log: LogFetcher | None,
    actions: Actions,
) -> tuple[tuple[JobView, ...], tuple[str, ...]]:
    """Jobs of the run; failed ones with a redacted log excerpt. Returns (jobs, notes)."""
    notes: list[str] = []
    try:
        jobs = platform.list_jobs(int(run.run_id))
    except (PlatformError, ValueError) as exc:
        return (), (f"jobs of the run could not be listed: {str(exc).splitlines()[0]}",)
    views: list[JobView] = []
    fetched = 0
    for job in jobs:
        failed = job.conclusion in FAILED_CONCLUSIONS
        excerpt, note = "", ""
        if failed and log_lines > 0 and fetch_log is not None and fetched < MAX_LOG_JOBS:
            fetched += 1
            result = fetch_log(job.id)
            if result.text is not None:
                excerpt = redact(excerpt_log(result.text, log_lines), actions)
            else:
                note = result.note
        elif failed and fetch_log is None:
            note = "log not fetched (no token)"
        views.append(JobView(job.name, job.conclusion, job.html_url, excerpt, note))
    if fetched == MAX_LOG_JOBS and sum(1 for v in views if v.conclusion in FAILED_CONCLUSIONS) > MAX_LOG_JOBS:
        notes.append(f"log excerpts of the first {MAX_LOG_JOBS} failed jobs only")
    return tuple(views), tuple(notes)


def log_fetcher(env: Mapping[str, str], api_url: str, repository: str) -> LogFetcher | None:
    token = next((env[name] for name in TOKEN_ENV_VARS if env.get(name)), None)
    if not token or not repository:
        return None

    def fetch(job_id: int) -> LogResult:
        return fetch_job_log(api_url, repository, job_id, token)

    return fetch


# -- reports ------------------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> tuple[Any, str]:
    """(data, note). A missing or damaged report never stops the failure report: it becomes a
    note in the context (the failing stage may have died before writing it)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), ""
    except FileNotFoundError:
        return None, f"{what} {path.name} was not found (the stage may not have written it)"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{what} {path.name} is not readable JSON ({type(exc).__name__}: {exc})"


def sarif_findings(
    paths: Sequence[Path], actions: Actions
) -> tuple[tuple[Finding, ...], int, tuple[str, ...]]:
    """The most severe unsuppressed results of SARIF files: (top findings, total, notes)."""
    found: list[Finding] = []
    notes: list[str] = []
    for path in paths:
        data, note = _read_json(path, "gate report")
        runs = data.get("runs") if isinstance(data, Mapping) else None
        if not isinstance(runs, list):
            notes.append(note or f"gate report {path.name} is not a SARIF 2.1.0 file (no runs)")
            continue
        for sarif_run in runs:
            results = sarif_run.get("results") if isinstance(sarif_run, Mapping) else None
            for result in results if isinstance(results, list) else []:
                if not isinstance(result, Mapping) or result.get("suppressions"):
                    continue
                found.append(_finding(result, actions))
    found.sort(key=lambda f: (_LEVEL_ORDER.get(f.level, 9), f.rule, f.location))
    return tuple(found[:MAX_FINDINGS]), len(found), tuple(notes)


def _finding(result: Mapping[str, Any], actions: Actions) -> Finding:
    message = result.get("message") or {}
    text = str(message.get("text") or message.get("markdown") or "") if isinstance(message, Mapping) else ""
    location = ""
    locations = result.get("locations") or []
    if locations and isinstance(locations[0], Mapping):
        physical = locations[0].get("physicalLocation") or {}
        uri = (physical.get("artifactLocation") or {}).get("uri", "")
        line = (physical.get("region") or {}).get("startLine")
        location = f"{uri}:{line}" if uri and line else str(uri)
    return Finding(
        rule=str(result.get("ruleId") or "?"),
        level=str(result.get("level") or "warning"),
        message=redact(text.splitlines()[0] if text else "", actions)[:300],
        location=location,
    )


def deployment_rows(
    report: Path | None, stages: Sequence[StageResult], actions: Actions
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Rows about deploy / validate / rollback — a JSON report's scalar fields plus the outputs of
    the deploy, validate, rollback and promote jobs — and notes about an unusable report."""
    rows: list[tuple[str, str]] = []
    notes: list[str] = []
    if report is not None:
        data, note = _read_json(report, "deployment report")
        if isinstance(data, Mapping):
            rows.extend(_flatten(data))
        else:
            notes.append(note or f"deployment report {report.name} is not a JSON object")
    for stage in stages:
        if any(s in stage.name for s in _DEPLOY_STAGES):
            rows.extend((f"{stage.name}.{k}", v) for k, v in sorted(stage.outputs.items()) if v)
    return tuple((k, redact(str(v), actions)[:300]) for k, v in rows[:40]), tuple(notes)


def _flatten(data: Mapping[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and depth < 1:
            out.extend(_flatten(value, f"{name}.", depth + 1))
        elif isinstance(value, str | int | float | bool) or value is None:
            out.append((name, "—" if value is None else str(value)))
    return out
