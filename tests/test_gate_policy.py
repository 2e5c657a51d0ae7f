"""The pure policy decisions: thresholds, per-scanner thresholds, baseline, suppressions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from devops_agent.core.errors import ConfigError
from devops_agent.security.policy import (
    BASELINED,
    BLOCKING,
    REPORTED,
    SUPPRESSED,
    GatePolicy,
    ScannerStatus,
    baseline_document,
    decide,
    load_baseline,
    policy_from_config,
    write_baseline,
)
from devops_agent.security.sarif import Finding
from devops_agent.security.severity import Severity

TODAY = dt.date(2026, 11, 24)


def finding(
    rule: str = "B602",
    severity: Severity = Severity.HIGH,
    scanner: str = "bandit",
    path: str = "src/app.py",
    n: int = 1,
) -> Finding:
    return Finding(
        scanner=scanner,
        rule_id=rule,
        message=f"{rule} message",
        path=path,
        start_line=n,
        severity=severity,
        severity_source="test",
        fingerprint=f"{abs(hash((scanner, rule, path, n))):032x}"[-32:],
        source="test.sarif",
    )


def policy(**gate: object) -> GatePolicy:
    return policy_from_config(gate, base_dir=Path("."), today=TODAY)


def test_default_threshold_blocks_only_critical() -> None:
    high, critical = finding(severity=Severity.HIGH), finding("X", Severity.CRITICAL)
    decision = decide([high, critical], policy())
    assert [d.state for d in decision.decisions] == [REPORTED, BLOCKING]
    assert not decision.passed
    assert decision.reasons == (
        "1 new critical finding(s) from bandit (threshold: critical; not in the baseline, not suppressed)",
    )


def test_threshold_none_never_blocks_on_findings() -> None:
    assert decide([finding(severity=Severity.CRITICAL)], policy(threshold="none")).passed


def test_per_scanner_thresholds_override_the_default() -> None:
    findings = [
        finding(severity=Severity.HIGH, scanner="bandit"),
        finding("CVE-1", Severity.HIGH, scanner="trivy"),
    ]
    decision = decide(findings, policy(threshold="critical", scanners={"trivy": "high"}))
    assert [d.state for d in decision.decisions] == [REPORTED, BLOCKING]
    assert "from trivy (threshold: high" in decision.reasons[0]


def test_baseline_known_findings_do_not_block_and_new_ones_do(tmp_path: Path) -> None:
    old, new = finding("OLD", Severity.CRITICAL), finding("NEW", Severity.CRITICAL)
    path = tmp_path / "baseline.json"
    write_baseline(path, [old])
    decision = decide(
        [old, new], policy_from_config({"baseline": "baseline.json"}, base_dir=tmp_path, today=TODAY)
    )
    states = {d.finding.rule_id: (d.state, d.new) for d in decision.decisions}
    assert states == {"OLD": (BASELINED, False), "NEW": (BLOCKING, True)}


def test_baseline_fingerprints_that_match_nothing_are_reported_as_stale(tmp_path: Path) -> None:
    fixed = finding("FIXED")
    path = tmp_path / "b.json"
    write_baseline(path, [fixed])
    decision = decide([finding("OTHER", Severity.LOW)], GatePolicy(baseline=load_baseline(path), today=TODAY))
    assert [e.rule for e in decision.stale_baseline] == ["FIXED"]
    assert decision.passed  # stale entries are information, not a failure


def test_baseline_write_is_deterministic_and_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    findings = [finding("B"), finding("A")]
    assert write_baseline(path, findings) is True
    assert write_baseline(path, list(reversed(findings))) is False  # same content: no rewrite
    data = json.loads(path.read_text())
    fingerprints = [row["fingerprint"] for row in data["findings"]]
    assert fingerprints == sorted(fingerprints)
    assert len(fingerprints) == 2
    assert "created" not in data  # no timestamp: unchanged findings give an unchanged file
    assert baseline_document(findings) == data


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{", "not valid JSON"),
        (
            '{"version": 1, "findings": [{"fingerprint": "nothex", "scanner": "b", "rule": "r",'
            ' "severity": "low"}]}',
            "does not match",
        ),
        ('{"version": 2, "findings": []}', "version"),
        (
            '{"version": 1, "findings": [{"fingerprint": "' + "a" * 32 + '", "scanner": "b", "rule": "r",'
            ' "severity": "urgent"}]}',
            "severity",
        ),
    ],
)
def test_malformed_baseline_is_bad_input(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_baseline(path)
    assert needle in str(info.value)
    assert "--write-baseline" in str(info.value)
    assert info.value.exit_code == 2


def _suppression(expires: str, **extra: str) -> dict[str, str]:
    return {
        "id": "B602",
        "owner": "@org/security",
        "reason": "input is a constant",
        "expires": expires,
        **extra,
    }


def test_active_suppression_hides_a_blocking_finding() -> None:
    decision = decide(
        [finding(severity=Severity.CRITICAL)], policy(suppressions=[_suppression("2026-12-31")])
    )
    assert decision.passed
    assert decision.decisions[0].state == SUPPRESSED
    assert decision.decisions[0].suppression is not None
    assert decision.decisions[0].suppression.owner == "@org/security"


def test_expired_suppression_fails_the_gate_and_says_so() -> None:
    decision = decide([finding(severity=Severity.LOW)], policy(suppressions=[_suppression("2026-11-23")]))
    assert not decision.passed
    [reason] = decision.reasons
    assert "suppression #1 `B602`" in reason
    assert "owner @org/security" in reason
    assert "expired on 2026-11-23" in reason
    assert "1 finding(s), now unsuppressed" in reason
    assert decision.decisions[0].state == REPORTED  # low: below threshold, but the expiry still blocks


def test_expired_suppression_matching_nothing_still_fails_and_asks_for_removal() -> None:
    decision = decide([], policy(suppressions=[_suppression("2025-01-01")]))
    assert not decision.passed
    assert "matches no current finding (remove it)" in decision.reasons[0]


def test_suppression_valid_through_its_expiry_day_and_flagged_when_close() -> None:
    decision = decide([finding()], policy(suppressions=[_suppression(TODAY.isoformat())]))
    assert decision.passed
    assert [s.id for s in decision.expiring] == ["B602"]


def test_suppression_scoping_by_path_scanner_glob_and_fingerprint() -> None:
    f = finding("CVE-2024-1234", Severity.CRITICAL, scanner="trivy", path="images/app")
    assert decide([f], policy(suppressions=[_suppression("2030-01-01", id="CVE-2024-*")])).passed
    assert not decide(
        [f], policy(suppressions=[_suppression("2030-01-01", id="CVE-2024-*", path="src/*")])
    ).passed
    assert not decide(
        [f], policy(suppressions=[_suppression("2030-01-01", id="CVE-2024-*", scanner="grype")])
    ).passed
    assert decide([f], policy(suppressions=[_suppression("2030-01-01", id=f.fingerprint)])).passed


def test_unused_suppressions_are_listed() -> None:
    decision = decide([finding("OTHER", Severity.LOW)], policy(suppressions=[_suppression("2030-01-01")]))
    assert [s.id for s in decision.unused_suppressions] == ["B602"]


def test_failed_scanner_blocks_even_without_findings() -> None:
    failed = ScannerStatus("pip-audit", "failed", "OSV unreachable")
    decision = decide([], policy(), [ScannerStatus("bandit", "ran"), failed])
    assert decision.reasons == ("scanner pip-audit failed, so its findings are unknown: OSV unreachable",)


def test_bad_policy_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"scan\.gate\.threshold"):
        policy(threshold="severe")
    with pytest.raises(ConfigError, match=r"suppressions\[0\]\.expires"):
        policy(suppressions=[_suppression("31/12/2026")])
    with pytest.raises(ConfigError, match=r"suppressions\[0\]\.owner"):
        policy(suppressions=[{"id": "B1", "reason": "r", "expires": "2030-01-01"}])


def test_missing_explicit_baseline_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        policy_from_config({}, base_dir=tmp_path, baseline_override=tmp_path / "nope.json")


def test_counts_by_severity_and_scanner() -> None:
    findings = [
        finding("A", Severity.HIGH),
        finding("B", Severity.HIGH, scanner="semgrep"),
        finding("C", Severity.LOW),
    ]
    assert decide(findings, policy()).counts() == {"high": {"bandit": 1, "semgrep": 1}, "low": {"bandit": 1}}


GOOD = {"fingerprint": "a" * 32, "scanner": "bandit", "rule": "B602", "path": "x.py", "severity": "high"}


@pytest.mark.parametrize(
    "entry",
    [
        GOOD,
        {**GOOD, "path": None, "message": "m"},
        {**GOOD, "fingerprint": "A" * 32},
        {**GOOD, "fingerprint": "a" * 31},
        {**GOOD, "severity": "urgent"},
        {**GOOD, "rule": ""},
        {**GOOD, "extra": 1},
        {**GOOD, "path": 3},
        {**GOOD, "message": None},
        {k: v for k, v in GOOD.items() if k != "scanner"},
        "not an object",
    ],
)
def test_fast_entry_checks_agree_with_the_baseline_schema(entry: object) -> None:
    from devops_agent.core.config import load_schema, validate_document
    from devops_agent.security.policy import BASELINE_SCHEMA, _entry_errors

    schema_ok = not validate_document(
        {"version": 1, "findings": [entry]}, load_schema(BASELINE_SCHEMA), source="b"
    )
    assert (not _entry_errors([entry], "b")) == schema_ok
