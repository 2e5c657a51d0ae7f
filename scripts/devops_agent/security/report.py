"""What the gate tells people: job summary, annotations, JSON, step outputs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from devops_agent.core.gha import Actions, md_table
from devops_agent.security.policy import (
    BASELINED,
    BLOCKING,
    REPORTED,
    SUPPRESSED,
    GateDecision,
    ScannerStatus,
)
from devops_agent.security.sarif import IngestNote
from devops_agent.security.severity import Severity

MAX_ANNOTATIONS = 50  # GitHub shows at most 50 annotations per job (10 errors per step)
MAX_LISTED = 20
_ICON = {"ran": "✅ ran", "failed": "❌ failed", "disabled": "⏸️ disabled", "not-installed": "⚠️ not installed"}
_SEVERITIES = [s.label for s in sorted(Severity, reverse=True)]


def grouped_notes(notes: Sequence[IngestNote]) -> list[tuple[str, int, str]]:
    """(message, count, first location) — one row per distinct message per source."""
    groups: dict[tuple[str, str], list[str]] = {}
    for note in notes:
        groups.setdefault((note.source, note.message), []).append(note.where)
    return [(f"{src}: {msg}", len(wheres), wheres[0]) for (src, msg), wheres in groups.items()]


def render_summary(
    decision: GateDecision,
    scanners: Sequence[ScannerStatus],
    notes: Sequence[IngestNote],
    *,
    title: str,
    threshold: str,
    not_failures: int = 0,
) -> str:
    head = "✅ passed" if decision.passed else "❌ blocked"
    text = f"## 🛡️ Security gate — {title}: {head}\n\n"
    new = sum(1 for d in decision.decisions if d.new)
    text += (
        f"{len(decision.decisions)} finding(s), {new} new vs the baseline; blocking threshold "
        f"**{threshold}**"
        + (" (per-scanner overrides below)" if "per-scanner" in threshold else "")
        + ".\n\n"
    )
    if decision.reasons:
        text += "### Why it blocks\n\n" + "".join(f"- {r}\n" for r in decision.reasons) + "\n"
    counts = decision.counts()
    names = sorted({d.finding.scanner for d in decision.decisions})
    if names:
        rows = []
        for sev in _SEVERITIES:
            row = counts.get(sev, {})
            rows.append([f"**{sev}**", *[str(row.get(n, 0)) for n in names], str(sum(row.values()))])
        totals = [str(sum(counts.get(s, {}).get(n, 0) for s in _SEVERITIES)) for n in names]
        rows.append(["total", *totals, str(len(decision.decisions))])
        text += (
            "### Findings by severity and scanner\n\n" + md_table(["Severity", *names, "Total"], rows) + "\n"
        )
        states = Counter(d.state for d in decision.decisions)
        text += md_table(
            ["Blocking", "New (below threshold)", "Baselined", "Suppressed"],
            [[str(states[BLOCKING]), str(states[REPORTED]), str(states[BASELINED]), str(states[SUPPRESSED])]],
        )
        text += "\n"
    if scanners:
        text += "### Scanners\n\n" + md_table(
            ["Scanner", "Status", "Results", "Time", "Detail"],
            [
                [s.name, _ICON.get(s.status, s.status), str(s.results), f"{s.seconds:.1f}s", s.detail]
                for s in scanners
            ],
        )
        text += "\n"
    blocking = decision.by_state(BLOCKING)
    if blocking:
        rows = [
            [
                d.finding.severity.label,
                d.finding.scanner,
                f"`{d.finding.rule_id}`",
                d.finding.location(),
                _short(d.finding.message),
            ]
            for d in sorted(blocking, key=lambda d: (-d.finding.severity, d.finding.scanner))[:MAX_LISTED]
        ]
        text += "### Blocking findings\n\n" + md_table(
            ["Severity", "Scanner", "Rule", "Where", "Message"], rows
        )
        if len(blocking) > MAX_LISTED:
            text += f"\n…and {len(blocking) - MAX_LISTED} more (see the merged SARIF).\n"
        text += "\n"
    if decision.expired or decision.expiring or decision.unused_suppressions:
        rows = []
        for s in decision.expired:
            rows.append([f"`{s.id}`", s.owner, s.expires.isoformat(), "❌ expired", s.reason])
        for s in decision.expiring:
            rows.append([f"`{s.id}`", s.owner, s.expires.isoformat(), "⚠️ expires soon", s.reason])
        for s in decision.unused_suppressions:
            if s not in decision.expiring:
                rows.append(
                    [f"`{s.id}`", s.owner, s.expires.isoformat(), "unused (matches nothing)", s.reason]
                )
        text += "### Suppressions\n\n" + md_table(["Id", "Owner", "Expires", "State", "Reason"], rows) + "\n"
    if decision.stale_baseline:
        text += (
            f"### Baseline\n\n{len(decision.stale_baseline)} baseline fingerprint(s) match no current "
            "finding (fixed, moved or renamed); refresh with `--write-baseline`:\n\n"
        )
        text += md_table(
            ["Fingerprint", "Scanner", "Rule", "Path"],
            [
                [f"`{e.fingerprint}`", e.scanner, f"`{e.rule}`", e.path or ""]
                for e in decision.stale_baseline[:MAX_LISTED]
            ],
        )
        text += "\n"
    grouped = grouped_notes(notes)
    if grouped or not_failures:
        text += "### Could not interpret (reported, not dropped)\n\n"
        rows = [[msg, str(count), where] for msg, count, where in grouped[:MAX_LISTED]]
        if not_failures:
            rows.append(["results with kind pass/notApplicable (not findings)", str(not_failures), ""])
        text += md_table(["What", "Results", "First at"], rows)
        if len(grouped) > MAX_LISTED:
            text += f"\n…and {len(grouped) - MAX_LISTED} more kinds of note.\n"
    if counts:
        text += "\n```mermaid\npie showData title Findings by severity\n"
        for sev in _SEVERITIES:
            n = sum(counts.get(sev, {}).values())
            if n:
                text += f'  "{sev}" : {n}\n'
        text += "```\n"
    return text


def _short(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line[:160] + ("…" if len(line) > 160 else "")


def annotate(actions: Actions, decision: GateDecision) -> int:
    """Errors for blocking findings, warnings for new ones below the threshold. Returns the count."""
    emitted = 0
    ordered = sorted(
        (d for d in decision.decisions if d.state in {BLOCKING, REPORTED}),
        key=lambda d: (d.state != BLOCKING, -d.finding.severity),
    )
    for d in ordered:
        if emitted >= MAX_ANNOTATIONS:
            break
        f = d.finding
        path = f.path if f.path and not f.path.startswith(("/", "../")) and "://" not in f.path else None
        level = "error" if d.state == BLOCKING else "warning"
        actions.annotate(
            level,
            f"[{f.severity.label}] {_short(f.message)}",
            file=path,
            line=f.start_line if path else None,
            end_line=f.end_line if path and f.end_line and f.end_line != f.start_line else None,
            title=f"{f.scanner}: {f.rule_id}",
        )
        emitted += 1
    for s in decision.expired:
        actions.error(
            f"suppression `{s.id}` (owner {s.owner}) expired on {s.expires.isoformat()}: {s.reason}",
            title="devops-agent gate: expired suppression",
        )
    remaining = sum(1 for d in decision.decisions if d.state in {BLOCKING, REPORTED}) - emitted
    if remaining > 0:
        actions.notice(f"{remaining} more finding(s) not annotated; see the job summary and merged SARIF")
    return emitted


def decision_json(
    decision: GateDecision,
    scanners: Sequence[ScannerStatus],
    notes: Sequence[IngestNote],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "passed": decision.passed,
        "reasons": list(decision.reasons),
        "counts": decision.counts(),
        "states": dict(Counter(d.state for d in decision.decisions)),
        "new": sum(1 for d in decision.decisions if d.new),
        "scanners": [s.to_json() for s in scanners],
        "blocking": [d.finding.to_json() for d in decision.by_state(BLOCKING)],
        "expired_suppressions": [
            {"id": s.id, "owner": s.owner, "expires": s.expires.isoformat(), "reason": s.reason}
            for s in decision.expired
        ],
        "stale_baseline": [e.fingerprint for e in decision.stale_baseline],
        "notes": [{"source": n.source, "where": n.where, "message": n.message} for n in notes],
        **(extra or {}),
    }
