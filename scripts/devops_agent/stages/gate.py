"""gate stage: one security policy over SARIF from every scanner.

parse (SARIF files + scan.gate policy) → decide (security.policy.decide, pure) → act (summary,
annotations, merged SARIF, outputs, exit code). ``devops-agent scan`` runs the same gate on the
findings it has just produced.

Exit codes: 0 passed, 1 blocked (findings at/above the threshold, expired suppressions, failed
scanners), 2 bad input (malformed SARIF, config, baseline; nothing written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from devops_agent.core.config import config_path_for, load_config
from devops_agent.core.errors import ConfigError, GateFailed
from devops_agent.core.gha import Actions, get_bool_input, get_input, get_multiline_input
from devops_agent.security.policy import (
    SUPPRESSED,
    GateDecision,
    GatePolicy,
    ScannerStatus,
    decide,
    policy_from_config,
    write_baseline,
)
from devops_agent.security.report import annotate, decision_json, render_summary
from devops_agent.security.sarif import (
    IngestNote,
    IngestOptions,
    IngestResult,
    annotate_results,
    dumps_compact,
    ingest,
    load_log,
    merged_log,
    paused_gc,
    schema_errors,
)
from devops_agent.security.severity import THRESHOLDS, Severity


@dataclass(frozen=True)
class GateSettings:
    """Everything the gate needs, resolved from config + CLI/action inputs."""

    policy: GatePolicy
    threshold_label: str
    unknown_severity: Severity
    baseline_path: Path | None


def add_gate_options(parser: argparse.ArgumentParser, env: Mapping[str, str] | None = None) -> None:
    parser.add_argument(
        "--threshold",
        choices=THRESHOLDS,
        default=get_input("threshold", env) or None,
        help="block on findings at or above this severity (overrides scan.gate.threshold; "
        "action input `threshold`)",
    )
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        default=get_input("baseline", env) or None,
        help="baseline file (overrides scan.gate.baseline; action input `baseline`)",
    )
    parser.add_argument(
        "--write-baseline",
        action="store_true",
        default=get_bool_input("write-baseline", env, default=False),
        help="record every current (unsuppressed) finding in the baseline file, then gate",
    )


def gate_settings(
    gate: Mapping[str, Any], base_dir: Path, threshold: str | None, baseline: str | None
) -> GateSettings:
    unknown = gate.get("unknown_severity", "high")
    if unknown not in {"critical", "high", "medium", "low"}:
        raise ConfigError(
            f"{unknown!r} is not a severity",
            "use critical, high, medium or low",
            field="scan.gate.unknown_severity",
        )
    baseline_override = Path(baseline) if baseline else None
    policy = policy_from_config(
        gate, base_dir=base_dir, threshold_override=threshold, baseline_override=baseline_override
    )
    label = threshold or str(gate.get("threshold", "critical"))
    if gate.get("scanners"):
        label += " (per-scanner: " + ", ".join(f"{k} {v}" for k, v in sorted(gate["scanners"].items())) + ")"
    path = baseline_override or (base_dir / str(gate["baseline"]) if gate.get("baseline") else None)
    return GateSettings(policy, label, Severity.parse(str(unknown)), path)


def statuses_from_logs(logs: Sequence[tuple[str, Mapping[str, Any]]]) -> list[ScannerStatus]:
    """Scanner outcomes carried in the inputs: our scan's record, and runs that say they failed."""
    out: list[ScannerStatus] = []
    for source, log in logs:
        props = log.get("properties")
        ours = props.get("devopsAgent") if isinstance(props, dict) else None
        if isinstance(ours, dict):
            for item in ours.get("scanners") or []:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    out.append(
                        ScannerStatus(
                            item["name"],
                            str(item.get("status", "ran")),
                            str(item.get("detail", "")),
                            int(item.get("results", 0) or 0),
                            float(item.get("seconds", 0.0) or 0.0),
                        )
                    )
        for r, run in enumerate(log.get("runs") or []):
            for invocation in run.get("invocations") or []:
                if isinstance(invocation, dict) and invocation.get("executionSuccessful") is False:
                    name = run["tool"]["driver"].get("name") or "unknown"
                    texts = [
                        n.get("message", {}).get("text", "")
                        for n in invocation.get("toolExecutionNotifications") or []
                        if isinstance(n, dict) and isinstance(n.get("message"), dict)
                    ]
                    why = "; ".join(t for t in texts if t)[:300] or "no reason given"
                    out.append(
                        ScannerStatus(
                            str(name),
                            "failed",
                            f"{source} runs[{r}]: the tool reported executionSuccessful=false ({why})",
                        )
                    )
    return out


def evaluate(
    ingested: IngestResult,
    statuses: Sequence[ScannerStatus],
    settings: GateSettings,
    *,
    write_baseline_file: bool = False,
    actions: Actions | None = None,
) -> GateDecision:
    if write_baseline_file:
        if settings.baseline_path is None:
            raise ConfigError(
                "--write-baseline needs a baseline path",
                "set scan.gate.baseline in the config or pass --baseline FILE",
                field="--baseline",
            )
        first = decide(ingested.findings, settings.policy, statuses)
        keep = [d.finding for d in first.decisions if d.state != SUPPRESSED]
        changed = write_baseline(settings.baseline_path, keep)
        if actions is not None:
            state = "written" if changed else "unchanged"
            actions.info(f"baseline {state}: {settings.baseline_path} ({len(keep)} finding(s))")
        from devops_agent.security.policy import load_baseline

        settings = GateSettings(
            GatePolicy(
                threshold=settings.policy.threshold,
                scanner_thresholds=settings.policy.scanner_thresholds,
                suppressions=settings.policy.suppressions,
                baseline=load_baseline(settings.baseline_path),
                today=settings.policy.today,
            ),
            settings.threshold_label,
            settings.unknown_severity,
            settings.baseline_path,
        )
    return decide(ingested.findings, settings.policy, statuses)


def sarif_states(decision: GateDecision) -> dict[str, tuple[str, str | None]]:
    states: dict[str, tuple[str, str | None]] = {}
    for d in decision.decisions:
        justification = None
        if d.suppression is not None:
            s = d.suppression
            justification = f"{s.reason} (owner {s.owner}, expires {s.expires.isoformat()})"
        states[d.finding.fingerprint] = ("new" if d.new else "unchanged", justification)
    return states


def write_merged(
    path: Path,
    ingested: IngestResult,
    decision: GateDecision,
    statuses: Sequence[ScannerStatus],
    threshold: str,
) -> None:
    from devops_agent._version import __version__

    annotate_results(ingested, sarif_states(decision))
    doc = merged_log(
        ingested.logs,
        {
            "devopsAgent": {
                "version": __version__,
                "scanners": [s.to_json() for s in statuses],
                "gate": {
                    "passed": decision.passed,
                    "threshold": threshold,
                    "reasons": list(decision.reasons),
                },
            }
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(dumps_compact(doc) + b"\n")
    tmp.replace(path)


def publish(
    ctx: Context,
    decision: GateDecision,
    statuses: Sequence[ScannerStatus],
    ingested: IngestResult,
    *,
    title: str,
    threshold: str,
    sarif_out: Path | None,
    gating: bool = True,
) -> None:
    actions = ctx.actions
    notes: list[IngestNote] = ingested.notes
    actions.summary(
        render_summary(
            decision, statuses, notes, title=title, threshold=threshold, not_failures=ingested.not_failures
        )
    )
    if gating:
        annotate(actions, decision)
    for note in notes[:20]:
        actions.warning(note.render(), title="devops-agent gate: could not interpret")
    if len(notes) > 20:
        actions.warning(f"{len(notes) - 20} more interpretation notes; see the job summary")
    counts = decision.counts()
    actions.set_output("passed", decision.passed)
    actions.set_output("blocking", str(sum(1 for d in decision.decisions if d.state == "blocking")))
    actions.set_output("new", str(sum(1 for d in decision.decisions if d.new)))
    actions.set_output("counts", counts)
    actions.set_output("sarif", str(sarif_out) if sarif_out else "")
    if ctx.json_output:
        ctx.emit_json(
            decision_json(decision, statuses, notes, {"sarif": str(sarif_out) if sarif_out else None})
        )
    elif gating:
        actions.info(
            ("gate passed" if decision.passed else "gate BLOCKED: " + "; ".join(decision.reasons))
            + f" ({len(decision.decisions)} finding(s))"
        )


def _sarif_args(values: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for value in values:
        for part in value.splitlines():
            if part.strip():
                out.append(Path(part.strip()))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        with paused_gc():  # a short-lived command building large acyclic data: see paused_gc
            return gate_command(argv)

    return run_command(body)


def gate_command(argv: Sequence[str] | None) -> int:
    parser = new_parser("gate", "Apply the security policy gate to SARIF files from any scanner.")
    add_app_options(parser)
    parser.add_argument(
        "--sarif",
        metavar="FILE",
        nargs="+",
        default=get_multiline_input("sarif") or None,
        help="SARIF 2.1.0 files (action input `sarif`, one per line)",
    )
    add_gate_options(parser)
    parser.add_argument(
        "--sarif-out",
        metavar="FILE",
        default=get_input("sarif-out") or None,
        help="write the merged, annotated SARIF here (for code scanning upload)",
    )
    parser.add_argument(
        "--source-root",
        metavar="DIR",
        default=get_input("source-root") or ".",
        help="repository root the SARIF paths are relative to (default: .)",
    )
    parser.add_argument(
        "--validate-schema",
        action="store_true",
        default=get_bool_input("validate-schema", None, default=False),
        help="also check each input against the official SARIF 2.1.0 schema (slow on huge files); "
        "violations are reported as notes",
    )
    args = parser.parse_args(argv_list(argv))
    if not args.sarif:
        raise ConfigError("no SARIF file given", "pass --sarif FILE [FILE...]", field="--sarif")
    app_dir = resolve_app_dir(args.app)
    config_file = config_path_for(app_dir, args.config)
    gate_section: Mapping[str, Any] = {}
    if args.config or config_file.exists():
        gate_section = load_config(config_file).section("scan").get("gate") or {}
    settings = gate_settings(gate_section, app_dir, args.threshold, args.baseline)
    actions = Actions.from_env(stream=sys.stderr if args.json else None)
    ctx = Context(actions=actions, app_dir=app_dir, json_output=args.json)
    root = Path(args.source_root)
    options = IngestOptions(unknown_severity=settings.unknown_severity, source_root=root)
    ingested = IngestResult()
    logs = [(str(p), load_log(p)) for p in _sarif_args(args.sarif)]  # all parsed before any output
    for source, log in logs:
        if args.validate_schema:
            for problem in schema_errors(log):
                ingested.notes.append(IngestNote(source, "schema", f"not valid SARIF 2.1.0: {problem}"))
        ingested.extend(ingest(log, source=source, options=options))
    statuses = statuses_from_logs(logs)
    decision = evaluate(
        ingested, statuses, settings, write_baseline_file=args.write_baseline, actions=actions
    )
    sarif_out = Path(args.sarif_out) if args.sarif_out else None
    if sarif_out is not None:
        write_merged(sarif_out, ingested, decision, statuses, settings.threshold_label)
    publish(
        ctx,
        decision,
        statuses,
        ingested,
        title=f"{len(logs)} SARIF file(s)",
        threshold=settings.threshold_label,
        sarif_out=sarif_out,
    )
    return 0 if decision.passed else 1


def raise_if_blocked(decision: GateDecision) -> None:
    if not decision.passed:
        raise GateFailed(
            "security gate blocked: " + "; ".join(decision.reasons),
            "fix the findings, or accept them with a suppression (owner, reason, expires) or the "
            "baseline (`devops-agent gate --write-baseline`); see the job summary",
        )
