"""`devops-agent gate --sarif FILE...`: exit codes, summary, annotations, outputs, merged SARIF."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from devops_agent.security.sarif import FINGERPRINT_KEY, schema_errors
from devops_agent.stages import gate

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "sarif"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")
TRIVY = CORPUS / "trivy-trivy-test-ghas-1.sarif"  # 13 critical, 8 high
BANDIT = CORPUS / "bandit-python-security-pipeline-1.sarif"  # 3 high, 2 medium, 2 low


@pytest.fixture
def gha(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    files = {"summary": tmp_path / "summary.md", "output": tmp_path / "output.txt"}
    for f in files.values():
        f.write_text("")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(files["summary"]))
    monkeypatch.setenv("GITHUB_OUTPUT", str(files["output"]))
    monkeypatch.chdir(tmp_path)
    return files


def write_config(app: Path, gate_section: dict[str, Any]) -> Path:
    import yaml

    (app / ".github").mkdir(parents=True, exist_ok=True)
    path = app / ".github" / "devops-agent.yml"
    doc = {
        "version": 1,
        "app": {"name": "demo"},
        "build": {"artifacts": ["dist/*"]},
        "scan": {"gate": gate_section},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def outputs(path: Path) -> dict[str, str]:
    """Parse GITHUB_OUTPUT heredoc blocks (name<<delim ... delim)."""
    out: dict[str, str] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        name, _, delim = lines[i].partition("<<")
        body = []
        i += 1
        while lines[i] != delim:
            body.append(lines[i])
            i += 1
        out[name] = "\n".join(body)
        i += 1
    return out


@needs_corpus
def test_default_threshold_blocks_trivy_criticals_with_summary_outputs_and_annotations(
    gha: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    merged = tmp_path / "merged.sarif"
    code = gate.main(["--app", str(tmp_path), "--sarif", str(TRIVY), str(BANDIT), "--sarif-out", str(merged)])
    assert code == 1
    summary = gha["summary"].read_text()
    assert "❌ blocked" in summary
    assert "13 new critical finding(s) from trivy (threshold: critical" in summary
    assert "| **critical** | 0 | 13 | 13 |" in summary  # severity x scanner table (bandit, trivy)
    assert "| **high** | 3 | 8 | 11 |" in summary
    out = outputs(gha["output"])
    assert out["passed"] == "false"
    assert out["blocking"] == "13"
    assert json.loads(out["counts"])["critical"] == {"trivy": 13}
    stdout = capsys.readouterr().out
    errors = [line for line in stdout.splitlines() if line.startswith("::error file=")]
    assert len(errors) == 13
    assert all(",line=1,title=trivy%3A CVE-" in e for e in errors)
    assert "::warning file=app.py,line=" in stdout  # bandit highs: new, below the threshold
    doc = json.loads(merged.read_text())
    assert len(doc["runs"]) == 2
    assert all(FINGERPRINT_KEY in r["partialFingerprints"] for run in doc["runs"] for r in run["results"])
    assert doc["properties"]["devopsAgent"]["gate"]["passed"] is False
    assert schema_errors(doc) == []


@needs_corpus
def test_bandit_passes_the_default_gate_and_fails_a_high_threshold(
    gha: dict[str, Path], tmp_path: Path
) -> None:
    assert gate.main(["--app", str(tmp_path), "--sarif", str(BANDIT)]) == 0
    assert "✅ passed" in gha["summary"].read_text()
    assert gate.main(["--app", str(tmp_path), "--sarif", str(BANDIT), "--threshold", "high"]) == 1


@needs_corpus
def test_write_baseline_then_only_new_findings_block(gha: dict[str, Path], tmp_path: Path) -> None:
    write_config(tmp_path, {"threshold": "high", "baseline": "security-baseline.json"})
    assert gate.main(["--app", str(tmp_path), "--sarif", str(TRIVY)]) == 1
    assert gate.main(["--app", str(tmp_path), "--sarif", str(TRIVY), "--write-baseline"]) == 0
    baseline = json.loads((tmp_path / "security-baseline.json").read_text())
    assert len(baseline["findings"]) == 21
    assert gate.main(["--app", str(tmp_path), "--sarif", str(TRIVY)]) == 0  # all known now
    # a new critical result appears next to the known ones
    doc = json.loads(TRIVY.read_text())
    extra = json.loads(json.dumps(doc["runs"][0]["results"][0]))
    extra["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "library/other_image"
    doc["runs"][0]["results"].append(extra)
    changed = tmp_path / "trivy-new.sarif"
    changed.write_text(json.dumps(doc))
    assert gate.main(["--app", str(tmp_path), "--sarif", str(changed), "--json"]) == 1
    summary = gha["summary"].read_text()
    assert "22 finding(s), 1 new vs the baseline" in summary


@needs_corpus
def test_baseline_with_unknown_fingerprints_is_reported(gha: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(
        json.dumps(
            {
                "version": 1,
                "findings": [
                    {
                        "fingerprint": "f" * 32,
                        "scanner": "bandit",
                        "rule": "B999",
                        "path": "gone.py",
                        "severity": "high",
                    }
                ],
            }
        )
    )
    code = gate.main(["--app", str(tmp_path), "--sarif", str(BANDIT), "--baseline", str(tmp_path / "b.json")])
    assert code == 0
    summary = gha["summary"].read_text()
    assert "1 baseline fingerprint(s) match no current finding" in summary
    assert "`" + "f" * 32 + "`" in summary


@needs_corpus
def test_expired_suppression_blocks_with_owner_and_date(
    gha: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    yesterday = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()
    later = (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=90)).isoformat()
    write_config(
        tmp_path,
        {
            "threshold": "high",
            "suppressions": [
                {"id": "B602", "owner": "@org/sec", "reason": "constant input", "expires": yesterday},
                {
                    "id": "B3*",
                    "path": "app.py",
                    "owner": "@org/app",
                    "reason": "legacy, ticket SEC-1",
                    "expires": later,
                },
            ],
        },
    )
    assert gate.main(["--app", str(tmp_path), "--sarif", str(BANDIT)]) == 1
    summary = gha["summary"].read_text()
    assert (
        f"suppression #1 `B602` (owner @org/sec) expired on {yesterday}: it would cover 1 finding(s)"
        in summary
    )
    assert "| 2 | 4 | 0 | 1 |" in summary  # blocking B602+B201, reported 4, suppressed B324
    assert "❌ expired" in summary
    assert (
        "::error title=devops-agent gate%3A expired suppression::suppression `B602`"
        in capsys.readouterr().out
    )


@needs_corpus
def test_malformed_sarif_exits_2_before_writing_anything(gha: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "truncated.sarif"
    bad.write_text(TRIVY.read_text()[:500])
    merged = tmp_path / "merged.sarif"
    code = gate.main(["--app", str(tmp_path), "--sarif", str(TRIVY), str(bad), "--sarif-out", str(merged)])
    assert code == 2
    assert not merged.exists()
    assert gha["summary"].read_text() == ""


def test_missing_sarif_file_and_no_sarif_are_bad_input(gha: dict[str, Path], tmp_path: Path) -> None:
    assert gate.main(["--app", str(tmp_path), "--sarif", str(tmp_path / "nope.sarif")]) == 2
    assert gate.main(["--app", str(tmp_path)]) == 2


def test_unknown_severity_is_reported_and_uses_the_configured_fallback(
    gha: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "grype"}},
                "results": [
                    {
                        "ruleId": "CVE-2099-1",
                        "message": {"text": "odd"},
                        "properties": {"security-severity": "N/A"},
                    }
                ],
            }
        ],
    }
    path = tmp_path / "odd.sarif"
    path.write_text(json.dumps(doc))
    write_config(tmp_path, {"unknown_severity": "critical"})
    assert gate.main(["--app", str(tmp_path), "--sarif", str(path)]) == 1
    summary = gha["summary"].read_text()
    assert "Could not interpret" in summary
    assert 'result.properties.security-severity = "N/A" is not a severity' in summary
    assert "treated as critical" in summary
    assert "::warning title=devops-agent gate%3A could not interpret::" in capsys.readouterr().out


def test_failed_scanner_recorded_in_sarif_blocks(gha: dict[str, Path], tmp_path: Path) -> None:
    doc = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "trivy"}},
                "results": [],
                "invocations": [
                    {
                        "executionSuccessful": False,
                        "toolExecutionNotifications": [{"message": {"text": "DB download failed"}}],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "t.sarif"
    path.write_text(json.dumps(doc))
    assert gate.main(["--app", str(tmp_path), "--sarif", str(path)]) == 1
    assert "executionSuccessful=false (DB download failed)" in gha["summary"].read_text()


def test_action_inputs_feed_the_options(
    gha: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "x"}},
                "results": [{"ruleId": "R", "level": "error", "message": {"text": "m"}}],
            }
        ],
    }
    (tmp_path / "a.sarif").write_text(json.dumps(doc))
    monkeypatch.setenv("DEVOPS_AGENT_INPUT_APP_DIR", str(tmp_path))
    monkeypatch.setenv("DEVOPS_AGENT_INPUT_SARIF", f"{tmp_path / 'a.sarif'}\n")
    monkeypatch.setenv("DEVOPS_AGENT_INPUT_THRESHOLD", "high")
    assert gate.main([]) == 1
    monkeypatch.setenv("DEVOPS_AGENT_INPUT_THRESHOLD", "critical")
    assert gate.main([]) == 0
    monkeypatch.setenv("DEVOPS_AGENT_INPUT_THRESHOLD", "severe")
    assert gate.main([]) == 2


@needs_corpus
def test_all_corpus_files_at_once_with_json_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    files = [str(p) for p in sorted(CORPUS.glob("*.sarif"))]
    code = gate.main(["--app", str(tmp_path), "--sarif", *files, "--json", "--threshold", "none"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert sum(sum(row.values()) for row in data["counts"].values()) == 586
    assert {s for row in data["counts"].values() for s in row} >= {
        "trivy",
        "grype",
        "codeql",
        "kics",
        "snyk-iac",
    }
    assert any("outside the repository" in n["message"] for n in data["notes"])
    assert os.environ.get("GITHUB_ACTIONS") is None


@needs_corpus
def test_validate_schema_reports_violations_as_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kics = CORPUS / "kics-andromeda-orchestration-1.sarif"
    args = ["--app", str(tmp_path), "--sarif", str(kics), "--threshold", "none", "--json"]
    assert gate.main([*args, "--validate-schema"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert any(n["where"] == "schema" and "not valid SARIF 2.1.0" in n["message"] for n in notes)
    assert gate.main(args) == 0
    assert not any(n["where"] == "schema" for n in json.loads(capsys.readouterr().out)["notes"])
