"""promote stage: the digest that passed staging → production, behind every gate, recorded.

parse (PromoteInputs, PromoteSettings) → gates, in order, each failing closed:

1. staging: ``staging_passed`` over the state store and (in CI) GitHub Deployments — a digest
   without a passed staging validation record is refused (exit 1);
2. verify: ``verify_for_deploy`` re-checks digest, signature, provenance, SBOM (exit 1);
3. freeze: :mod:`devops_agent.promote.freeze` — blocked unless ``--override-freeze`` with a
   ``--reason`` (recorded);
4. approval: in CI the GitHub Environment holds the job until a required reviewer approves;
   promote refuses an environment without reviewers unless ``promote.auto`` is true. Locally
   ``devops-agent run`` stops here and prints the approve command.

→ act: deploy with the configured driver (``promote.deploy`` merged over ``deploy``), validate,
roll back on failure (the validate stage does both) → change record (P-ITIL-CHANGE) to the job
summary, the state store and the history file.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from devops_agent.core.command import (
    Context,
    add_app_options,
    add_dry_run,
    argv_list,
    new_parser,
    run_command,
)
from devops_agent.core.config import Config
from devops_agent.core.errors import ConfigError, DevopsAgentError, GateFailed
from devops_agent.core.gha import Actions, get_bool_input, get_input, md_table
from devops_agent.promote.change import (
    ChangeRecord,
    ReleaseRef,
    build_change_record,
    commits_between,
    render_markdown,
)
from devops_agent.promote.freeze import FreezeOutcome, decide, evaluate
from devops_agent.promote.freeze import render as render_freeze
from devops_agent.promote.settings import PromoteSettings, production_config, promote_settings
from devops_agent.promote.staging import (
    StagingRecord,
    StagingVerdict,
    describe_candidates,
    latest_passed,
    local_records,
    platform_records,
    staging_passed,
)

APPROVAL_WORKFLOW = "devops-agent run"  # the local "workflow" whose runs wait for approval


@dataclass(frozen=True)
class PromoteInputs:
    digest: str | None = None
    override_freeze: bool = False
    reason: str | None = None
    approver: str | None = None
    approval_comment: str = ""
    dry_run: bool = False


@dataclass(frozen=True)
class PromoteResult:
    environment: str
    digest: str  # sha256:<hex>
    version: str
    status: str  # promoted | would-promote | rolled-back | failed
    staging: StagingVerdict
    freeze: FreezeOutcome
    verification: Mapping[str, Any] = field(default_factory=dict)
    change: ChangeRecord | None = None
    url: str | None = None
    validation: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "digest": self.digest,
            "version": self.version,
            "status": self.status,
            "staging": {
                "passed": self.staging.passed,
                "reason": self.staging.reason,
                "record": self.staging.record.to_json() if self.staging.record else None,
            },
            "freeze": self.freeze.to_json(),
            "verification": {
                k: v for k, v in self.verification.items() if k in {"method", "digest", "verified"}
            },
            "change_record": self.change.to_json() if self.change else None,
            "url": self.url,
            "validation": dict(self.validation),
        }


# -- helpers -----------------------------------------------------------------------------------


def local_user(env: Mapping[str, str]) -> str:
    """Who is approving on this machine: DEVOPS_AGENT_APPROVER, else the login name."""
    if env.get("DEVOPS_AGENT_APPROVER"):
        return env["DEVOPS_AGENT_APPROVER"]
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): still record something honest
        return "local user"


def _platform(app_dir: Path, env: Mapping[str, str]) -> Any | None:
    """The GitHub platform when this invocation talks to GitHub, else None (local store only)."""
    from devops_agent.core.platform import PlatformSettings, get_platform

    if PlatformSettings.from_env(env, app_dir).kind != "github":
        return None
    return get_platform(app_dir, env)


def gather_staging(
    app_dir: Path, platform: Any | None, environment: str, digest: str | None
) -> list[StagingRecord]:
    records = local_records(app_dir, environment)
    if platform is not None:
        records += platform_records(platform, environment, digest=digest)
    return records


def _history(app_dir: Path, config: Config, rows: Sequence[tuple[str, str, str, str, str, str]]) -> None:
    """Rows of (environment, version, digest, status, run, notes) to the history file."""
    from devops_agent.deploy.settings import history_settings
    from devops_agent.stages.history import HistoryRow, append_history, utc_now

    append_history(
        app_dir,
        history_settings(config),
        [
            HistoryRow(utc_now(), env, version, digest, status, "", run, notes[:200])
            for env, version, digest, status, run, notes in rows
        ],
    )


def _verify(app_dir: Path, config: Config, digest: str) -> Mapping[str, Any]:
    """verify_for_deploy, failing closed: ANY error is a failed gate."""
    try:
        from devops_agent.stages.verify import verify_for_deploy

        return verify_for_deploy(app_dir, config, digest)
    except GateFailed:
        raise
    except Exception as exc:
        raise GateFailed(
            f"verification of {digest} could not run ({type(exc).__name__}: {exc}); refusing to promote",
            "make the build's evidence available (download the build and attestation artifacts) and retry",
        ) from None


def _previous_release(
    app_dir: Path, settings: PromoteSettings, platform: Any | None, digest_hex: str
) -> ReleaseRef | None:
    """The newest validated production release other than this digest (with its commit)."""
    for record in sorted(
        gather_staging(app_dir, platform, settings.environment, None), key=lambda r: r.at, reverse=True
    ):
        if record.digest == digest_hex:
            continue
        if staging_passed([record], record.digest, settings.environment).passed:
            at = datetime.fromtimestamp(record.at, tz=timezone.utc).isoformat() if record.at else None
            return ReleaseRef(f"sha256:{record.digest}", record.version or "unknown", record.commit, at)
    return None


def _commit_of(app_dir: Path, record: StagingRecord | None, digest_hex: str) -> str | None:
    if record is not None and record.commit:
        return record.commit
    from devops_agent.core.state import state_dir

    manifest = state_dir(app_dir) / "build-manifest.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if any(a.get("sha256") == digest_hex for a in data.get("artifacts") or []):
        return data.get("commit") or None
    return None


def _links(env: Mapping[str, str], url: str | None) -> list[tuple[str, str]]:
    links = []
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        links.append(
            ("workflow run", f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}")
        )
    if url:
        links.append(("production", url))
    return links


def _require_reviewers(platform: Any, settings: PromoteSettings) -> str:
    """In CI: the environment must have required reviewers unless promote.auto is set."""
    environment = platform.get_environment(settings.environment)
    reviewers = tuple(environment.reviewers) if environment is not None else ()
    if reviewers:
        names = ", ".join(r.login or str(r.id) for r in reviewers)
        return f"required reviewers of `{settings.environment}` ({names})"
    if settings.auto:
        return f"auto-promoted (promote.auto; `{settings.environment}` has no required reviewers)"
    raise GateFailed(
        f"the {settings.environment!r} environment has no required reviewers, "
        "so nobody approved this promotion",
        "add reviewers (`devops-agent environments apply environments.yml` with an admin token) or set "
        "promote.auto: true to promote without a human",
    )


def _record_change(
    app_dir: Path, environment: str, digest_hex: str, run_id: str | None, data: Mapping[str, Any]
) -> None:
    """Merge the promotion record into the production deployment row of the state store."""
    from devops_agent.core.state import StateStore

    with StateStore.for_app(app_dir) as store:
        for row in store.deployments(environment, limit=1000):
            if row.digest == digest_hex and row.run_id == run_id:
                details = {**dict(row.details), **dict(data)}
                earlier = row.details.get("approval")
                if isinstance(earlier, Mapping) and isinstance(data.get("approval"), Mapping):
                    details["approval"] = {**dict(earlier), **dict(data["approval"])}  # keep run, at
                store.update_deployment(row.id, row.status, details)
                return


def _write_change_files(app_dir: Path, record: ChangeRecord, run_id: str | None) -> Path:
    from devops_agent.core.state import state_dir

    folder = state_dir(app_dir) / "promote"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"change-{record.release.digest.removeprefix('sha256:')[:12]}-{run_id or 'manual'}"
    (folder / f"{stem}.json").write_text(
        json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    path = folder / f"{stem}.md"
    path.write_text(render_markdown(record), encoding="utf-8")
    return path


# -- the promotion -----------------------------------------------------------------------------


def execute_promotion(
    app_dir: Path,
    config: Config,
    actions: Actions,
    inputs: PromoteInputs,
    *,
    run_id: str | None,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
    platform: Any | None = None,
    approver: str | None = None,
    local: bool = False,
) -> PromoteResult:
    """All gates, then deploy + validate (+ rollback) + change record. GateFailed on refusal.

    ``platform``: the GitHub platform to read staging records and environment protection from;
    None picks it from the environment (GitHub in Actions, else the local store only);
    ``local=True`` uses the local state store only (``devops-agent run``, ``approve --local``).
    """
    env = dict(os.environ if env is None else env)
    owned = _platform(app_dir, env) if platform is None and not local else None
    try:
        return _promote(
            app_dir,
            config,
            actions,
            inputs,
            run_id=run_id,
            env=env,
            now=now,
            platform=platform or owned,
            approver=approver,
        )
    finally:
        if owned is not None:
            owned.close()


def _promote(
    app_dir: Path,
    config: Config,
    actions: Actions,
    inputs: PromoteInputs,
    *,
    run_id: str | None,
    env: dict[str, str],
    now: datetime | None,
    platform: Any | None,
    approver: str | None,
) -> PromoteResult:
    from devops_agent.deploy.base import normalize_digest
    from devops_agent.deploy.settings import deploy_settings, validate_settings

    settings = promote_settings(config)
    pconfig = production_config(config, settings)
    dsettings = deploy_settings(pconfig)  # ConfigError (exit 2) before anything happens
    vsettings = validate_settings(pconfig)
    now = now or datetime.now(timezone.utc)
    staging_env = settings.staging_environment

    # 1. staging
    records = gather_staging(app_dir, platform, staging_env, None)  # all: the refusal lists them
    if inputs.digest:
        digest_hex = normalize_digest(inputs.digest, field_name="--digest")
    else:
        newest = latest_passed(records, staging_env)
        if newest is None:
            raise GateFailed(
                f"no digest has passed validation in {staging_env}: nothing to promote "
                f"({describe_candidates(records, staging_env)})",
                "deploy and validate a release in staging first (devops-agent deploy + validate)",
            )
        digest_hex = newest.digest
    digest = f"sha256:{digest_hex}"
    verdict = staging_passed(records, digest_hex, staging_env)
    version = (verdict.record.version if verdict.record else None) or "unknown"
    if not verdict.passed:
        _history(
            app_dir,
            config,
            [(settings.environment, version, digest, "refused", run_id or "", verdict.reason)],
        )
        raise GateFailed(
            f"refusing to promote {digest}: it has no passed {staging_env} validation ({verdict.reason}). "
            f"{staging_env} has: {describe_candidates(records, staging_env)}",
            f"promote only a digest that was deployed to {staging_env} and validated there "
            "(the staging job's `digest` output)",
        )
    actions.info(f"staging: {verdict.reason}")

    # 2. verify (fail closed)
    with actions.group(f"verify {digest}"):
        verification = _verify(app_dir, config, digest)
    actions.info(f"verification: {verification.get('method', 'devops-agent verify')}")

    # 3. freeze windows
    who = (
        inputs.approver
        or approver
        or (local_user(env) if platform is None else env.get("GITHUB_ACTOR", "unknown"))
    )
    outcome = decide(
        evaluate(settings.freeze, now), override=inputs.override_freeze, reason=inputs.reason, by=who
    )
    actions.summary(f"## 🚦 Promote {version} to {settings.environment}\n\n" + render_freeze(outcome))
    if not outcome.allowed:
        names = ", ".join(a.window.name for a in outcome.decision.active)
        until = outcome.decision.until
        _history(
            app_dir,
            config,
            [(settings.environment, version, digest, "blocked", run_id or "", f"freeze: {names}")],
        )
        raise GateFailed(
            f"promotion of {version} ({digest[:19]}…) is blocked by the freeze window(s) {names}"
            + (f" until {until.isoformat()}" if until else ""),
            "wait until the freeze ends, or override with --override-freeze --reason 'why' "
            "(action inputs `override-freeze: true`, `override-reason`); the override is recorded",
        )
    for note in outcome.notes:
        actions.warning(note, title="promote")

    # 4. approval (CI: the environment's required reviewers)
    approved_by = who
    if platform is not None:
        approved_by = inputs.approver or _require_reviewers(platform, settings)

    previous = _previous_release(app_dir, settings, platform, digest_hex)
    commit = _commit_of(app_dir, verdict.record, digest_hex)
    commits, note = commits_between(app_dir, previous.commit if previous else None, commit)
    staging_json = {"reason": verdict.reason, "record": verdict.record.to_json() if verdict.record else None}
    release = ReleaseRef(digest, version, commit)

    def change(url: str | None) -> ChangeRecord:
        return build_change_record(
            app=config.app.name,
            environment=settings.environment,
            release=release,
            previous=previous,
            commits=commits,
            commits_note=note,
            approver=approved_by,
            approval_comment=inputs.approval_comment,
            driver=dsettings.driver,
            auto_rollback=vsettings.rollback,
            freeze=outcome.to_json(),
            staging=staging_json,
            verification=str(verification.get("method", "devops-agent verify")),
            links=_links(env, url),
        )

    if inputs.dry_run:
        record = change(None)
        actions.summary(render_markdown(record))
        return PromoteResult(
            settings.environment, digest, version, "would-promote", verdict, outcome, verification, record
        )

    # act: deploy + validate (+ automatic rollback) with the production settings
    from devops_agent.stages.deploy import DeployInputs, execute_deploy
    from devops_agent.stages.deploy import publish as publish_deploy
    from devops_agent.stages.validate import ValidateInputs, execute_validate
    from devops_agent.stages.validate import publish as publish_validate

    deployed = execute_deploy(
        app_dir,
        pconfig,
        actions,
        DeployInputs(environment=settings.environment, digest=digest, version=version),
        run_id=run_id,
        env=env,
    )
    publish_deploy(deployed, Context(actions, app_dir))
    validated = execute_validate(
        app_dir, pconfig, actions, ValidateInputs(environment=settings.environment), run_id=run_id, env=env
    )
    publish_validate(validated, Context(actions, app_dir))
    url = deployed.outcome.deployed.url if deployed.outcome else None
    record = change(url)
    status = "promoted" if validated.result == "passed" else validated.result
    path = _write_change_files(app_dir, record, run_id)
    _record_change(
        app_dir,
        settings.environment,
        digest_hex,
        run_id,
        {
            "change_record": record.to_json(),
            "approval": {"state": "approved", "by": approved_by, "comment": inputs.approval_comment},
            "freeze": outcome.to_json(),
            "commit": commit,
            "promotion": status,
        },
    )
    notes = f"risk {record.risk.level}; approved by {approved_by}; {note}"
    if outcome.override:
        notes += f"; FREEZE OVERRIDE by {outcome.override.by}: {outcome.override.reason}"
    _history(app_dir, config, [(settings.environment, version, digest, status, run_id or "", notes)])
    actions.summary(render_markdown(record) + f"\nChange record file: `{path.name}`\n")
    result = PromoteResult(
        settings.environment,
        digest,
        version,
        status,
        verdict,
        outcome,
        verification,
        record,
        url,
        validated.to_json(),
    )
    if status != "promoted":
        from devops_agent.stages.validate import failure

        raise failure(validated)
    return result


# -- local approvals (devops-agent run) --------------------------------------------------------


@dataclass(frozen=True)
class LocalRequest:
    """A local promotion waiting for `devops-agent approve --local`."""

    approval_run: int  # the local platform's run id (what --run takes)
    pipeline_run: str | None  # the `devops-agent run` id
    environment: str
    digest: str  # sha256:<hex>
    version: str

    def command(self, app_dir: Path) -> str:
        return (
            f"devops-agent approve --local --app {app_dir} --run {self.approval_run} "
            f"--env {self.environment} --comment 'why this may ship'"
        )


def request_local_approval(
    app_dir: Path, config: Config, settings: PromoteSettings, digest: str, version: str, run_id: str | None
) -> LocalRequest:
    """Record a run waiting on the production environment (local platform) + a pending deployment."""
    from devops_agent.core.state import StateStore
    from devops_agent.platform.local import LocalPlatform

    digest_hex = digest.removeprefix("sha256:")
    with StateStore.for_app(app_dir) as store:
        for row in store.deployments(settings.environment, limit=1000):
            approval = row.details.get("approval") or {}
            if row.digest == digest_hex and row.run_id == run_id and approval.get("state") == "waiting":
                return LocalRequest(int(approval["run"]), run_id, settings.environment, digest, version)
    platform = LocalPlatform.for_app(app_dir)
    try:
        approval_run = platform.record_workflow_run(APPROVAL_WORKFLOW, waiting_on=[settings.environment])
    finally:
        platform.close()
    details = {
        "approval": {
            "state": "waiting",
            "run": approval_run,
            "requested_at": datetime.now(timezone.utc).isoformat(),
        },
        "transitions": [
            {"status": "pending", "description": "waiting for approval", "at": datetime.now().timestamp()}
        ],
    }
    with StateStore.for_app(app_dir) as store:
        store.record_deployment(
            settings.environment,
            digest_hex,
            version=version,
            run_id=run_id,
            status="pending",
            details=details,
        )
    _history(
        app_dir,
        config,
        [
            (
                settings.environment,
                version,
                digest,
                "awaiting-approval",
                run_id or "",
                f"approval run {approval_run}",
            )
        ],
    )
    return LocalRequest(approval_run, run_id, settings.environment, digest, version)


def find_local_request(app_dir: Path, environment: str, approval_run: int | None) -> LocalRequest | None:
    """The waiting request of ``approval_run`` (None: the newest waiting one)."""
    from devops_agent.core.state import StateStore

    with StateStore.for_app(app_dir) as store:
        rows = store.deployments(environment, limit=1000)
    for row in rows:  # newest first
        approval = row.details.get("approval") or {}
        if approval.get("state") != "waiting":
            continue
        if approval_run is None or int(approval.get("run", -1)) == approval_run:
            return LocalRequest(
                int(approval["run"]),
                row.run_id,
                environment,
                f"sha256:{row.digest}",
                row.version or "unknown",
            )
    return None


def conclude_local_request(
    app_dir: Path, config: Config, request: LocalRequest, state: str, by: str, comment: str
) -> None:
    """Mark the waiting request approved or rejected (rejected: status failure, run failed)."""
    from devops_agent.core.state import StateStore

    digest_hex = request.digest.removeprefix("sha256:")
    with StateStore.for_app(app_dir) as store:
        for row in store.deployments(request.environment, limit=1000):
            if row.digest == digest_hex and row.run_id == request.pipeline_run:
                details = dict(row.details)
                details["approval"] = {
                    **dict(details.get("approval") or {}),
                    "state": state,
                    "by": by,
                    "comment": comment,
                    "at": datetime.now(timezone.utc).isoformat(),
                }
                status = row.status
                if state == "rejected":
                    status = "failure"
                    details["transitions"] = [
                        *list(details.get("transitions") or []),
                        {
                            "status": "failure",
                            "description": f"rejected by {by}: {comment}"[:140],
                            "at": datetime.now().timestamp(),
                        },
                    ]
                store.update_deployment(row.id, status, details)
        if state == "rejected" and request.pipeline_run:
            store.finish_run(request.pipeline_run, "failure", {"promote": f"rejected by {by}: {comment}"})
    _history(
        app_dir,
        config,
        [
            (
                request.environment,
                request.version,
                request.digest,
                state,
                request.pipeline_run or "",
                f"{by}: {comment}",
            )
        ],
    )


def local_needs_review(app_dir: Path, settings: PromoteSettings) -> bool:
    """Locally: a human approves unless promote.auto and the local environment has no reviewers."""
    if not settings.auto:
        return True
    from devops_agent.platform.local import LocalPlatform

    with LocalPlatform.for_app(app_dir) as platform:
        environment = platform.get_environment(settings.environment)
    return bool(environment is not None and environment.reviewers)


def pipeline_step(ctx: Any) -> Mapping[str, Any]:
    """promote in `devops-agent run`: stops before production (prints the approve command) unless
    `run --approve` (or promote.auto with no local reviewers); then promotes for real."""
    settings = promote_settings(ctx.config)
    validated = ctx.results.get("validate") or {}
    release = validated.get("release") or {}
    digest = release.get("digest")
    if not digest:
        raise GateFailed(
            "promote needs a release validated in staging in this run",
            "keep the deploy-staging and validate stages in the pipeline",
        )
    version = str(release.get("version") or "unknown")
    approve = bool(ctx.options.get("approve"))
    if not approve and local_needs_review(ctx.app_dir, settings):
        request = request_local_approval(ctx.app_dir, ctx.config, settings, digest, version, ctx.run_id)
        command = request.command(ctx.app_dir)
        ctx.actions.notice(
            f"{version} waits for approval before {settings.environment}. Approve with:\n  {command}"
        )
        ctx.actions.summary(
            f"## ⏸️ {settings.environment}: waiting for approval\n\n{version} `{digest}` passed staging.\n\n"
            f"```\n{command}\n```\n(or reject: `devops-agent reject --local "
            f"--run {request.approval_run} --comment '…'`)\n"
        )
        return {
            "status": "waiting",
            "approval_run": request.approval_run,
            "approve_command": command,
            "digest": digest,
            "detail": f"waiting for approval — {command}",
        }
    user = local_user(os.environ)
    result = execute_promotion(
        ctx.app_dir,
        ctx.config,
        ctx.actions,
        PromoteInputs(
            digest=digest,
            approver=user if approve else None,
            approval_comment="approved with `devops-agent run --approve`" if approve else "promote.auto",
        ),
        run_id=ctx.run_id,
        local=True,
    )
    data = result.to_json()
    data["detail"] = f"{version} → {settings.environment} ({result.status}, {result.url or ''})"
    return data


# -- CLI -----------------------------------------------------------------------------------------


def render_result(result: PromoteResult) -> str:
    rows = [
        ["Digest", f"`{result.digest}`"],
        ["Version", result.version],
        ["Staging", result.staging.reason],
        ["Freeze", result.freeze.status],
        ["Result", result.status],
        ["URL", result.url or ""],
    ]
    return f"## 🚀 Promote → {result.environment}: {result.status}\n\n" + md_table(["", ""], rows)


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        from devops_agent.stages.build import load_for

        parser = new_parser(
            "promote", "Promote a staging-validated digest to production (all gates, change record)."
        )
        add_app_options(parser)
        add_dry_run(parser)
        parser.add_argument(
            "--digest",
            default=get_input("digest") or None,
            help="sha256:… to promote (action input `digest`; default: the newest digest that passed "
            "staging)",
        )
        parser.add_argument(
            "--override-freeze",
            action="store_true",
            default=get_bool_input("override-freeze", None, default=False),
            help="promote during a freeze window (needs --reason; recorded) (action input `override-freeze`)",
        )
        parser.add_argument(
            "--reason",
            default=get_input("override-reason") or None,
            help="why the freeze is overridden (action input `override-reason`)",
        )
        parser.add_argument(
            "--artifact",
            metavar="DIR",
            default=get_input("artifact") or None,
            help="the build output of this run (`build --out`), restored with every digest re-checked; "
            "production never rebuilds (action input `artifact`)",
        )
        parser.add_argument(
            "--approver",
            default=get_input("approver") or None,
            help="who approved, for the change record (action input `approver`)",
        )
        parser.add_argument(
            "--comment",
            default=get_input("comment") or "",
            help="approval comment for the change record (action input `comment`)",
        )
        args = parser.parse_args(argv_list(argv))
        app_dir, config = load_for(args.app, args.config)
        actions = Actions.from_env(stream=sys.stderr if args.json else None)
        env = dict(os.environ)
        run_id = env.get("GITHUB_RUN_ID")
        if not run_id:
            from devops_agent.core.state import StateStore

            with StateStore.for_app(app_dir) as store:
                run_id = store.start_run()
        if args.artifact and not args.dry_run:
            from devops_agent.stages.deploy import adopt_build_output

            for restored in adopt_build_output(app_dir, Path(args.artifact)):
                actions.info(f"restored {restored} from the build output {args.artifact}")
        inputs = PromoteInputs(
            digest=args.digest,
            override_freeze=args.override_freeze,
            reason=args.reason,
            approver=args.approver,
            approval_comment=args.comment,
            dry_run=args.dry_run,
        )
        try:
            result = execute_promotion(app_dir, config, actions, inputs, run_id=run_id, env=env)
        except DevopsAgentError:
            actions.set_output("promoted", False)
            raise
        actions.set_output("promoted", result.status == "promoted")
        actions.set_output("digest", result.digest)
        actions.set_output("version", result.version)
        actions.set_output("url", result.url or "")
        actions.set_output("freeze", result.freeze.status)
        actions.set_output("change-record", result.change.to_json() if result.change else {})
        actions.summary(render_result(result))
        if args.json:
            Context(actions, app_dir).emit_json(result.to_json())
        return 0

    return run_command(body)


__all__ = [
    "ConfigError",
    "LocalRequest",
    "PromoteInputs",
    "PromoteResult",
    "conclude_local_request",
    "execute_promotion",
    "find_local_request",
    "main",
    "pipeline_step",
    "request_local_approval",
]
