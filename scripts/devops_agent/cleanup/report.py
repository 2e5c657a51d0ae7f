"""One report for all targets: a JSON document and a markdown job summary."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from devops_agent.cleanup.act import Outcome
from devops_agent.cleanup.model import Plan
from devops_agent.core.gha import md_table

REPORT_VERSION = 1
_LIST_LIMIT = 50


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _reason_kind(reason: str) -> str:
    """A reason without its particulars (digests, numbers), to count kept items by kind."""
    reason = re.sub(r"\b(sha256:)?[0-9a-f]{12,64}\b", "<digest>", reason)
    return re.sub(r"(#|run )\d+", r"\1N", reason)


def build_report(
    plan: Plan,
    outcomes: Sequence[Outcome],
    *,
    executed: bool,
    requests: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The JSON report. Without ``executed`` every deletion has status ``planned``."""
    status_of = {(o.deletion.target, o.deletion.id, o.deletion.package): o for o in outcomes}
    targets = []
    totals: Counter[str] = Counter()
    for target in plan.targets:
        rows = []
        counts: Counter[str] = Counter()
        freed = 0
        for deletion in target.deletions:
            outcome = status_of.get((deletion.target, deletion.id, deletion.package))
            status = outcome.status if outcome else ("not-attempted" if executed else "planned")
            counts[status] += 1
            if status in ("deleted", "planned"):
                freed += deletion.bytes
            row = deletion.to_json()
            row["status"] = status
            if outcome is not None and outcome.error:
                row["error"] = outcome.error
            rows.append(row)
        kept_reasons = Counter(
            k.reason.split(" (")[0] if "pull request #" not in k.reason else "open pull request"
            for k in target.kept
        )
        targets.append(
            {
                "target": target.target,
                "scope": target.scope,
                "skipped": target.skipped,
                "planned": len(target.deletions),
                "counts": dict(sorted(counts.items())),
                "kept": len(target.kept),
                "kept_reasons": dict(kept_reasons.most_common()),
                "bytes_freed": freed,
                "deletions": rows,
            }
        )
        totals["planned"] += len(target.deletions)
        totals["kept"] += len(target.kept)
        totals["bytes_freed"] += freed
        for key, value in counts.items():
            if key != "planned":
                totals[key] += value
    return {
        "version": REPORT_VERSION,
        "mode": "execute" if executed else "dry-run",
        "generated_at": plan.now.isoformat(),
        "totals": dict(sorted(totals.items())),
        "requests": dict(requests or {}),
        "targets": targets,
    }


def render_markdown(report: Mapping[str, Any]) -> str:
    mode = report["mode"]
    totals = report["totals"]
    done = totals.get("deleted", 0) + totals.get("already-gone", 0)
    if mode == "dry-run":
        headline = (
            f"## Cleanup (dry run): {totals.get('planned', 0)} item(s) would be deleted, "
            f"{human_bytes(totals.get('bytes_freed', 0))} freed — nothing was changed"
        )
    else:
        headline = (
            f"## Cleanup: {done} of {totals.get('planned', 0)} item(s) deleted, "
            f"{human_bytes(totals.get('bytes_freed', 0))} freed"
        )
        if totals.get("failed", 0) or totals.get("not-attempted", 0):
            headline += f" — {totals.get('failed', 0)} failed, {totals.get('not-attempted', 0)} not attempted"
    rows = []
    for t in report["targets"]:
        c = t["counts"]
        rows.append(
            [
                t["target"],
                t["scope"],
                str(t["planned"]),
                str(c.get("deleted", 0)),
                str(c.get("already-gone", 0)),
                str(c.get("failed", 0) + c.get("not-attempted", 0)),
                str(t["kept"]),
                human_bytes(t["bytes_freed"]),
                t["skipped"] or "",
            ]
        )
    parts = [
        headline,
        "",
        md_table(
            ["target", "scope", "planned", "deleted", "already gone", "failed", "kept", "freed", "skipped"],
            rows,
        ),
    ]
    freed = [(t["target"], t["scope"], t["bytes_freed"]) for t in report["targets"] if t["bytes_freed"] > 0]
    if len(freed) > 1:
        parts += ["", "```mermaid", f"pie title {'Bytes to free' if mode == 'dry-run' else 'Bytes freed'}"]
        for target, scope, size in freed:
            label = f"{target} {scope}".replace('"', "'")
            parts.append(f'    "{label}" : {size}')
        parts.append("```")
    requests = report.get("requests") or {}
    if requests:
        parts += ["", "Requests: " + ", ".join(f"{k} {v}" for k, v in sorted(requests.items()))]
    for t in report["targets"]:
        if not t["deletions"] and not t["kept_reasons"]:
            continue
        lines = [f"<details><summary>{t['target']} — {t['scope']}</summary>", ""]
        if t["kept_reasons"]:
            lines.append("Kept: " + "; ".join(f"{n} × {why}" for why, n in t["kept_reasons"].items()))
            lines.append("")
        if t["deletions"]:
            shown = t["deletions"][:_LIST_LIMIT]
            lines.append(
                md_table(
                    ["item", "reason", "status", "bytes"],
                    [[d["name"], d["reason"], d["status"], human_bytes(d["bytes"])] for d in shown],
                )
            )
            if len(t["deletions"]) > _LIST_LIMIT:
                lines.append(f"\n… and {len(t['deletions']) - _LIST_LIMIT} more (see the JSON report)")
        lines += ["", "</details>"]
        parts += ["", *lines]
    return "\n".join(parts) + "\n"
