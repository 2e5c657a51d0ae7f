"""approve | reject | pending: review deployments that wait on an environment's approval.

- ``devops-agent approve|reject --run ID --env NAME --comment TEXT`` reviews the pending
  deployments of a workflow run on GitHub, with the REVIEWER'S OWN token (GITHUB_TOKEN and App
  installation tokens cannot review: GitHub only accepts reviews from a required reviewer as a
  user). The comment is required.
- ``devops-agent pending [--run ID] [--workflow FILE]`` lists what waits (run, environment, wait
  timer, reviewers, whether you can approve).
- ``--local`` (or no GitHub configured): the same on this machine's state store; ``approve
  --local`` then continues the promotion that ``devops-agent run`` stopped before production.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from devops_agent.core.command import (
    Context,
    add_app_options,
    argv_list,
    new_parser,
    resolve_app_dir,
    run_command,
)
from devops_agent.core.errors import ConfigError, GateFailed
from devops_agent.core.gha import Actions, get_bool_input, get_input, md_table

MULTI_COMMAND = True
COMMANDS = ("approve", "reject", "pending")


def _parser(command: str) -> Any:
    descriptions = {
        "approve": "Approve a deployment waiting on an environment (reviewer's own token; comment required).",
        "reject": "Reject a deployment waiting on an environment (reviewer's own token; comment required).",
        "pending": "List workflow runs waiting for an environment review.",
    }
    parser = new_parser(command, descriptions[command])
    add_app_options(parser)
    parser.add_argument(
        "--run",
        default=get_input("run") or None,
        help="workflow run id (locally: the approval run id `run` printed)",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        default=get_bool_input("local", None, default=False),
        help="use this machine's state store (what `devops-agent run` waits on) even if GitHub is configured",
    )
    if command == "pending":
        parser.add_argument(
            "--workflow",
            action="append",
            default=None,
            help="workflow file whose waiting runs to list (repeatable; default: devsecops.yml on GitHub, "
            "the local approval runs with --local)",
        )
    else:
        parser.add_argument(
            "--env",
            dest="environments",
            action="append",
            default=None,
            help="environment to review (repeatable; default promote.environment, else production)",
        )
        parser.add_argument("--comment", default=get_input("comment") or "", help="why (required; recorded)")
    return parser


def _platform(app_dir: Path, local: bool, env: Mapping[str, str]) -> Any:
    from devops_agent.core.platform import get_platform

    if local:
        from devops_agent.platform.local import LocalPlatform

        return LocalPlatform.for_app(app_dir)
    return get_platform(app_dir, env)


def _run_id(value: str | None, *, required: bool) -> int | None:
    if value is None:
        if required:
            raise ConfigError(
                "is required",
                "pass --run ID (the workflow run id, see `devops-agent pending`)",
                field="--run",
            )
        return None
    try:
        run = int(value)
    except ValueError:
        raise ConfigError(
            f"{value!r} is not a run id", "pass the numeric workflow run id", field="--run"
        ) from None
    if run <= 0:
        raise ConfigError(f"{value!r} is not a run id", "pass the numeric workflow run id", field="--run")
    return run


def _default_environment(app_dir: Path, config_path: str | None) -> str:
    """promote.environment when the app's config is readable, else production."""
    from devops_agent.core.config import config_path_for, load_config

    path = config_path_for(app_dir, config_path)
    if not path.is_file():
        return "production"
    from devops_agent.promote.settings import promote_settings

    return promote_settings(load_config(path)).environment


def review(
    platform: Any, run_id: int, environments: Sequence[str], state: str, comment: str
) -> tuple[list[Any], list[Any]]:
    """Review the pending deployments of ``run_id`` for ``environments``: (reviewed, deployments)."""
    pending = platform.list_pending_deployments(run_id)
    chosen = [p for p in pending if p.environment in environments]
    missing = sorted(set(environments) - {p.environment for p in chosen})
    if missing:
        waiting = ", ".join(p.environment for p in pending) or "nothing"
        raise GateFailed(
            f"run {run_id} has no deployment waiting on {', '.join(missing)} (it waits on: {waiting})",
            "check the run id and --env; `devops-agent pending` lists what waits "
            "(a reviewed deployment no longer waits)",
        )
    cannot = [p.environment for p in chosen if not p.current_user_can_approve]
    if cannot:
        raise GateFailed(
            f"this token's user is not a required reviewer of {', '.join(cannot)}",
            "ask one of the environment's reviewers, or use your own token if you are one",
        )
    deployments = platform.review_pending_deployments(
        run_id, [p.environment_id for p in chosen], state, comment
    )
    return chosen, list(deployments)


def _do_review(command: str, argv: Sequence[str]) -> int:
    parser = _parser(command)
    args = parser.parse_args(argv_list(argv))
    state = "approved" if command == "approve" else "rejected"
    comment = (args.comment or "").strip()
    if not comment:
        raise ConfigError(
            "is required: every approval and rejection is recorded with its reason",
            "pass --comment 'why' (e.g. --comment 'staging checks reviewed, change record ok')",
            field="--comment",
        )
    app_dir = resolve_app_dir(args.app)
    env = dict(os.environ)
    actions = Actions.from_env(stream=sys.stderr if args.json else None)
    from devops_agent.core.platform import PlatformSettings

    local = args.local or PlatformSettings.from_env(env, app_dir).kind == "local"
    environments = args.environments or [_default_environment(app_dir, args.config)]
    if not local:
        from devops_agent.promote.tokens import require_reviewer_token

        require_reviewer_token(env)
        run_id = _run_id(args.run, required=True)
        assert run_id is not None
        with _platform(app_dir, False, env) as platform:
            chosen, deployments = review(platform, run_id, environments, state, comment)
        rows = [[p.environment, state, comment] for p in chosen]
        actions.summary(
            f"## {'✅' if state == 'approved' else '⛔'} Run {run_id}: {state}\n\n"
            + md_table(["Environment", "Review", "Comment"], rows)
        )
        actions.set_output("reviewed", [p.environment for p in chosen])
        if args.json:
            Context(actions, app_dir).emit_json(
                {
                    "run": run_id,
                    "state": state,
                    "environments": [p.environment for p in chosen],
                    "deployments": [d.id for d in deployments],
                }
            )
        return 0
    return _local_review(app_dir, args, environments, state, comment, actions, env)


def _local_review(
    app_dir: Path,
    args: Any,
    environments: Sequence[str],
    state: str,
    comment: str,
    actions: Actions,
    env: Mapping[str, str],
) -> int:
    """Locally: review the approval run, then (approve) continue the promotion it held."""
    from devops_agent.stages.build import load_for
    from devops_agent.stages.promote import (
        PromoteInputs,
        conclude_local_request,
        execute_promotion,
        find_local_request,
        local_user,
    )

    _, config = load_for(str(app_dir), args.config)
    if len(environments) != 1:
        raise ConfigError("review one environment at a time locally", "pass a single --env", field="--env")
    environment = environments[0]
    run_id = _run_id(args.run, required=False)
    request = find_local_request(app_dir, environment, run_id)
    if request is None:
        raise GateFailed(
            f"no local promotion waits on {environment}" + (f" in approval run {run_id}" if run_id else ""),
            "run `devops-agent run` first; `devops-agent pending --local` lists what waits",
        )
    by = local_user(env)
    with _platform(app_dir, True, env) as platform:
        review(platform, request.approval_run, [environment], state, comment)
    conclude_local_request(app_dir, config, request, state, by, comment)
    if state == "rejected":
        actions.summary(f"## ⛔ {request.version} rejected for {environment}\n\n{by}: {comment}\n")
        actions.set_output("promoted", False)
        if args.json:
            Context(actions, app_dir).emit_json(
                {"state": state, "digest": request.digest, "environment": environment}
            )
        return 0
    actions.info(f"{by} approved {request.version} for {environment}: {comment}")
    result = execute_promotion(
        app_dir,
        config,
        actions,
        PromoteInputs(digest=request.digest, approver=by, approval_comment=comment),
        run_id=request.pipeline_run,
        env=env,
        local=True,
    )
    if request.pipeline_run:
        from devops_agent.core.state import StateStore

        with StateStore.for_app(app_dir) as store:
            store.finish_run(request.pipeline_run, "success", {"promote": result.status, "approved_by": by})
    actions.set_output("promoted", result.status == "promoted")
    if args.json:
        Context(actions, app_dir).emit_json(result.to_json())
    return 0


def _pending(argv: Sequence[str]) -> int:
    args = _parser("pending").parse_args(argv_list(argv))
    app_dir = resolve_app_dir(args.app)
    env = dict(os.environ)
    actions = Actions.from_env(stream=sys.stderr if args.json else None)
    from devops_agent.core.platform import PlatformSettings

    local = args.local or PlatformSettings.from_env(env, app_dir).kind == "local"
    run_id = _run_id(args.run, required=False)
    rows: list[dict[str, Any]] = []
    with _platform(app_dir, local, env) as platform:
        if run_id is not None:
            runs = [run_id]
        else:
            from devops_agent.stages.promote import APPROVAL_WORKFLOW

            workflows = args.workflow or ([APPROVAL_WORKFLOW] if local else ["devsecops.yml"])
            runs = [
                r.id for w in workflows for r in platform.list_workflow_runs(w, status="waiting", limit=100)
            ]
        for rid in runs:
            for p in platform.list_pending_deployments(rid):
                rows.append(
                    {
                        "run": rid,
                        "environment": p.environment,
                        "wait_timer": p.wait_timer,
                        "waiting_since": p.wait_timer_started_at.isoformat()
                        if p.wait_timer_started_at
                        else None,
                        "can_approve": p.current_user_can_approve,
                        "reviewers": [r.login or str(r.id) for r in p.reviewers],
                    }
                )
    table = md_table(
        ["Run", "Environment", "Wait timer", "Waiting since", "You can approve", "Reviewers"],
        [
            [
                str(r["run"]),
                r["environment"],
                f"{r['wait_timer']} min",
                r["waiting_since"] or "",
                "yes" if r["can_approve"] else "no",
                ", ".join(r["reviewers"]) or "(any)",
            ]
            for r in rows
        ],
    )
    if args.json:
        Context(actions, app_dir).emit_json({"pending": rows})
    else:
        actions.info(table if rows else "nothing waits for review")
        if rows:
            first = rows[0]
            actions.info(
                f"approve with: devops-agent approve{' --local' if local else ''} --run {first['run']} "
                f"--env {first['environment']} --comment 'why'"
            )
    actions.set_output("pending", rows)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = argv_list(argv)

    def body() -> int:
        if not args or args[0] not in COMMANDS:
            raise ConfigError(
                f"unknown review command {args[0] if args else '(none)'!r}",
                "use `devops-agent approve`, `devops-agent reject` or `devops-agent pending`",
            )
        command, rest = args[0], args[1:]
        if command == "pending":
            return _pending(rest)
        return _do_review(command, rest)

    return run_command(body)
