"""rollback stage: restore the last good release of an environment and re-validate it.

``devops-agent rollback`` does by hand what ``validate`` does automatically on a failed check:
pick the target (``--to DIGEST`` or the newest validated release other than the current one),
print the plan, make the driver restore it, re-validate it, and record the time-to-restore.
Rolling back an environment other than ``deploy.environment`` (e.g. production) needs ``--yes``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from devops_agent.core.errors import ConfigError, DevopsAgentError, GateFailed, StageFailed
from devops_agent.core.gha import Actions, get_bool_input, get_input, md_table
from devops_agent.deploy.base import DeployOutcome, Driver, Release, normalize_digest
from devops_agent.deploy.records import DeploymentEntry, DeploymentRecorder
from devops_agent.deploy.settings import ValidateSettings
from devops_agent.deploy.validation import Clock, Probe, ValidationReport, Validator


@dataclass(frozen=True)
class RollbackResult:
    environment: str
    failed: Release | None
    target: Release | None  # what was asked for (None: the driver's own previous)
    outcome: DeployOutcome | None
    revalidation: ValidationReport | None
    ttr_seconds: float | None
    error: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def restored(self) -> bool:
        return (
            self.outcome is not None
            and not self.error
            and (self.revalidation is None or self.revalidation.passed)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "failed": self.failed.to_json() if self.failed else None,
            "target": self.target.to_json() if self.target else None,
            "outcome": self.outcome.to_json() if self.outcome else None,
            "revalidation": self.revalidation.to_json() if self.revalidation else None,
            "time_to_restore_seconds": None if self.ttr_seconds is None else round(self.ttr_seconds, 3),
            "restored": self.restored,
            "error": self.error,
            "notes": list(self.notes),
        }


def perform_rollback(
    *,
    app_dir: Path,
    config: Config,
    driver: Driver,
    recorder: DeploymentRecorder,
    environment: str,
    failed: Release | None,
    target: Release | None,
    vsettings: ValidateSettings,
    probe: Probe,
    clock: Clock,
    started_at: float,
    run_id: str | None,
    actions: Actions,
    base_url_override: str | None = None,
    fallback_url: str | None = None,
    reason: str = "",
) -> RollbackResult:
    """Restore ``target`` (or the driver's previous), re-validate, record; TTR from ``started_at``.

    ``started_at`` is ``clock.monotonic()`` of the failure (the failed check) or of the request.
    Never raises for an operational failure: the result carries ``error`` so the caller can
    report evidence before exiting 1.
    """
    from devops_agent.deploy.settings import history_settings
    from devops_agent.stages.history import HistoryRow, append_history, seconds_text, utc_now

    notes: list[str] = []
    if target is None:
        notes.append(
            "no other validated release is recorded for this environment: restoring the release "
            "the driver kept as previous"
        )
    try:
        with actions.group(
            f"rollback {environment} to {target.version if target else 'the previous release'}"
        ):
            outcome = driver.rollback(target, failed=failed)
    except DevopsAgentError as exc:
        return RollbackResult(environment, failed, target, None, None, None, exc.render(), tuple(notes))
    restored = outcome.deployed.release
    revalidation: ValidationReport | None = None
    if vsettings.revalidate and not vsettings.empty:
        base = base_url_override or outcome.deployed.url or fallback_url
        validator = Validator(vsettings, probe, clock, app_dir, restored.env(environment))
        with actions.group(f"re-validate {restored.version} at {base}"):
            revalidation = validator.run(base, soak=False, phase="revalidate")
    ttr = clock.monotonic() - started_at
    ok = revalidation is None or revalidation.passed
    entry: DeploymentEntry = recorder.start(
        environment,
        restored.with_run(run_id),
        run_id=run_id,
        driver=driver.name,
        description=f"rollback to {restored.version} ({restored.short})",
    )
    recorder.transition(
        entry,
        "success" if ok else "failure",
        description=(
            f"restored in {ttr:.2f}s" + ("; re-validated" if revalidation is not None else "")
            if ok
            else f"rollback re-validation failed: {revalidation.reason if revalidation else ''}"[:140]
        ),
        url=outcome.deployed.url,
        validated=ok,
        details={
            "rollback_of": failed.ref if failed else None,
            "ttr_seconds": round(ttr, 3),
            "reason": reason[:300],
            "action": "rolled-back",
        },
    )
    append_history(
        app_dir,
        history_settings(config),
        [
            HistoryRow(
                utc_now(),
                environment,
                restored.version,
                restored.ref,
                "rolled-back" if ok else "rollback-failed",
                seconds_text(ttr, ttr=True),
                run_id or "",
                (f"from {failed.version} `{failed.short}`" if failed else "")
                + (f": {reason}" if reason else ""),
            )
        ],
    )
    error = (
        ""
        if ok
        else f"the restored release failed re-validation: {revalidation.reason if revalidation else ''}"
    )
    return RollbackResult(
        environment, failed, target, outcome, revalidation, ttr, error, (*notes, *outcome.notes)
    )


def render_rollback(result: RollbackResult) -> str:
    if result.outcome is None:
        return f"### 🔥 Rollback of {result.environment} failed\n\n```\n{result.error}\n```\n"
    restored = result.outcome.deployed.release
    icon = "↩️" if result.restored else "🔥"
    rows = [
        ["Restored release", f"{restored.version} `{restored.ref}`"],
        [
            "Replaced (failed) release",
            f"{result.failed.version} `{result.failed.ref}`" if result.failed else "—",
        ],
        ["URL", result.outcome.deployed.url or "—"],
        [
            "Re-validated",
            "—"
            if result.revalidation is None
            else ("✅ passed" if result.revalidation.passed else "❌ failed"),
        ],
        ["**Time to restore**", f"**{result.ttr_seconds:.2f}s**" if result.ttr_seconds is not None else "—"],
    ]
    text = f"### {icon} Rollback of {result.environment}\n\n" + md_table(["", ""], rows)
    for note in result.notes:
        text += f"\n> [!NOTE]\n> {note}\n"
    if result.error:
        text += f"\n> [!CAUTION]\n> {result.error}\n"
    return text


# -- the command -------------------------------------------------------------------------------


def find_release(recorder: Any, environment: str, digest: str) -> Release | None:
    """A release recorded for ``environment`` with this digest (to know its version/artifact)."""
    entries = getattr(recorder, "entries", None)
    if entries is None:
        return None
    for entry in entries(environment, limit=1000):
        if entry.release.digest == digest:
            found: Release = entry.release
            return found
    return None


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        from devops_agent.deploy import make_driver
        from devops_agent.deploy.records import LocalRecorder, make_recorder
        from devops_agent.deploy.settings import deploy_settings, history_settings, validate_settings
        from devops_agent.deploy.validation import RealClock, RequestsProbe
        from devops_agent.stages.build import load_for
        from devops_agent.stages.deploy import driver_context

        parser = new_parser(
            "rollback", "Roll an environment back to its last good release and re-validate it."
        )
        add_app_options(parser)
        add_dry_run(parser)
        parser.add_argument(
            "--environment",
            default=get_input("environment", None) or None,
            help="environment (action input `environment`; default deploy.environment)",
        )
        parser.add_argument(
            "--to",
            dest="to",
            default=get_input("to", None) or None,
            help="digest to restore (action input `to`; default: the last validated release)",
        )
        parser.add_argument(
            "--yes",
            action="store_true",
            default=get_bool_input("yes", None, default=False),
            help="confirm rolling back an environment other than deploy.environment (e.g. production)",
        )
        args = parser.parse_args(argv_list(argv))
        app_dir, config = load_for(args.app, args.config)
        from devops_agent.promote.settings import config_for_environment

        staging = deploy_settings(config).environment  # rolling back any other one needs --yes
        config = config_for_environment(config, args.environment)  # production: promote.deploy
        settings = deploy_settings(config)
        vsettings = validate_settings(config)
        history_settings(config)
        environment = args.environment or settings.environment
        to = normalize_digest(args.to, field_name="--to") if args.to else None
        actions = Actions.from_env(stream=sys.stderr if args.json else None)
        env = dict(os.environ)
        recorder = make_recorder(app_dir, env)
        driver = make_driver(driver_context(app_dir, settings, environment, actions, env))
        latest = recorder.latest(environment)
        current = driver.current()
        failed = current.release if current else (latest.release if latest else None)
        target: Release | None
        if to is not None:
            target = find_release(LocalRecorder(app_dir), environment, to) or Release(
                to, "unknown", image=settings.image
            )
        else:
            target = recorder.last_good(environment, exclude=failed.digest if failed else None)
        plan = (
            f"rollback {environment} ({settings.driver}): "
            f"{failed.version + ' ' + failed.short if failed else 'nothing live'} → "
            f"{target.version + ' ' + target.short if target else 'the previous release the driver keeps'}"
        )
        actions.info(plan)
        if args.dry_run:
            if args.json:
                Context(actions, app_dir).emit_json({"plan": plan, "dry_run": True})
            return 0
        if environment != staging and not args.yes:
            raise ConfigError(
                f"rolling back {environment!r} (not the staging environment "
                f"{settings.environment!r}) needs confirmation",
                "re-run with --yes (action input `yes: true`) after reading the plan above",
                field="--yes",
            )
        if failed is not None and target is not None and failed.digest == target.digest:
            raise StageFailed(
                f"{target.ref} is already live in {environment}",
                "nothing to roll back; pass --to another digest",
            )
        clock = RealClock()
        probe = RequestsProbe()
        try:
            result = perform_rollback(
                app_dir=app_dir,
                config=config,
                driver=driver,
                recorder=recorder,
                environment=environment,
                failed=failed,
                target=target,
                vsettings=vsettings,
                probe=probe,
                clock=clock,
                started_at=clock.monotonic(),
                run_id=env.get("GITHUB_RUN_ID") or f"rollback-{int(time.time())}",
                actions=actions,
                base_url_override=vsettings.url,
                fallback_url=settings.url,
                reason="manual rollback",
            )
        finally:
            probe.close()
        actions.set_output("result", "rolled-back" if result.restored else "rollback-failed")
        actions.set_output("digest", result.outcome.deployed.release.ref if result.outcome else "")
        actions.set_output(
            "time-to-restore", "" if result.ttr_seconds is None else f"{result.ttr_seconds:.3f}"
        )
        actions.summary(render_rollback(result))
        if args.json:
            Context(actions, app_dir).emit_json(result.to_json())
        if not result.restored:
            raise GateFailed(
                f"rollback of {environment} did not restore a healthy release: {result.error}",
                "inspect the evidence above; deploy a known-good digest explicitly",
            )
        return 0

    return run_command(body)
