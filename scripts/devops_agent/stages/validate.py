"""validate stage: health checks + smoke tests on the deployed release; rollback on failure.

parse (ValidateInputs, settings) → decide (which release, which URL, canary or not: pure) →
act (HTTP checks with retries/backoff and an overall timeout → smoke commands → soak window).
On failure, when ``validate.rollback`` is true: the driver restores the last good release, the
restored release is validated again, and the time from the failed check to the healthy previous
release (time-to-restore) is recorded, shown and output. The stage then exits 1 — a rollback
is a failed pipeline — with the evidence (every attempt) in the job summary and in
``.devops-agent/deploy/<env>/validation-<digest>.json``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devops_agent.core.command import Context, add_app_options, argv_list, new_parser, run_command
from devops_agent.core.config import Config
from devops_agent.core.errors import ConfigError, GateFailed, StageFailed
from devops_agent.core.gha import Actions, get_bool_input, get_input, md_table
from devops_agent.deploy.base import Deployed, Release
from devops_agent.deploy.settings import check_url
from devops_agent.deploy.validation import Clock, Probe, ValidationReport, Validator
from devops_agent.stages.rollback import RollbackResult, perform_rollback, render_rollback


@dataclass(frozen=True)
class ValidateInputs:
    environment: str | None = None
    url: str | None = None
    rollback: bool | None = None  # None: validate.rollback


@dataclass(frozen=True)
class ValidateOutcome:
    environment: str
    release: Release
    driver: str
    report: ValidationReport
    canary_report: ValidationReport | None = None
    rollback: RollbackResult | None = None
    evidence_file: str | None = None

    @property
    def result(self) -> str:
        if self.report.passed and (self.canary_report is None or self.canary_report.passed):
            return "passed"
        if self.rollback is None:
            return "failed"
        return "rolled-back" if self.rollback.restored else "rollback-failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "environment": self.environment,
            "release": self.release.to_json(),
            "driver": self.driver,
            "canary": self.canary_report.to_json() if self.canary_report else None,
            "validation": self.report.to_json(),
            "rollback": self.rollback.to_json() if self.rollback else None,
            "time_to_restore_seconds": (
                round(self.rollback.ttr_seconds, 3)
                if self.rollback and self.rollback.ttr_seconds is not None
                else None
            ),
            "evidence_file": self.evidence_file,
        }


def choose_url(
    override: str | None, configured: str | None, deployed: Deployed | None, fallback: str | None
) -> str | None:
    """The base URL to validate: input override, validate.url, the driver's URL, deploy.url."""
    return override or configured or (deployed.url if deployed else None) or fallback


def execute_validate(
    app_dir: Path,
    config: Config,
    actions: Actions,
    inputs: ValidateInputs,
    *,
    run_id: str | None,
    probe: Probe | None = None,
    clock: Clock | None = None,
    env: Mapping[str, str] | None = None,
) -> ValidateOutcome:
    from devops_agent.deploy import make_driver
    from devops_agent.deploy.records import make_recorder
    from devops_agent.deploy.settings import deploy_settings, history_settings, validate_settings
    from devops_agent.deploy.validation import RealClock, RequestsProbe
    from devops_agent.stages.deploy import driver_context
    from devops_agent.stages.history import HistoryRow, append_history, seconds_text, utc_now

    env = dict(os.environ if env is None else env)
    settings = deploy_settings(config)
    vsettings = validate_settings(config)
    hsettings = history_settings(config)
    if inputs.url:
        check_url(inputs.url, "--url")
    if vsettings.empty:
        raise ConfigError(
            "nothing to validate: no checks and no smoke commands",
            "add validate.checks (e.g. - name: health\n    path: /healthz) or validate.smoke",
            field="validate.checks",
        )
    environment = inputs.environment or settings.environment
    want_rollback = vsettings.rollback if inputs.rollback is None else inputs.rollback
    recorder = make_recorder(app_dir, env)
    driver = make_driver(driver_context(app_dir, settings, environment, actions, env))
    status = driver.status()
    latest = recorder.latest(environment)
    live = status.live
    shown = status.canary or live
    release = shown.release if shown is not None else (latest.release if latest else None)
    if release is None:
        raise StageFailed(
            f"nothing is deployed to {environment!r}",
            "run `devops-agent deploy` first (or check --environment)",
        )
    if latest is not None and latest.release.digest == release.digest:
        release = latest.release
    own_probe = probe is None
    probe = probe or RequestsProbe()
    clock = clock or RealClock()
    entry = latest if latest is not None and latest.release.digest == release.digest else None
    run_id = run_id or (entry.run_id if entry is not None else None)
    if entry is None:
        entry = recorder.start(
            environment, release, run_id=run_id, driver=driver.name, description="validating"
        )
    validator = Validator(vsettings, probe, clock, app_dir, release.env(environment))
    canary_report: ValidationReport | None = None
    try:
        base_url = choose_url(inputs.url, vsettings.url, live, settings.url)
        if status.canary is not None and driver.supports_canary and vsettings.canary_percent:
            with actions.group(f"canary: {vsettings.canary_percent}% of checks to {status.canary.url}"):
                canary_report = validator.run(base_url, canary_url=status.canary.url, soak=False)
            if canary_report.passed:
                promoted = driver.promote_canary()
                actions.info(
                    f"canary passed: {promoted.deployed.release.version} is live on {promoted.deployed.url}"
                )
                base_url = choose_url(inputs.url, vsettings.url, promoted.deployed, settings.url)
        if canary_report is not None and not canary_report.passed:
            report = canary_report
        else:
            with actions.group(f"validate {release.version} at {base_url}"):
                report = validator.run(base_url)
        evidence_dir = driver_context(app_dir, settings, environment, actions, env).state_dir
        rollback: RollbackResult | None = None
        if report.passed:
            recorder.transition(
                entry,
                "success",
                description=f"validated in {report.seconds:.1f}s",
                url=base_url,
                validated=True,
                details={"validation_seconds": round(report.seconds, 3)},
            )
            append_history(
                app_dir,
                hsettings,
                [
                    HistoryRow(
                        utc_now(),
                        environment,
                        release.version,
                        release.ref,
                        "validated",
                        seconds_text(report.seconds),
                        run_id or entry.run_id or "",
                        f"{len(report.checks)} checks, {len(report.smoke)} smoke"
                        + (f", {report.soak_rounds} soak rounds" if report.soak_rounds else ""),
                    )
                ],
            )
        else:
            recorder.transition(
                entry, "failure", description=report.reason[:140], url=base_url, validated=False
            )
            append_history(
                app_dir,
                hsettings,
                [
                    HistoryRow(
                        utc_now(),
                        environment,
                        release.version,
                        release.ref,
                        "failed",
                        seconds_text(report.seconds),
                        run_id or entry.run_id or "",
                        report.reason[:160],
                    )
                ],
            )
            actions.error(
                f"validation of {release.version} ({release.short}) failed: {report.reason}", title="validate"
            )
            if want_rollback:
                target = recorder.last_good(environment, exclude=release.digest)
                started_at = report.failed_at if report.failed_at is not None else clock.monotonic()
                rollback = perform_rollback(
                    app_dir=app_dir,
                    config=config,
                    driver=driver,
                    recorder=recorder,
                    environment=environment,
                    failed=release,
                    target=target,
                    vsettings=vsettings,
                    probe=probe,
                    clock=clock,
                    started_at=started_at,
                    run_id=run_id,
                    actions=actions,
                    base_url_override=inputs.url or vsettings.url,
                    fallback_url=settings.url,
                    reason=report.reason,
                )
    finally:
        if own_probe and hasattr(probe, "close"):
            probe.close()
    outcome = ValidateOutcome(environment, release, driver.name, report, canary_report, rollback)
    evidence_dir.mkdir(parents=True, exist_ok=True)
    evidence = evidence_dir / f"validation-{release.short}.json"
    evidence.write_text(json.dumps(outcome.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return ValidateOutcome(environment, release, driver.name, report, canary_report, rollback, str(evidence))


# -- report -----------------------------------------------------------------------------------


def _check_rows(report: ValidationReport) -> list[list[str]]:
    rows = []
    for c in report.checks:
        last = c.attempts[-1] if c.attempts else None
        rows.append(
            [
                c.name,
                c.phase + (f" ({last.target})" if last and last.target != "live" else ""),
                f"`{c.url}`",
                str(len(c.attempts)),
                str(last.status) if last and last.status else "—",
                f"{last.elapsed_ms:.0f} ms" if last else "—",
                "✅ pass" if c.passed else "❌ " + "; ".join(last.problems if last else ()),
            ]
        )
    return rows


def render_report(report: ValidationReport, title: str) -> str:
    text = f"### {title}\n\n"
    if report.checks:
        text += md_table(
            ["Check", "Phase", "URL", "Attempts", "Status", "Latency", "Result"], _check_rows(report)
        )
    if report.smoke:
        rows = [
            [f"`{s.command}`", str(s.exit_code), f"{s.seconds:.1f}s", "✅ pass" if s.passed else "❌ fail"]
            for s in report.smoke
        ]
        text += "\n" + md_table(["Smoke command", "Exit", "Time", "Result"], rows)
        for s in report.smoke:
            if not s.passed and s.tail:
                text += (
                    f"\n<details><summary>output of <code>{s.command}</code></summary>\n\n"
                    f"```\n{s.tail}\n```\n</details>\n"
                )
    for note in report.notes:
        text += f"\n> [!NOTE]\n> {note}\n"
    return text


def mermaid(outcome: ValidateOutcome) -> str:
    r = outcome.release
    lines = ["```mermaid", "flowchart LR", f'  d["🚀 {r.version} {r.short}"]']
    if outcome.canary_report is not None:
        icon = "✅" if outcome.canary_report.passed else "❌"
        lines += [f'  c["{icon} canary"]', "  d --> c"]
        prev = "c"
    else:
        prev = "d"
    if outcome.canary_report is None or outcome.canary_report.passed:
        icon = "✅" if outcome.report.passed else "❌"
        lines += [f'  v["{icon} validate"]', f"  {prev} --> v"]
        prev = "v"
    rb = outcome.rollback
    if rb is not None:
        if rb.outcome is not None:
            restored = rb.outcome.deployed.release
            lines += [f'  r["↩️ rollback to {restored.version} {restored.short}"]', f"  {prev} --> r"]
            if rb.revalidation is not None:
                icon = "✅" if rb.revalidation.passed else "❌"
                ttr = f" TTR {rb.ttr_seconds:.2f}s" if rb.ttr_seconds is not None else ""
                lines += [f'  rv["{icon} re-validated{ttr}"]', "  r --> rv"]
        else:
            lines += ['  r["🔥 rollback failed"]', f"  {prev} --> r"]
    lines.append("```")
    return "\n".join(lines) + "\n"


def render_summary(outcome: ValidateOutcome) -> str:
    r = outcome.release
    heads = {
        "passed": "✅ passed",
        "failed": "❌ failed (no rollback)",
        "rolled-back": "↩️ failed — rolled back",
        "rollback-failed": "🔥 failed — rollback did not restore service",
    }
    text = f"## Validate {r.version} in {outcome.environment}: {heads[outcome.result]}\n\n"
    text += f"Digest `{r.ref}` · driver `{outcome.driver}` · {outcome.report.seconds:.2f}s\n\n"
    if outcome.rollback is not None and outcome.rollback.ttr_seconds is not None:
        text += (
            f"**Time to restore: {outcome.rollback.ttr_seconds:.2f}s** "
            "(from the failed check to the healthy previous release)\n\n"
        )
    if outcome.result != "passed":
        text += f"> [!CAUTION]\n> {outcome.report.reason}\n\n"
    text += mermaid(outcome) + "\n"
    if outcome.canary_report is not None:
        text += render_report(outcome.canary_report, "Canary phase") + "\n"
    if outcome.canary_report is None or outcome.canary_report.passed:
        text += render_report(outcome.report, "Checks") + "\n"
    if outcome.rollback is not None:
        text += render_rollback(outcome.rollback)
        if outcome.rollback.revalidation is not None:
            text += "\n" + render_report(
                outcome.rollback.revalidation, "Re-validation of the restored release"
            )
    if outcome.evidence_file:
        text += f"\nEvidence: `{outcome.evidence_file}`\n"
    return text


def publish(outcome: ValidateOutcome, ctx: Context) -> None:
    a = ctx.actions
    a.set_output("result", outcome.result)
    a.set_output("digest", outcome.release.ref)
    a.set_output("environment", outcome.environment)
    restored = (
        outcome.rollback.outcome.deployed.release.ref if outcome.rollback and outcome.rollback.outcome else ""
    )
    a.set_output("restored-digest", restored)
    ttr = outcome.rollback.ttr_seconds if outcome.rollback else None
    a.set_output("time-to-restore", "" if ttr is None else f"{ttr:.3f}")
    a.set_output("evidence-file", outcome.evidence_file or "")
    a.summary(render_summary(outcome))
    if ctx.json_output:
        ctx.emit_json(outcome.to_json())


def failure(outcome: ValidateOutcome) -> GateFailed:
    r = outcome.release
    if outcome.result == "rolled-back":
        assert outcome.rollback is not None
        assert outcome.rollback.outcome is not None
        restored = outcome.rollback.outcome.deployed.release
        ttr = outcome.rollback.ttr_seconds or 0.0
        return GateFailed(
            f"validation of {r.version} ({r.short}) failed: {outcome.report.reason}; "
            f"rolled back to {restored.version} ({restored.short}) in {ttr:.2f}s",
            "fix the release (evidence in the job summary) and deploy again",
        )
    if outcome.result == "rollback-failed":
        error = outcome.rollback.error if outcome.rollback else ""
        return GateFailed(
            f"validation of {r.version} failed ({outcome.report.reason}) "
            f"and the rollback did not restore service: {error}",
            "restore service by hand: devops-agent rollback --to <a known-good digest>",
        )
    return GateFailed(
        f"validation of {r.version} ({r.short}) failed: {outcome.report.reason}",
        "fix the release; enable validate.rollback to restore the last good release automatically",
    )


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        from devops_agent.stages.build import load_for

        parser = new_parser("validate", "Health checks and smoke tests; rolls back on failure.")
        add_app_options(parser)
        parser.add_argument(
            "--environment",
            default=get_input("environment", None) or None,
            help="environment (action input `environment`; default deploy.environment)",
        )
        parser.add_argument(
            "--url",
            default=get_input("url", None) or None,
            help="base URL to validate (action input `url`; default: the driver's, validate.url, deploy.url)",
        )
        rollback_raw = get_input("rollback", None)
        parser.add_argument(
            "--no-rollback",
            dest="rollback",
            action="store_false",
            default=get_bool_input("rollback", None, default=True) if rollback_raw else None,
            help="do not roll back on failure (action input `rollback: false`)",
        )
        args = parser.parse_args(argv_list(argv))
        app_dir, config = load_for(args.app, args.config)
        from devops_agent.promote.settings import config_for_environment

        config = config_for_environment(config, args.environment)  # production: promote.deploy
        actions = Actions.from_env(stream=sys.stderr if args.json else None)
        ctx = Context(actions=actions, app_dir=app_dir, json_output=args.json)
        run_id = os.environ.get("GITHUB_RUN_ID") or None
        outcome = execute_validate(
            app_dir, config, actions, ValidateInputs(args.environment, args.url, args.rollback), run_id=run_id
        )
        publish(outcome, ctx)
        if outcome.result != "passed":
            raise failure(outcome)
        return 0

    return run_command(body)


def pipeline_step(ctx: Any) -> Mapping[str, Any]:
    """validate in `devops-agent run`: checks on the staging release; rollback on failure."""
    outcome = execute_validate(ctx.app_dir, ctx.config, ctx.actions, ValidateInputs(), run_id=ctx.run_id)
    publish(outcome, Context(ctx.actions, ctx.app_dir))
    if outcome.result != "passed":
        raise failure(outcome)
    data = outcome.to_json()
    checks = len(outcome.report.checks)
    data["detail"] = f"{outcome.release.version}: {checks} checks passed in {outcome.report.seconds:.1f}s"
    return data
