"""SARIF ingestion and normalisation, against the 14 real files of shared/corpus/sarif."""

from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from devops_agent.security.sarif import (
    FINGERPRINT_KEY,
    IngestOptions,
    MalformedSarif,
    annotate_results,
    ingest,
    ingest_file,
    load_log,
    merged_log,
    parse_log,
    sarif_schema,
    scanner_id,
    schema_errors,
)
from devops_agent.security.severity import Severity

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "sarif"
CORPUS_FILES = sorted(CORPUS.glob("*.sarif"))
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")
SCHEMA = Path(__file__).resolve().parents[1] / "scripts/devops_agent/data/scan/sarif-schema-2.1.0.json"


def _results(doc: dict[str, Any]) -> int:
    return sum(len(run.get("results") or []) for run in doc["runs"])


@needs_corpus
def test_corpus_has_the_14_files_of_9_scanners() -> None:
    assert len(CORPUS_FILES) == 14


@needs_corpus
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_every_corpus_result_becomes_a_finding_or_is_counted(path: Path) -> None:
    doc = load_log(path)
    total = _results(doc)
    out = ingest(doc, source=path.name)
    assert total > 0 or path.name.startswith("snyk-tbdex")
    # nothing dropped silently: each result is a finding, or counted as "not a failure"
    assert len(out.findings) + out.not_failures == total
    assert all(isinstance(f.severity, Severity) for f in out.findings)
    assert len({f.fingerprint for f in out.findings}) == len(out.findings), "fingerprints must be unique"


# (file, scanner id, where the severity came from, severity histogram)
EXPECTED = [
    (
        "bandit-python-security-pipeline-1.sarif",
        "bandit",
        "result.properties.issue_severity",
        {"high": 3, "medium": 2, "low": 2},
    ),
    ("checkov-devsecops-pipeline-1.sarif", "checkov", "result.level", {"high": 27}),
    (
        "codeql-poc-codeql-artifact-attestation-1.sarif",
        "codeql",
        "rule.properties.security-severity",
        {"critical": 4, "high": 8, "medium": 8},
    ),
    (
        "codeql-vulnerable-node-1.sarif",
        "codeql",
        "rule.properties.security-severity",
        {"critical": 1, "high": 8, "medium": 19},
    ),
    (
        "grype-klass-web-1.sarif",
        "grype",
        "rule.properties.security-severity",
        {"critical": 15, "high": 42, "medium": 17, "low": 82},
    ),
    (
        "kics-andromeda-orchestration-1.sarif",
        "kics",
        "rule.defaultConfiguration.level",
        {"high": 45, "medium": 26, "low": 11},
    ),
    ("semgrep-fips-certification-1.sarif", "semgrep", "rule.defaultConfiguration.level", {"medium": 10}),
    ("semgrep-pygoat-1.sarif", "semgrep", "rule.defaultConfiguration.level", {"high": 15, "medium": 31}),
    ("snyk-nodejs-goof-1.sarif", "snyk-code", "result.properties.priorityScore", {"high": 5, "medium": 19}),
    ("snyk-tbdex-js-1.sarif", "snyk-open-source", "rule.shortDescription", {"high": 3, "medium": 3}),
    ("snyk-todo-list-1.sarif", "snyk-iac", "rule.shortDescription", {"medium": 6, "low": 10}),
    (
        "tfsec-terraform-security-project-1.sarif",
        "tfsec",
        "result.level",
        {"high": 11, "medium": 6, "low": 2},
    ),
    (
        "trivy-trivy-sarif-demo-1.sarif",
        "trivy",
        "rule.properties.tags",
        {"critical": 56, "high": 40, "medium": 25, "low": 3},
    ),
    (
        "trivy-trivy-test-ghas-1.sarif",
        "trivy",
        "rule.properties.security-severity",
        {"critical": 13, "high": 8},
    ),
]


@needs_corpus
@pytest.mark.parametrize(("name", "scanner", "source", "histogram"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_corpus_severity_comes_from_where_each_tool_puts_it(
    name: str, scanner: str, source: str, histogram: dict[str, int]
) -> None:
    out = ingest_file(CORPUS / name)
    assert {f.scanner for f in out.findings} == {scanner}
    assert {f.severity_source for f in out.findings} == {source}
    assert dict(Counter(f.severity.label for f in out.findings)) == histogram


@needs_corpus
def test_codeql_rules_are_found_in_tool_extensions() -> None:
    out = ingest_file(CORPUS / "codeql-poc-codeql-artifact-attestation-1.sarif")
    first = out.findings[0]
    assert first.rule_id == "py/stack-trace-exposure"
    assert first.rule_name == "py/stack-trace-exposure"  # looked up via rule.toolComponent.index
    assert first.path == "app.py"
    assert first.start_line == 61


@needs_corpus
def test_corpus_quirks_are_reported_not_dropped() -> None:
    kics = ingest_file(CORPUS / "kics-andromeda-orchestration-1.sarif")
    assert any("point outside the repository" in n.message for n in kics.notes)
    semgrep = ingest_file(CORPUS / "semgrep-pygoat-1.sarif")
    assert any("'%SRCROOT%' is not defined" in n.message for n in semgrep.notes)


@needs_corpus
def test_kics_corpus_file_breaks_the_official_schema_and_validation_says_where() -> None:
    errors = schema_errors(load_log(CORPUS / "kics-andromeda-orchestration-1.sarif"))
    assert errors
    assert "taxa" in errors[0]
    assert schema_errors(load_log(CORPUS / "bandit-python-security-pipeline-1.sarif")) == []


@needs_corpus
def test_fingerprints_are_stable_across_reads_and_independent_of_line_numbers() -> None:
    doc = load_log(CORPUS / "bandit-python-security-pipeline-1.sarif")
    first = [f.fingerprint for f in ingest(copy.deepcopy(doc), source="a").findings]
    assert first == [f.fingerprint for f in ingest(copy.deepcopy(doc), source="b").findings]
    shifted = copy.deepcopy(doc)
    for result in shifted["runs"][0]["results"]:
        for loc in result["locations"]:
            loc["physicalLocation"]["region"]["startLine"] += 7  # code inserted above
    assert [f.fingerprint for f in ingest(shifted, source="c").findings] == first
    moved = copy.deepcopy(doc)
    moved["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "other.py"
    assert ingest(moved, source="d").findings[0].fingerprint != first[0]


def _log(results: list[dict[str, Any]], rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "Trivy", "rules": rules or []}}, "results": results}],
    }


def _result(rule: str = "R1", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ruleId": rule,
        "message": {"text": "something"},
        "locations": [
            {"physicalLocation": {"artifactLocation": {"uri": "src/a.py"}, "region": {"startLine": 3}}}
        ],
    }
    base.update(extra)
    return base


def test_unknown_severity_is_noted_and_fails_safe_to_the_configured_severity() -> None:
    doc = _log([_result(properties={"security-severity": "N/A"}, level="note")])
    out = ingest(doc, source="t.sarif", options=IngestOptions(unknown_severity=Severity.CRITICAL))
    assert out.findings[0].severity is Severity.CRITICAL
    assert out.findings[0].severity_source.startswith("unknown")
    [note] = out.notes
    assert "security-severity" in note.message
    assert "N/A" in note.message
    assert "treated as critical" in note.message
    assert note.where == "runs[0].results[0]"


def test_trivy_unknown_tag_is_an_unknown_severity() -> None:
    rules = [{"id": "CVE-1", "properties": {"tags": ["vulnerability", "UNKNOWN", "curl"]}}]
    out = ingest(_log([_result("CVE-1", ruleIndex=0, level="note")], rules), source="t")
    assert out.findings[0].severity is Severity.HIGH  # default unknown_severity
    assert "UNKNOWN" in out.notes[0].message


def test_invalid_level_is_noted() -> None:
    out = ingest(_log([_result(level="fatal")]), source="t")
    assert out.findings[0].severity is Severity.HIGH
    assert "not a SARIF level" in out.notes[0].message


def test_level_absent_everywhere_means_warning_per_sarif() -> None:
    out = ingest(_log([_result()]), source="t")
    assert out.findings[0].severity is Severity.MEDIUM
    assert out.notes == []


def test_dangling_rule_index_and_missing_rule_id_are_noted() -> None:
    out = ingest(_log([_result(ruleIndex=9), {"message": {"text": "x"}}]), source="t")
    assert any("ruleIndex 9 points outside" in n.message for n in out.notes)
    assert out.findings[1].rule_id == "(none)"
    assert any("no ruleId" in n.message for n in out.notes)


def test_pass_and_not_applicable_results_are_counted_not_findings() -> None:
    out = ingest(
        _log([_result(kind="pass"), _result(kind="notApplicable"), _result(kind="fail")]), source="t"
    )
    assert len(out.findings) == 1
    assert out.not_failures == 2


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"version": "2.0.0", "runs": []}', "expected '2.1.0'"),
        (b'{"version": "2.1.0"}', "runs"),
        (b'{"version": "2.1.0", "runs": [{"results": []}]}', "tool.driver"),
        (b'{"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": {}}]}', "expected a list"),
        (b'{"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": [3]}]}', "must be an object"),
        (b"\xff\xfe{", "not UTF-8"),
    ],
)
def test_malformed_sarif_is_bad_input_with_a_clear_message(raw: bytes, needle: str) -> None:
    with pytest.raises(MalformedSarif) as info:
        parse_log(raw, source="bad.sarif")
    assert needle in str(info.value)
    assert info.value.exit_code == 2
    assert "bad.sarif" in str(info.value)


def test_utf8_bom_is_accepted() -> None:
    doc = parse_log(b"\xef\xbb\xbf" + json.dumps(_log([_result()])).encode(), source="bom.sarif")
    assert doc["version"] == "2.1.0"


def test_scanner_ids() -> None:
    assert scanner_id("Semgrep OSS") == "semgrep"
    assert scanner_id("SnykCode") == "snyk-code"
    assert scanner_id("Trivy") == "trivy"
    assert scanner_id("defsec") == "tfsec"


def test_packaged_sarif_schema_is_the_pinned_official_copy() -> None:
    digest = hashlib.sha256(SCHEMA.read_bytes()).hexdigest()
    assert digest == "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
    assert sarif_schema()["id"].endswith("/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")


def test_merged_output_is_valid_sarif_and_carries_fingerprints_and_suppressions() -> None:
    doc = _log([_result("A"), _result("B", properties={"security-severity": "9.5"})])
    out = ingest(doc, source="t")
    fp_a, fp_b = (f.fingerprint for f in out.findings)
    annotate_results(
        out, {fp_a: ("unchanged", None), fp_b: ("new", "accepted risk (owner @sec, expires 2099-01-01)")}
    )
    merged = merged_log(out.logs, {"devopsAgent": {"scanners": []}})
    assert schema_errors(merged) == []
    results = merged["runs"][0]["results"]
    assert results[0]["partialFingerprints"][FINGERPRINT_KEY] == fp_a
    assert results[0]["baselineState"] == "unchanged"
    assert results[1]["properties"]["devops-agent/severity"] == "critical"
    assert results[1]["suppressions"][0]["status"] == "accepted"
    # re-reading the merged file keeps the fingerprints even though the source files are gone
    again = ingest(json.loads(json.dumps(merged)), source="merged")
    assert [f.fingerprint for f in again.findings] == [fp_a, fp_b]


def test_schema_errors_catch_a_broken_log() -> None:
    broken = {"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": [{"message": {}}]}]}
    errors = schema_errors(broken)
    assert any("driver" in e and "name" in e for e in errors)
