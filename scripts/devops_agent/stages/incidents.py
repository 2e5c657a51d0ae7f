"""report-failure / resolve: the failure incident lifecycle.

parse (options, action inputs, the run from the environment or the local state store)
→ collect (jobs + log excerpts, gate findings, deployment results, run history, open incidents)
→ decide (:func:`devops_agent.incidents.plan.plan_incidents`, pure)
→ act (context file, issues/comments/labels through the Platform, MTTR into the history).

``report-failure`` given the final job's ``needs`` handles the whole lifecycle of one run: failed
stages open or update incidents (and escalate), stages that passed close theirs, cancelled and
skipped runs are ignored. ``resolve`` closes incidents after a successful run. See docs/incidents.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from devops_agent.core.command import (
    Context,
    add_app_options,
    add_dry_run,
    new_parser,
    resolve_app_dir,
    run_command,
)
from devops_agent.core.config import Config, config_path_for, load_config
from devops_agent.core.errors import ConfigError, PlatformError
from devops_agent.core.gha import Actions, get_input, get_multiline_input, md_table
from devops_agent.core.platform import Platform, get_platform
from devops_agent.incidents import collect, render
from devops_agent.incidents.act import (
    OPEN_HEADERS,
    Outcome,
    apply_plan,
    load_open_incidents,
    open_incident_rows,
)
from devops_agent.incidents.model import FailureContext, IncidentSettings, RunInfo, RunView, StageResult
from devops_agent.incidents.plan import (
    IncidentPlan,
    count_consecutive_failures,
    parse_needs,
    plan_incidents,
    plan_to_json,
)
from devops_agent.incidents.redact import mask_environment, redact

MULTI_COMMAND = True
COMMANDS = ("report-failure", "resolve")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def build_parser(command: str, env: Mapping[str, str]) -> argparse.ArgumentParser:
    if command == "report-failure":
        description = (
            "Open or update the failure incident of this run (one issue per pipeline + branch + "
            "failing stage), escalate repeated failures, close incidents of stages that passed."
        )
    else:
        description = (
            "Close the open incidents of this pipeline and branch after a successful run, with MTTR."
        )
    parser = new_parser(command, description)
    add_app_options(parser, env=env)
    add_dry_run(parser, env=env)
    parser.add_argument(
        "--needs",
        metavar="JSON",
        default=get_input("needs", env),
        help="results of the pipeline's jobs: ${{ toJSON(needs) }} (action input `needs`)",
    )
    parser.add_argument(
        "--stage",
        default=get_input("stage", env) or None,
        help="the failing stage when --needs is not given (report-failure), or the only stage to "
        "resolve (resolve) (action input `stage`)",
    )
    parser.add_argument(
        "--error", default=get_input("error", env), help="error message to include (action input `error`)"
    )
    parser.add_argument(
        "--gate-report",
        action="append",
        default=get_multiline_input("gate-reports", env),
        metavar="SARIF",
        help="SARIF file(s) of the policy gate; repeatable (action input `gate-reports`, one per line)",
    )
    parser.add_argument(
        "--deployment-report",
        default=get_input("deployment-report", env) or None,
        metavar="JSON",
        help="JSON result of deploy/validate/rollback (action input `deployment-report`)",
    )
    parser.add_argument(
        "--run-id", default=get_input("run-id", env) or None, help="run to report (default: this run)"
    )
    parser.add_argument(
        "--attempt", default=get_input("attempt", env) or None, help="run attempt (default: this one)"
    )
    parser.add_argument(
        "--branch", default=get_input("branch", env) or None, help="branch (default: this run's)"
    )
    parser.add_argument("--sha", default=get_input("sha", env) or None, help="commit (default: this run's)")
    parser.add_argument(
        "--workflow",
        default=get_input("workflow", env) or None,
        help="the caller's workflow file whose runs are counted (default: from GITHUB_WORKFLOW_REF)",
    )
    parser.add_argument(
        "--context-dir",
        default=get_input("context-dir", env) or None,
        help="where to write the failure context (default: incidents.context_dir)",
    )
    parser.add_argument("--list", action="store_true", help="only print the open incidents")
    return parser


def _load(args: argparse.Namespace, notes: list[str]) -> tuple[Path, Config | None, str]:
    """App dir, config (None when it cannot be loaded: a failure must still be reported) and app name."""
    app_dir = resolve_app_dir(args.app)
    try:
        config = load_config(config_path_for(app_dir, args.config))
    except ConfigError as exc:
        notes.append(
            f"the pipeline config could not be loaded, incident defaults used: {exc.cause.splitlines()[0]}"
        )
        return app_dir, None, app_dir.name
    return app_dir, config, config.app.name


def _stages(
    command: str, args: argparse.Namespace, local_details: Mapping[str, Any]
) -> tuple[tuple[StageResult, ...], bool]:
    """(stage results, resolve_all)."""
    stages = parse_needs(args.needs or "")
    if command == "resolve":
        if any(s.result == "failure" for s in stages):
            raise ConfigError(
                "lists failed jobs, so this run is not a recovery",
                "call report-failure with these needs (it handles failures and recoveries)",
                field="needs",
            )
        if not stages and args.stage:
            return (StageResult(args.stage, "success"),), False
        return stages, not stages
    if not stages:
        stage = args.stage or str(local_details.get("stage") or "") or "pipeline"
        stages = (StageResult(stage, "failure"),)
    return stages, False


def _history(platform: Platform, run: RunInfo, app_dir: Path, notes: list[str]) -> list[RunView]:
    if platform.kind == "local":
        return collect.local_history(app_dir, run.branch)
    try:
        return collect.github_history(platform, run)
    except PlatformError as exc:
        notes.append(
            f"run history unavailable, escalation count is a lower bound: {exc.cause.splitlines()[0]}"
        )
        return []


def record_mttr(app_dir: Path, config: Config | None, run: RunInfo, outcomes: Sequence[Outcome]) -> str:
    """Append one row per resolved incident to the deployment history; returns the file used."""
    from devops_agent.deploy.settings import HistorySettings, history_settings
    from devops_agent.stages.history import HistoryRow, append_history, utc_now

    settings = history_settings(config) if config is not None else HistorySettings()
    rows = [
        HistoryRow(
            time=utc_now(),
            environment=o.stage,
            version=run.short_sha,
            digest="—",
            status="recovered",
            duration=f"MTTR {render.duration_text(o.mttr)}" if o.mttr is not None else "",
            run=run.run_id,
            notes=f"incident #{o.number} closed ({run.pipeline} @ {run.branch})",
        )
        for o in outcomes
        if o.action == "resolved"
    ]
    path = append_history(app_dir, settings, rows)
    return str(path.relative_to(app_dir)) if path is not None else ""


def render_summary(plan: IncidentPlan, outcomes: Sequence[Outcome], run: RunInfo, *, dry_run: bool) -> str:
    heads = {
        "failure": "❌ failure reported",
        "success": "✅ recovery checked",
        "cancelled": "🚫 run cancelled — ignored",
        "skipped": "⏭️ run skipped — ignored",
    }
    text = f"## 🚨 Incidents — {run.pipeline} @ `{run.branch}`: {heads[plan.outcome]}\n\n"
    if dry_run:
        text += "> [!NOTE]\n> Dry run: nothing was changed.\n\n"
    if plan.ignored:
        return text + f"Nothing to do: {plan.ignored}.\n"
    if plan.outcome == "failure":
        text += f"Consecutive failed runs on `{run.branch}`: **{plan.consecutive_failures}**\n\n"
    if plan.context_path:
        text += f"Failure context: `{plan.context_path}`\n\n"
    if not plan.actions:
        return text + "No open incident to update.\n"
    by_stage = {o.stage: o for o in outcomes}
    rows = []
    for a in plan.actions:
        done = by_stage.get(a.stage)
        number = done.number if done else a.number
        rows.append(
            [
                a.stage,
                (done.action if done else a.kind) + (" + escalated" if a.escalates else ""),
                f"#{number}" if number else "(new)",
                render.duration_text(a.mttr) if a.mttr is not None else "",
                a.reason,
            ]
        )
    return text + md_table(["Stage", "Action", "Issue", "MTTR", "Why"], rows)


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock = _utcnow,
    platform: Platform | None = None,
) -> int:
    """``report-failure`` / ``resolve`` (the command name comes first: MULTI_COMMAND).

    ``env``, ``clock`` and ``platform`` are injectable for tests (a platform passed in is not closed).
    """
    args_in = list(sys.argv[1:] if argv is None else argv)
    command = args_in[0] if args_in and args_in[0] in COMMANDS else "report-failure"
    rest = args_in[1:] if args_in and args_in[0] in COMMANDS else args_in
    environ: Mapping[str, str] = dict(os.environ) if env is None else env

    def body() -> int:
        args = build_parser(command, environ).parse_args(rest)
        actions = Actions.from_env(environ, stream=sys.stderr if args.json else None)
        mask_environment(actions, environ)
        notes: list[str] = []
        app_dir, config, app = _load(args, notes)
        settings = IncidentSettings.from_config(config)
        overrides = {
            k: str(v)
            for k, v in (
                ("run_id", args.run_id),
                ("attempt", args.attempt),
                ("branch", args.branch),
                ("sha", args.sha),
                ("workflow", args.workflow),
            )
            if v
        }
        with nullcontext(platform) if platform is not None else get_platform(app_dir, environ) as backend:
            if args.list:
                return _print_open(backend, settings, actions, args.json, app_dir)
            local_details: Mapping[str, Any] = {}
            if backend.kind == "github":
                run = collect.run_from_github_env(environ, app, overrides)
            else:
                run, local_details = collect.run_from_local(app_dir, app, overrides)
            stages, resolve_all = _stages(command, args, local_details)
            ctx = FailureContext(run, stages, clock(), error=redact(args.error or "", actions))
            failing = any(s.result == "failure" for s in stages)
            consecutive = 0
            if failing and settings.enabled:
                try:
                    ctx = _enrich(ctx, args, backend, settings, actions, environ, app_dir, notes)
                except Exception as exc:  # evidence is best effort: never lose the incident over it
                    notes.append(f"part of the context could not be collected: {type(exc).__name__}: {exc}")
                consecutive = count_consecutive_failures(_history(backend, run, app_dir, notes), run.run_id)
            ctx = replace(ctx, notes=(*ctx.notes, *notes))
            context_dir = args.context_dir or settings.context_dir
            context_path = (Path(context_dir) / render.context_file_name(run)).as_posix() if failing else ""
            incidents = (
                load_open_incidents(backend, settings, run.pipeline, run.branch) if settings.enabled else []
            )
            plan = plan_incidents(
                ctx,
                settings,
                incidents,
                consecutive=consecutive,
                now=ctx.reported_at,
                app=app,
                context_path=context_path,
                resolve_all=resolve_all,
            )
            outcomes: list[Outcome] = []
            history_file = ""
            written = ""
            if plan.context_path and not plan.ignored and not args.dry_run:
                stage = ctx.failed_stages[0]
                text = render.render_context_file(ctx, stage, consecutive, plan.context_path)
                target = app_dir / plan.context_path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(redact(text, actions), encoding="utf-8")
                written = plan.context_path
            # before any GitHub write: the context is uploaded even when GitHub refuses the report
            actions.set_output("context-file", written)
            if not args.dry_run and not plan.ignored:
                outcomes = apply_plan(backend, plan, settings, actions)
                if any(o.action == "resolved" for o in outcomes):
                    history_file = record_mttr(app_dir, config, run, outcomes)
            _publish(actions, plan, outcomes, run, args, history_file)
            if backend.kind == "local" and not args.json:
                _print_open(backend, settings, actions, False, app_dir)
        return 0

    return run_command(body, actions=Actions.from_env(environ, stream=sys.stderr))


def _enrich(
    ctx: FailureContext,
    args: argparse.Namespace,
    platform: Platform,
    settings: IncidentSettings,
    actions: Actions,
    env: Mapping[str, str],
    app_dir: Path,
    notes: list[str],
) -> FailureContext:
    """Jobs + log excerpts (GitHub), gate findings, deployment/rollback results."""
    jobs: tuple[Any, ...] = ()
    if platform.kind == "github":
        api_url = str(getattr(platform, "api_url", env.get("GITHUB_API_URL", "https://api.github.com")))
        fetch = collect.log_fetcher(env, api_url, ctx.run.repository or platform.repo.full_name)
        jobs, job_notes = collect.github_jobs(
            platform, ctx.run, log_lines=settings.log_lines, fetch_log=fetch, actions=actions
        )
        notes.extend(job_notes)
    gate_paths = [app_dir / p if not Path(p).is_absolute() else Path(p) for p in args.gate_report or []]
    findings, total, gate_notes = collect.sarif_findings(gate_paths, actions)
    notes.extend(gate_notes)
    report = Path(args.deployment_report) if args.deployment_report else None
    if report is not None and not report.is_absolute():
        report = app_dir / report
    deployment, deployment_notes = collect.deployment_rows(report, ctx.stages, actions)
    notes.extend(deployment_notes)
    if platform.kind == "local" and not deployment:
        deployment = tuple(collect.local_deployments(app_dir))
    return replace(ctx, jobs=tuple(jobs), findings=findings, findings_total=total, deployment=deployment)


def _publish(
    actions: Actions,
    plan: IncidentPlan,
    outcomes: Sequence[Outcome],
    run: RunInfo,
    args: argparse.Namespace,
    history_file: str,
) -> None:
    numbers = [o.number for o in outcomes]
    actions.set_output("outcome", plan.outcome)
    actions.set_output("incidents", [n for n in numbers if n])
    actions.set_output("escalated", any(o.escalated for o in outcomes))
    actions.set_output("resolved", [o.number for o in outcomes if o.action == "resolved"])
    actions.set_output("history-file", history_file)
    actions.summary(render_summary(plan, outcomes, run, dry_run=args.dry_run))
    if args.json:
        payload = plan_to_json(plan)
        payload["dry_run"] = bool(args.dry_run)
        payload["run"] = {"id": run.run_id, "attempt": run.run_attempt, "branch": run.branch, "sha": run.sha}
        payload["history_file"] = history_file or None
        payload["results"] = [
            {
                "stage": o.stage,
                "action": o.action,
                "issue": o.number,
                "url": o.url,
                "escalated": o.escalated,
                "closed": o.closed,
                "mttr_seconds": int(o.mttr.total_seconds()) if o.mttr is not None else None,
                "duplicates_closed": list(o.duplicates_closed),
            }
            for o in outcomes
        ]
        Context(actions, Path(".")).emit_json(payload)


def _print_open(
    platform: Platform, settings: IncidentSettings, actions: Actions, as_json: bool, app_dir: Path
) -> int:
    rows = open_incident_rows(platform, settings)
    if as_json:
        Context(actions, app_dir).emit_json(
            {"open_incidents": [dict(zip(OPEN_HEADERS, row, strict=True)) for row in rows]}
        )
        return 0
    where = "state store" if platform.kind == "local" else platform.repo.full_name
    if rows:
        actions.info(f"Open incidents ({where}):\n" + md_table(list(OPEN_HEADERS), rows))
    else:
        actions.info(f"No open incidents ({where}).")
    return 0
