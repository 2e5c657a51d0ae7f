"""One severity scale from CVSS scores and vectors, labels, sentences, priority scores and levels."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devops_agent.security.severity import (
    Severity,
    cvss_vector_score,
    from_score,
    label_in_tags,
    parse_value,
    sentence_severity,
    threshold_value,
)


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (10.0, "critical"),
        (9.0, "critical"),
        (8.9, "high"),
        (7.0, "high"),
        (6.9, "medium"),
        (4.0, "medium"),
        (3.9, "low"),
        (0.0, "low"),
    ],
)
def test_github_security_severity_bands(score: float, expected: str) -> None:
    assert from_score(score).label == expected
    assert parse_value(str(score), "score").label == expected


@given(st.floats(min_value=0, max_value=10, allow_nan=False))
def test_scores_are_monotonic(score: float) -> None:
    assert from_score(score) <= from_score(min(10.0, score + 0.5))


def test_cvss_vectors_are_scored() -> None:
    # GHSA-462w-v97r-4m45 (shared/corpus/osv) → 8.6 high
    assert cvss_vector_score("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:N") == 8.6
    assert parse_value("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "score") is Severity.CRITICAL
    assert parse_value("AV:N/AC:L/Au:N/C:P/I:P/A:P", "score") is Severity.HIGH  # CVSS v2: 7.5


@pytest.mark.parametrize(
    ("value", "kind", "why"),
    [
        ("N/A", "score", "expected a number"),
        ("11", "score", "between 0 and 10"),
        (True, "score", "boolean"),
        ("CVSS:3.1/AV:X", "score", "not a CVSS vector"),
        ("EXTREME", "label", "not a known severity word"),
        ("2000", "priority", "between 0 and 1000"),
        ("fatal", "level", "SARIF level"),
    ],
)
def test_uninterpretable_values_raise_with_the_reason(value: object, kind: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_value(value, kind)


def test_labels_priority_and_sentences() -> None:
    assert parse_value("MODERATE", "label") is Severity.MEDIUM
    assert parse_value("HIGH", "label") is Severity.HIGH
    assert parse_value(580, "priority") is Severity.MEDIUM
    assert parse_value(950, "priority") is Severity.CRITICAL
    assert sentence_severity("Low severity - Container is running without cpu limit") is Severity.LOW
    assert sentence_severity("Allocation of Resources Without Limits") is None


def test_tags() -> None:
    assert label_in_tags(["vulnerability", "CRITICAL", "curl"]) == (Severity.CRITICAL, None)
    assert label_in_tags(["vulnerability", "UNKNOWN"]) == (None, "UNKNOWN")
    assert label_in_tags(["security", "external/cwe/cwe-78"]) == (None, None)


def test_thresholds() -> None:
    assert threshold_value("none") is None
    assert threshold_value("high") is Severity.HIGH
    assert Severity.CRITICAL > Severity.HIGH > Severity.MEDIUM > Severity.LOW
