"""One severity scale (critical/high/medium/low) from the many ways scanners express it.

Scanners put severity in different places: a CVSS score or vector (``security-severity`` on the
result or its rule, as GitHub code scanning reads it; ``cvss*`` properties), a label
(``properties.issue_severity`` from bandit, ``severity`` properties, trivy's rule tags), a sentence
("Low severity - ..." in Snyk's rule descriptions), a 0-1000 ``priorityScore`` (Snyk Code), and
finally the SARIF ``level``. :func:`parse_value` reads one raw value; the ingestion module tries the
sources in order and records every value it could not interpret.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from functools import lru_cache


class Severity(enum.IntEnum):
    """Ordered: ``Severity.CRITICAL > Severity.LOW``."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return _LABEL_OF[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {value!r}") from None


# Enum .name is a descriptor lookup; labels are read 10^5 times per gate, so precompute them.
_LABEL_OF: dict[Severity, str] = {s: s.name.lower() for s in Severity}

#: Threshold names accepted in config: a severity, or "none" (never block).
THRESHOLDS = ("critical", "high", "medium", "low", "none")

# Labels used by scanners (lower-cased). "info"-like labels are the bottom of our scale.
_LABELS: dict[str, Severity] = {
    "critical": Severity.CRITICAL,
    "crit": Severity.CRITICAL,
    "blocker": Severity.CRITICAL,
    "high": Severity.HIGH,
    "error": Severity.HIGH,
    "important": Severity.HIGH,
    "major": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,
    "med": Severity.MEDIUM,
    "warning": Severity.MEDIUM,
    "low": Severity.LOW,
    "minor": Severity.LOW,
    "info": Severity.LOW,
    "informational": Severity.LOW,
    "information": Severity.LOW,
    "note": Severity.LOW,
    "negligible": Severity.LOW,
}

# SARIF result.level → severity (GitHub shows error/warning/note the same way).
LEVELS: dict[str, Severity] = {
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "note": Severity.LOW,
    "none": Severity.LOW,
}

_SENTENCE = re.compile(r"^\s*(critical|high|medium|low)\s+severity\b", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*\d+(\.\d+)?\s*$")


def from_score(score: float) -> Severity:
    """CVSS-style 0-10 score → severity, GitHub code scanning's bands (>= 9.0 critical...)."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    return Severity.LOW


def from_priority_score(score: float) -> Severity:
    """Snyk's 0-1000 priority score → severity."""
    if score >= 900:
        return Severity.CRITICAL
    if score >= 700:
        return Severity.HIGH
    if score >= 400:
        return Severity.MEDIUM
    return Severity.LOW


@lru_cache(maxsize=4096)
def cvss_vector_score(vector: str) -> float:
    """Base score of a CVSS v2/v3.x/v4 vector (``cvss`` library); ValueError when unparsable."""
    import cvss  # type: ignore[import-untyped]  # no stubs or py.typed

    text = vector.strip()
    try:
        if text.startswith("CVSS:4"):
            return float(cvss.CVSS4(text).base_score)
        if text.startswith("CVSS:3"):
            return float(cvss.CVSS3(text).scores()[0])
        return float(cvss.CVSS2(text).scores()[0])
    except Exception as exc:  # the library raises its own CVSSError subclasses
        raise ValueError(f"not a CVSS vector ({exc})") from None


def parse_value(value: object, kind: str) -> Severity:
    """Interpret one raw value of the given kind; ValueError (with the reason) when impossible.

    kinds: ``score`` (0-10 number or numeric string, or a CVSS vector), ``label``, ``sentence``,
    ``priority`` (0-1000), ``level`` (SARIF level).
    """
    if kind == "score":
        if isinstance(value, bool):
            raise ValueError("a boolean is not a score")
        if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.match(value)):
            number = float(value)
        elif isinstance(value, str) and value.strip().upper().startswith(("CVSS:", "AV:")):
            number = cvss_vector_score(value)
        else:
            raise ValueError("expected a number from 0 to 10 or a CVSS vector")
        if not 0.0 <= number <= 10.0:
            raise ValueError("a score must be between 0 and 10")
        return from_score(number)
    if kind == "priority":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError("expected a number from 0 to 1000")
        try:
            number = float(value)
        except ValueError:
            raise ValueError("expected a number from 0 to 1000") from None
        if not 0.0 <= number <= 1000.0:
            raise ValueError("a priority score must be between 0 and 1000")
        return from_priority_score(number)
    if kind == "label":
        if not isinstance(value, str):
            raise ValueError("expected a severity word")
        found = _LABELS.get(value.strip().lower())
        if found is None:
            raise ValueError("not a known severity word (critical, high, medium, low, ...)")
        return found
    if kind == "sentence":
        if not isinstance(value, str):
            raise ValueError("expected text")
        match = _SENTENCE.match(value)
        if match is None:
            raise ValueError("no '<severity> severity' prefix")
        return Severity.parse(match.group(1))
    if kind == "level":
        if not isinstance(value, str) or value not in LEVELS:
            raise ValueError("a SARIF level is one of error, warning, note, none")
        return LEVELS[value]
    raise ValueError(f"unknown severity source kind {kind!r}")


def label_in_tags(tags: Iterable[object]) -> tuple[Severity | None, str | None]:
    """A severity word among rule tags (trivy: ``["vulnerability", "HIGH", "curl"]``).

    Returns (severity, None), or (None, tag) when a tag looks like a severity but is not one we
    know (trivy's ``UNKNOWN``), or (None, None) when there is no severity tag.
    """
    unknown: str | None = None
    for tag in tags:
        if not isinstance(tag, str):
            continue
        word = tag.strip().lower()
        if word in {"critical", "high", "medium", "moderate", "low", "negligible"}:
            return _LABELS[word], None
        if tag.isupper() and word in {"unknown", "unspecified", "none", "untriaged"}:
            unknown = tag
    return None, unknown


def sentence_severity(text: str) -> Severity | None:
    """ "Low severity - Container is running..." (Snyk rule descriptions) → LOW; else None."""
    match = _SENTENCE.match(text)
    return Severity.parse(match.group(1)) if match else None


def threshold_value(name: str) -> Severity | None:
    """``"high"`` → Severity.HIGH; ``"none"`` → None (never block)."""
    return None if name == "none" else Severity.parse(name)
