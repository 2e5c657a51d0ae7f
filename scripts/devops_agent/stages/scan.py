"""scan stage: run the configured scanners, normalise to SARIF 2.1.0, then apply the gate.

parse (ScanInputs from CLI/action inputs + ``scan`` config) → decide (plan_scan: what runs,
what is disabled or missing — never skipped silently) → act (run each scanner into a fresh
directory, ingest, gate, write the merged SARIF, summary, annotations, outputs).

Exit codes: 0 gate passed and every enabled scanner ran; 1 the gate blocked or a scanner failed
(pip-audit's vulnerability source unreachable, semgrep missing...); 2 bad input.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devops_agent.core.command import Context, add_app_options, argv_list, new_parser, run_command
from devops_agent.core.config import Config
from devops_agent.core.errors import StageFailed
from devops_agent.core.gha import Actions, get_bool_input, get_input
from devops_agent.core.state import state_dir
from devops_agent.security.policy import GateDecision, ScannerStatus
from devops_agent.security.sarif import IngestOptions, IngestResult, ingest, paused_gc
from devops_agent.security.scanners import (
    CHECKOV_ENV,
    SEMGREP_ENV,
    SEMGREP_VERSION,
    ScannerPlan,
    ScannerRun,
    ensure_semgrep,
    find_tool,
    not_run,
    plan_scan,
    run_bandit,
    run_checkov,
    run_external,
    run_pip_audit,
    run_semgrep,
)
from devops_agent.stages.gate import (
    GateSettings,
    add_gate_options,
    evaluate,
    gate_settings,
    publish,
    raise_if_blocked,
    write_merged,
)

SCAN_DIR = "scan"
MERGED = "merged.sarif"


@dataclass
class ScanOutcome:
    runs: list[ScannerRun] = field(default_factory=list)
    ingested: IngestResult = field(default_factory=IngestResult)

    @property
    def statuses(self) -> list[ScannerStatus]:
        return [r.status for r in self.runs]

    @property
    def failed(self) -> list[ScannerStatus]:
        return [s for s in self.statuses if s.status == "failed"]


def repository_root(app_dir: Path) -> Path:
    """The nearest ancestor holding ``.git`` (SARIF paths become relative to it), else app_dir."""
    for candidate in (app_dir, *app_dir.parents):
        if (candidate / ".git").exists():
            return candidate
    return app_dir


def path_prefix(app_dir: Path) -> tuple[Path, str]:
    root = repository_root(app_dir)
    rel = app_dir.relative_to(root).as_posix()
    return root, "" if rel == "." else rel


def tool_lookup(
    env: Mapping[str, str], *, install_semgrep: bool = False, semgrep_wanted: bool = True
) -> dict[str, tuple[str | None, str | None]]:
    semgrep = find_tool("semgrep", SEMGREP_ENV, env)
    if semgrep[0] is None and semgrep[1] is None and install_semgrep and semgrep_wanted:
        semgrep = (ensure_semgrep(env), None)
    return {"semgrep": semgrep, "checkov": find_tool("checkov", CHECKOV_ENV, env)}


def run_scanners(
    plans: Sequence[ScannerPlan],
    app_dir: Path,
    actions: Actions,
    env: Mapping[str, str],
    *,
    unknown_severity: Any,
    keep_dir: Path,
) -> ScanOutcome:
    root, prefix = path_prefix(app_dir)
    outcome = ScanOutcome()
    # Read the external SARIF first: a malformed file is bad input (exit 2) before anything changed.
    external = {p.name: run_external(p, app_dir) for p in plans if p.action == "run" and p.name == "sarif"}
    if keep_dir.exists():
        shutil.rmtree(keep_dir)  # a fresh directory per scan: stale reports can never be read
    keep_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="devops-agent-scan-") as tmp:
        work = Path(tmp)
        for plan in plans:
            if plan.action != "run":
                outcome.runs.append(not_run(plan))
                continue
            with actions.group(f"scan: {plan.name}"):
                if plan.name == "sarif":
                    for rel, log in external[plan.name]:
                        result = ingest(
                            log,
                            source=rel,
                            options=IngestOptions(unknown_severity=unknown_severity, source_root=root),
                        )
                        outcome.ingested.extend(result)
                    count = sum(1 for _ in plan.files)
                    outcome.runs.append(
                        ScannerRun(
                            ScannerStatus("sarif", "ran", f"{count} file(s): " + ", ".join(plan.files))
                        )
                    )
                    continue
                scratch = work / plan.name
                scratch.mkdir()
                runner = {
                    "bandit": run_bandit,
                    "semgrep": run_semgrep,
                    "pip-audit": run_pip_audit,
                    "checkov": run_checkov,
                }[plan.name]
                run = runner(plan, app_dir, scratch, env)
                outcome.runs.append(run)
                for raw in run.raw_files:
                    if raw.exists():
                        shutil.copy2(raw, keep_dir / raw.name)
                if run.log is None:
                    actions.error(
                        f"{plan.name}: {run.status.detail}", title=f"devops-agent scan: {plan.name} failed"
                    )
                    continue
                _rebase(run.log, prefix)
                outcome.ingested.extend(
                    ingest(
                        run.log,
                        source=plan.name,
                        options=IngestOptions(
                            unknown_severity=unknown_severity, source_root=root, scanner=plan.name
                        ),
                    )
                )
                actions.info(f"{plan.name}: {run.status.results} result(s) in {run.status.seconds:.1f}s")
    return outcome


def _rebase(log: dict[str, Any], prefix: str) -> None:
    """Scanner paths are relative to the app directory; make them repository-relative."""
    for run in log.get("runs") or []:
        for result in run.get("results") or []:
            for loc in result.get("locations") or []:
                art = (loc.get("physicalLocation") or {}).get("artifactLocation")
                if not isinstance(art, dict) or not isinstance(art.get("uri"), str):
                    continue
                uri = art["uri"]
                while uri.startswith("./"):
                    uri = uri[2:]
                if prefix and not uri.startswith("/") and "://" not in uri:
                    uri = f"{prefix}/{uri}"
                art["uri"] = uri
                art.pop("uriBaseId", None)


@dataclass(frozen=True)
class ScanResult:
    outcome: ScanOutcome
    decision: GateDecision
    settings: GateSettings
    sarif: Path


def execute_scan(
    config: Config,
    app_dir: Path,
    actions: Actions,
    *,
    env: Mapping[str, str] | None = None,
    sarif_out: Path | None = None,
    threshold: str | None = None,
    baseline: str | None = None,
    write_baseline_file: bool = False,
    install_semgrep: bool = False,
) -> ScanResult:
    env = dict(os.environ if env is None else env)
    scan = config.section("scan")
    settings = gate_settings(scan.get("gate") or {}, app_dir, threshold, baseline)
    wanted = (scan.get("semgrep") or {}).get("enabled", True) is not False
    tools = tool_lookup(env, install_semgrep=install_semgrep, semgrep_wanted=wanted)
    plans = plan_scan(scan, app_dir, tools=tools)
    keep = state_dir(app_dir) / SCAN_DIR
    outcome = run_scanners(
        plans, app_dir, actions, env, unknown_severity=settings.unknown_severity, keep_dir=keep
    )
    decision = evaluate(
        outcome.ingested, outcome.statuses, settings, write_baseline_file=write_baseline_file, actions=actions
    )
    target = sarif_out or keep / MERGED
    write_merged(target, outcome.ingested, decision, outcome.statuses, settings.threshold_label)
    return ScanResult(outcome, decision, settings, target)


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        with paused_gc():  # a short-lived command building large acyclic data: see paused_gc
            return scan_command(argv)

    return run_command(body)


def scan_command(argv: Sequence[str] | None) -> int:
    from devops_agent.stages.build import load_for

    parser = new_parser("scan", "Run the security scanners, write merged SARIF, apply the policy gate.")
    add_app_options(parser)
    parser.add_argument(
        "--sarif-out",
        metavar="FILE",
        default=get_input("sarif-out") or None,
        help="merged SARIF path (action input `sarif-out`; default <app>/.devops-agent/scan/merged.sarif)",
    )
    parser.add_argument(
        "--no-gate",
        action="store_true",
        default=not get_bool_input("gate", None, default=True),
        help="only scan and write SARIF; exit 1 only when a scanner failed (action input `gate: false`)",
    )
    parser.add_argument(
        "--install-semgrep",
        action="store_true",
        default=get_bool_input("install-semgrep", None, default=False),
        help=f"when semgrep is not found, install semgrep=={SEMGREP_VERSION} into its own virtualenv "
        "(in the runner's tool cache) first (action input `install-semgrep`)",
    )
    add_gate_options(parser)
    args = parser.parse_args(argv_list(argv))
    app_dir, config = load_for(args.app, args.config)
    actions = Actions.from_env(stream=sys.stderr if args.json else None)
    ctx = Context(actions=actions, app_dir=app_dir, json_output=args.json)
    result = execute_scan(
        config,
        app_dir,
        actions,
        sarif_out=Path(args.sarif_out) if args.sarif_out else None,
        threshold=args.threshold,
        baseline=args.baseline,
        write_baseline_file=args.write_baseline,
        install_semgrep=args.install_semgrep,
    )
    publish(
        ctx,
        result.decision,
        result.outcome.statuses,
        result.outcome.ingested,
        title=config.app.name,
        threshold=result.settings.threshold_label,
        sarif_out=result.sarif,
        gating=not args.no_gate,
    )
    if args.no_gate:
        return 1 if result.outcome.failed else 0
    return 0 if result.decision.passed else 1


def pipeline_step(ctx: Any) -> Mapping[str, Any]:
    """`devops-agent run`: scan, then gate; a blocked gate or failed scanner stops the pipeline."""
    # `devops-agent run` provisions a missing semgrep (pinned, own virtualenv in the user's cache)
    # so the pipeline works on a fresh machine; `run --no-install-tools` turns that off.
    install = not ctx.options.get("no_install_tools", False)
    result = execute_scan(ctx.config, ctx.app_dir, ctx.actions, install_semgrep=install)
    publish(
        Context(ctx.actions, ctx.app_dir),
        result.decision,
        result.outcome.statuses,
        result.outcome.ingested,
        title=ctx.config.app.name,
        threshold=result.settings.threshold_label,
        sarif_out=result.sarif,
    )
    raise_if_blocked(result.decision)
    if result.outcome.failed:  # the gate already blocks on failed scanners; belt and braces
        raise StageFailed("a scanner failed: " + "; ".join(s.detail for s in result.outcome.failed))
    counts = result.decision.counts()
    total = len(result.decision.decisions)
    ran = [s.name for s in result.outcome.statuses if s.status == "ran"]
    return {
        "passed": True,
        "sarif": str(result.sarif),
        "counts": counts,
        "scanners": [s.to_json() for s in result.outcome.statuses],
        "detail": f"{total} finding(s), none blocking; ran: {', '.join(ran) or 'none'}",
    }
