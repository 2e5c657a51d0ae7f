"""The policy gate: pure decisions over normalised findings.

Inputs are frozen: the policy (threshold, per-scanner thresholds, suppressions, baseline) and the
facts (findings, scanner statuses). :func:`decide` returns a :class:`GateDecision` that says what
blocks and why; nothing here reads files except the small loaders at the end, which turn bad
input into ConfigError (exit 2).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from devops_agent.core.errors import ConfigError
from devops_agent.security.sarif import Finding, paused_gc
from devops_agent.security.severity import THRESHOLDS, Severity, threshold_value

BASELINE_VERSION = 1
BASELINE_SCHEMA = "scan-baseline.schema.json"
EXPIRY_WARNING_DAYS = 14
_FINGERPRINT = re.compile(r"^[0-9a-f]{32}$")

# Finding states, in the order they win.
SUPPRESSED = "suppressed"
BASELINED = "baselined"
BLOCKING = "blocking"
REPORTED = "reported"  # new, below its threshold


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> Callable[[str], object]:
    """fnmatchcase, compiled once per pattern (suppressions are checked against every finding)."""
    return re.compile(fnmatch.translate(pattern)).match


@dataclass(frozen=True)
class Suppression:
    id: str  # rule id (glob allowed) or finding fingerprint
    owner: str
    reason: str
    expires: dt.date
    path: str | None = None  # glob on the finding's repository-relative path
    scanner: str | None = None
    index: int = 0  # position in scan.gate.suppressions (for messages)

    def matches(self, finding: Finding) -> bool:
        if self.scanner and self.scanner != finding.scanner:
            return False
        if self.id not in (finding.fingerprint, finding.rule_id) and not (
            _is_glob(self.id) and _glob(self.id)(finding.rule_id)
        ):
            return False
        return not self.path or bool(_glob(self.path)(finding.path or ""))

    def describe(self) -> str:
        where = f" in {self.path}" if self.path else ""
        return f"suppression #{self.index + 1} `{self.id}`{where} (owner {self.owner})"


class _SuppressionIndex:
    """Finds the first matching suppression (config order) without scanning all of them for
    each of 10^5 findings: exact ids by dict, glob ids by compiled pattern."""

    def __init__(self, suppressions: Sequence[Suppression]) -> None:
        self.exact: dict[str, list[Suppression]] = {}
        self.globs: list[tuple[Callable[[str], object], Suppression]] = []
        for s in suppressions:
            if _is_glob(s.id):
                self.globs.append((_glob(s.id), s))
            else:
                self.exact.setdefault(s.id, []).append(s)

    def first(self, finding: Finding) -> Suppression | None:
        by_rule = self.exact.get(finding.rule_id)
        by_fingerprint = self.exact.get(finding.fingerprint)
        if by_rule is None and by_fingerprint is None and not self.globs:
            return None
        candidates = (by_rule or []) + (by_fingerprint or [])
        candidates += [s for match, s in self.globs if match(finding.rule_id)]
        best = None
        for s in candidates:
            if (best is None or s.index < best.index) and s.matches(finding):
                best = s
        return best


@dataclass(frozen=True)
class BaselineEntry:
    fingerprint: str
    scanner: str
    rule: str
    path: str | None
    severity: str
    message: str = ""


@dataclass(frozen=True)
class Baseline:
    entries: Mapping[str, BaselineEntry]
    source: str


@dataclass(frozen=True)
class GatePolicy:
    threshold: Severity | None = Severity.CRITICAL  # None: never block on findings
    scanner_thresholds: Mapping[str, Severity | None] = field(default_factory=dict)
    suppressions: tuple[Suppression, ...] = ()
    baseline: Baseline | None = None
    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).date())

    def threshold_for(self, scanner: str) -> Severity | None:
        if scanner in self.scanner_thresholds:
            return self.scanner_thresholds[scanner]
        return self.threshold


@dataclass(frozen=True)
class ScannerStatus:
    """What happened to one scanner: ran, failed (blocks), disabled or not-installed (reported)."""

    name: str
    status: str  # ran | failed | disabled | not-installed
    detail: str = ""
    results: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "results": self.results,
            "seconds": round(self.seconds, 3),
        }


class Decision(NamedTuple):
    finding: Finding
    state: str  # suppressed | baselined | blocking | reported
    new: bool  # not in the baseline
    suppression: Suppression | None = None


@dataclass(frozen=True)
class GateDecision:
    decisions: tuple[Decision, ...]
    reasons: tuple[str, ...]  # why the gate blocks (empty = passes)
    expired: tuple[Suppression, ...]
    expiring: tuple[Suppression, ...]
    unused_suppressions: tuple[Suppression, ...]
    stale_baseline: tuple[BaselineEntry, ...]  # baseline fingerprints no finding has now
    failed_scanners: tuple[ScannerStatus, ...]

    @property
    def passed(self) -> bool:
        return not self.reasons

    def by_state(self, state: str) -> list[Decision]:
        return [d for d in self.decisions if d.state == state]

    def counts(self) -> dict[str, dict[str, int]]:
        """severity → scanner → number of findings (every state)."""
        tally = Counter((d.finding.severity, d.finding.scanner) for d in self.decisions)
        out: dict[str, dict[str, int]] = {}
        for (severity, scanner), count in sorted(tally.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
            out.setdefault(severity.label, {})[scanner] = count
        return out


def decide(
    findings: Sequence[Finding],
    policy: GatePolicy,
    scanners: Sequence[ScannerStatus] = (),
) -> GateDecision:
    with paused_gc():
        return _decide(findings, policy, scanners)


def _decide(
    findings: Sequence[Finding], policy: GatePolicy, scanners: Sequence[ScannerStatus]
) -> GateDecision:
    expired = tuple(s for s in policy.suppressions if s.expires < policy.today)
    active = [s for s in policy.suppressions if s.expires >= policy.today]
    soon = policy.today + dt.timedelta(days=EXPIRY_WARNING_DAYS)
    expiring = tuple(s for s in active if s.expires <= soon)
    baseline = policy.baseline.entries if policy.baseline else {}
    active_index, expired_index = _SuppressionIndex(active), _SuppressionIndex(expired)
    used: set[int] = set()
    expired_hits: dict[int, int] = {}
    decisions: list[Decision] = []
    blocking_by: dict[tuple[str, str], int] = {}
    # Cache thresholds per scanner (hot loop over up to 10^5 findings).
    thresholds: dict[str, Severity | None] = {}
    make = Decision._make  # tuple.__new__ in C (10^5 decisions)
    first_active = active_index.first if active else None
    first_expired = expired_index.first if expired else None
    for finding in findings:
        new = finding.fingerprint not in baseline
        suppression = first_active(finding) if first_active is not None else None
        if suppression is not None:
            used.add(suppression.index)
            decisions.append(make((finding, SUPPRESSED, new, suppression)))
            continue
        if first_expired is not None:
            lapsed = first_expired(finding)
            if lapsed is not None:
                expired_hits[lapsed.index] = expired_hits.get(lapsed.index, 0) + 1
        if not new:
            decisions.append(make((finding, BASELINED, False, None)))
            continue
        scanner = finding.scanner
        if scanner not in thresholds:
            thresholds[scanner] = policy.threshold_for(scanner)
        limit = thresholds[scanner]
        if limit is not None and finding.severity >= limit:
            decisions.append(make((finding, BLOCKING, True, None)))
            key = (scanner, finding.severity.label)
            blocking_by[key] = blocking_by.get(key, 0) + 1
        else:
            decisions.append(make((finding, REPORTED, True, None)))
    reasons: list[str] = []
    failed = tuple(s for s in scanners if s.status == "failed")
    for status in failed:
        reasons.append(f"scanner {status.name} failed, so its findings are unknown: {status.detail}")
    for (scanner, severity), count in sorted(
        blocking_by.items(), key=lambda kv: (-Severity.parse(kv[0][1]), kv[0][0])
    ):
        limit = thresholds[scanner]
        assert limit is not None
        reasons.append(
            f"{count} new {severity} finding(s) from {scanner} (threshold: {limit.label}; "
            "not in the baseline, not suppressed)"
        )
    for s in expired:
        hits = expired_hits.get(s.index, 0)
        covers = (
            f"it would cover {hits} finding(s), now unsuppressed"
            if hits
            else "it matches no current finding (remove it)"
        )
        reasons.append(
            f"{s.describe()} expired on {s.expires.isoformat()}: {covers}; renew it with a new "
            f"`expires` and a reason, or fix the finding"
        )
    unused = tuple(s for s in active if s.index not in used)
    current = {f.fingerprint for f in findings}
    stale = tuple(e for fp, e in sorted(baseline.items()) if fp not in current)
    return GateDecision(
        decisions=tuple(decisions),
        reasons=tuple(reasons),
        expired=expired,
        expiring=expiring,
        unused_suppressions=unused,
        stale_baseline=stale,
        failed_scanners=failed,
    )


# -- policy from config ------------------------------------------------------------------------


def _threshold(value: Any, field_name: str) -> Severity | None:
    if not isinstance(value, str) or value not in THRESHOLDS:
        raise ConfigError(
            f"{value!r} is not a threshold",
            f"use one of: {', '.join(THRESHOLDS)}",
            field=field_name,
        )
    return threshold_value(value)


def policy_from_config(
    gate: Mapping[str, Any],
    *,
    base_dir: Path,
    today: dt.date | None = None,
    threshold_override: str | None = None,
    baseline_override: Path | None = None,
) -> GatePolicy:
    """Build the policy from ``scan.gate`` (already schema-validated when it came from a config file)."""
    threshold = _threshold(threshold_override or gate.get("threshold", "critical"), "scan.gate.threshold")
    per_scanner = {
        str(name): _threshold(value, f"scan.gate.scanners.{name}")
        for name, value in (gate.get("scanners") or {}).items()
    }
    suppressions = tuple(_suppression(item, i) for i, item in enumerate(gate.get("suppressions") or ()))
    baseline = None
    path = baseline_override
    if path is None and gate.get("baseline"):
        path = base_dir / str(gate["baseline"])
    if path is not None and path.exists():
        baseline = load_baseline(path)
    elif path is not None and baseline_override is not None:
        raise ConfigError(
            f"baseline file {path} does not exist",
            "create it with `devops-agent gate --write-baseline` or fix the path",
            field="--baseline",
        )
    return GatePolicy(
        threshold=threshold,
        scanner_thresholds=per_scanner,
        suppressions=suppressions,
        baseline=baseline,
        today=today or dt.datetime.now(dt.timezone.utc).date(),
    )


def _suppression(item: Mapping[str, Any], index: int) -> Suppression:
    where = f"scan.gate.suppressions[{index}]"
    for key in ("id", "owner", "reason", "expires"):
        if not isinstance(item.get(key), str) or not str(item.get(key)).strip():
            raise ConfigError(
                f"`{key}` is required",
                "every suppression needs id, owner, reason and expires (YYYY-MM-DD)",
                field=f"{where}.{key}",
            )
    try:
        expires = dt.date.fromisoformat(str(item["expires"]))
    except ValueError:
        raise ConfigError(
            f"{item['expires']!r} is not a date", "write it as YYYY-MM-DD", field=f"{where}.expires"
        ) from None
    return Suppression(
        id=str(item["id"]),
        owner=str(item["owner"]),
        reason=str(item["reason"]),
        expires=expires,
        path=str(item["path"]) if item.get("path") else None,
        scanner=str(item["scanner"]) if item.get("scanner") else None,
        index=index,
    )


# -- baseline file --------------------------------------------------------------------------------


def load_baseline(path: Path) -> Baseline:
    from devops_agent.core.config import load_schema, validate_document

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read baseline {path}: {exc.strerror}", "check the path") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"baseline {path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})",
            "regenerate it with `devops-agent gate --write-baseline`",
        ) from None
    # The schema checks the document; entries (up to 10^5) are checked by the same rules in
    # Python, since jsonschema needs seconds for that many (test_gate_policy keeps them in step).
    items = data.get("findings") if isinstance(data, dict) else None
    shell = dict(data, findings=[]) if isinstance(data, dict) and isinstance(items, list) else data
    errors = validate_document(shell, load_schema(BASELINE_SCHEMA), source=str(path))
    if not errors:
        assert isinstance(items, list)
        errors = _entry_errors(items, str(path))
    if errors:
        first = errors[0]
        raise ConfigError(
            first.cause,
            (first.fix or "") + "; or regenerate it with `devops-agent gate --write-baseline`",
            field=first.field,
        )
    assert isinstance(items, list)
    entries: dict[str, BaselineEntry] = {}
    for item in items:
        entries[item["fingerprint"]] = BaselineEntry(
            fingerprint=item["fingerprint"],
            scanner=item["scanner"],
            rule=item["rule"],
            path=item.get("path"),
            severity=item["severity"],
            message=item.get("message", ""),
        )
    return Baseline(entries=entries, source=str(path))


_ENTRY_KEYS = {"fingerprint", "scanner", "rule", "path", "severity", "message"}
_SEVERITY_LABELS = {"critical", "high", "medium", "low"}


def _entry_errors(items: list[Any], source: str) -> list[ConfigError]:
    """scan-baseline.schema.json's rules for ``findings[]``, applied fast."""
    for i, item in enumerate(items):
        where = f"findings[{i}]"
        problem = None
        if not isinstance(item, dict):
            problem = (where, "must be an object")
        elif not _ENTRY_KEYS.issuperset(item):
            problem = (where, f"unknown field(s) {sorted(set(item) - _ENTRY_KEYS)}")
        elif not all(isinstance(item.get(k), str) and item[k] for k in ("fingerprint", "scanner", "rule")):
            problem = (where, "fingerprint, scanner and rule are required non-empty strings")
        elif not _FINGERPRINT.match(item["fingerprint"]):
            problem = (f"{where}.fingerprint", f"{item['fingerprint']!r} does not match '^[0-9a-f]{{32}}$'")
        elif item.get("severity") not in _SEVERITY_LABELS:
            problem = (
                f"{where}.severity",
                f"{item.get('severity')!r} is not one of {sorted(_SEVERITY_LABELS)}",
            )
        elif item.get("path") is not None and not isinstance(item["path"], str):
            problem = (f"{where}.path", "must be a string or null")
        elif "message" in item and not isinstance(item["message"], str):
            problem = (f"{where}.message", "must be a string")
        if problem is not None:
            err = ConfigError(f"{source}: {problem[0]}: {problem[1]}", "fix the entry")
            err.field = problem[0]
            return [err]
    return []


def baseline_document(findings: Iterable[Finding]) -> dict[str, Any]:
    """Deterministic (sorted, no timestamp) so re-writing an unchanged baseline is a no-op."""
    rows: dict[str, dict[str, Any]] = {}
    for f in findings:
        rows[f.fingerprint] = {
            "fingerprint": f.fingerprint,
            "scanner": f.scanner,
            "rule": f.rule_id,
            "path": f.path,
            "severity": f.severity.label,
            "message": f.message.strip().splitlines()[0][:200] if f.message.strip() else "",
        }
    return {
        "version": BASELINE_VERSION,
        "tool": "devops-agent",
        "findings": [rows[k] for k in sorted(rows)],
    }


def write_baseline(path: Path, findings: Iterable[Finding]) -> bool:
    """Write the baseline; False when the file already had exactly this content."""
    text = json.dumps(baseline_document(findings), indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def is_fingerprint(value: str) -> bool:
    return bool(_FINGERPRINT.match(value))
