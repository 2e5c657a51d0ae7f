"""Dependency audit with the real pip-audit against a fake OSV server on 127.0.0.1.

The fake serves real advisories (shared/corpus/osv/records). The audit must fail closed: an
unreachable, broken or empty vulnerability source blocks with a clear message, never reads as
"no vulnerabilities".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devops_agent.security.scanners import (
    ScannerPlan,
    advisory_severity,
    enrich,
    plan_scan,
    run_pip_audit,
)
from devops_agent.security.severity import Severity
from devops_agent.stages import scan
from tests.fakes.osv import FakeOsv, serve, unused_port

RECORDS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "osv" / "records"
pytestmark = pytest.mark.skipif(not RECORDS.is_dir(), reason=f"shared OSV corpus not found at {RECORDS}")


@pytest.fixture
def osv() -> Iterator[FakeOsv]:
    with serve(FakeOsv.from_dir(RECORDS)) as fake:
        yield fake


def app_with(
    tmp_path: Path, requirements: str, osv_url: str, *, threshold: str = "critical", canary: str | None = None
) -> Path:
    import yaml

    app = tmp_path / "app"
    (app / ".github").mkdir(parents=True)
    (app / "requirements.txt").write_text(requirements)
    audit: dict[str, object] = {"requirements": ["requirements.txt"], "osv_url": osv_url, "timeout": 3}
    if canary is not None:
        audit["canary"] = canary
    config = {
        "version": 1,
        "app": {"name": "deps"},
        "build": {"artifacts": ["dist/*"]},
        "scan": {
            "bandit": {"enabled": False},
            "semgrep": {"enabled": False},
            "checkov": {"enabled": False},
            "pip_audit": audit,
            "gate": {"threshold": threshold},
        },
    }
    (app / ".github" / "devops-agent.yml").write_text(yaml.safe_dump(config))
    return app


def run_scan(
    app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, dict[str, object]]:
    summary = tmp_path / "summary.md"
    summary.write_text("")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    merged = tmp_path / "merged.sarif"
    code = scan.main(["--app", str(app), "--sarif-out", str(merged)])
    doc = json.loads(merged.read_text()) if merged.exists() else {}
    return code, summary.read_text(), doc


@pytest.mark.slow
def test_pinned_vulnerable_requirement_blocks_at_the_default_threshold(
    osv: FakeOsv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PyYAML 5.3: GHSA-6757-jp84-gxfx and GHSA-8q59-q68h-6hv4, CVSS 3 scores 9.8 → critical
    app = app_with(tmp_path, "PyYAML==5.3\nrequests==2.32.4\n", osv.query_url)
    code, summary, doc = run_scan(app, tmp_path, monkeypatch)
    assert code == 1
    assert "new critical finding(s) from pip-audit" in summary
    assert any(q["package"]["name"].lower() == "pyyaml" and q["version"] == "5.3" for q in osv.queries)
    run = doc["runs"][0]  # type: ignore[index]
    assert run["tool"]["driver"]["name"] == "pip-audit"
    results = run["results"]
    assert results
    assert all(r["message"]["text"].lower().startswith("pyyaml 5.3 is affected by") for r in results)
    assert {r["properties"]["devops-agent/severity"] for r in results} == {"critical"}
    # findings point at the pin in requirements.txt; the canary is not reported
    loc = results[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "requirements.txt"
    assert loc["region"]["startLine"] == 1
    assert not any("jinja2" in r["message"]["text"] for r in results)
    assert osv.lookups, "severities are looked up at <base>/vulns/<id>"


@pytest.mark.slow
def test_safe_pins_pass(osv: FakeOsv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = app_with(tmp_path, "requests==2.32.4\nurllib3==2.5.0\n", osv.query_url)
    code, summary, _ = run_scan(app, tmp_path, monkeypatch)
    assert code == 0, summary
    assert "| pip-audit | ✅ ran | 0 |" in summary


@pytest.mark.slow
def test_unreachable_source_blocks_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1/query"
    app = app_with(tmp_path, "requests==2.32.4\n", url)
    code, summary, doc = run_scan(app, tmp_path, monkeypatch)
    assert code == 1
    assert "scanner pip-audit failed" in summary
    assert f"the vulnerability source {url} could not be queried" in summary
    assert "This is NOT 'no vulnerabilities'" in summary
    assert "No known vulnerabilities" not in summary
    scanners = doc["properties"]["devopsAgent"]["scanners"]  # type: ignore[index]
    assert [s["status"] for s in scanners if s["name"] == "pip-audit"] == ["failed"]
    # a later `gate` over the merged SARIF still knows the audit failed
    from devops_agent.stages import gate

    assert (
        gate.main(["--app", str(app), "--sarif", str(tmp_path / "merged.sarif"), "--threshold", "none"]) == 1
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["error", "garbage"])
def test_broken_source_blocks(
    mode: str, osv: FakeOsv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    osv.mode = mode
    app = app_with(tmp_path, "requests==2.32.4\n", osv.query_url)
    code, summary, _ = run_scan(app, tmp_path, monkeypatch)
    assert code == 1
    assert "could not be queried" in summary


@pytest.mark.slow
def test_empty_database_is_caught_by_the_canary(
    osv: FakeOsv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    osv.mode = "empty"  # answers, knows nothing: pip-audit alone would say "No known vulnerabilities"
    app = app_with(tmp_path, "urllib3==1.24.1\n", osv.query_url)
    code, summary, _ = run_scan(app, tmp_path, monkeypatch)
    assert code == 1
    assert "reported nothing for the canary jinja2==2.10" in summary
    assert any(q["package"]["name"] == "jinja2" for q in osv.queries)


@pytest.mark.slow
def test_without_canary_an_empty_database_passes_which_is_why_the_canary_exists(
    osv: FakeOsv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    osv.mode = "empty"
    app = app_with(tmp_path, "urllib3==1.24.1\n", osv.query_url, canary="")
    code, _, _ = run_scan(app, tmp_path, monkeypatch)
    assert code == 0


@pytest.mark.slow
def test_stale_report_from_an_earlier_run_is_never_reused(osv: FakeOsv, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    app = app_with(tmp_path, "urllib3==1.24.1\n", osv.query_url)
    (work / "pip-audit.json").write_text(json.dumps({"dependencies": [], "fixes": []}))  # looks clean
    osv.mode = "error"
    plan = ScannerPlan(
        "pip-audit", "run", requirements=("requirements.txt",), osv_url=osv.query_url, timeout=3
    )
    run = run_pip_audit(plan, app, work, {"PATH": "/usr/bin:/bin"})
    assert run.status.status == "failed"


def test_plan_finds_requirements_and_rejects_bad_ones(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("requests==2.32.4\n")
    [plan] = [p for p in plan_scan({}, tmp_path, tools={}) if p.name == "pip-audit"]
    assert plan.action == "run"
    assert plan.requirements == ("requirements.txt",)
    assert plan.canary == "jinja2==2.10"
    from devops_agent.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"scan\.pip_audit\.requirements"):
        plan_scan({"pip_audit": {"requirements": ["missing.txt"]}}, tmp_path, tools={})


def test_nothing_to_audit_is_reported_not_silently_skipped(tmp_path: Path) -> None:
    [plan] = [p for p in plan_scan({}, tmp_path, tools={}) if p.name == "pip-audit"]
    assert plan.action == "disabled"
    assert "nothing to audit" in plan.reason


def test_severity_from_osv_records() -> None:
    ghsa = json.loads((RECORDS / "GHSA-462w-v97r-4m45.json").read_text())
    found = advisory_severity(ghsa)
    assert found is not None
    assert found.score == 8.6
    assert found.severity is Severity.HIGH
    pysec = json.loads((RECORDS / "PYSEC-2014-82.json").read_text())
    assert advisory_severity(pysec) is None  # no severity in the PYSEC record: look at aliases

    records = {"GHSA-462w-v97r-4m45": ghsa}
    vuln = {"id": "PYSEC-2019-217", "aliases": ["CVE-2019-10906", "GHSA-462w-v97r-4m45"]}
    enriched = enrich(vuln, records.get)
    assert enriched is not None
    assert enriched.severity is Severity.HIGH


def test_unknown_dependency_severity_goes_through_the_gate_fallback() -> None:
    from devops_agent.security.sarif import ingest
    from devops_agent.security.scanners import pip_audit_to_sarif

    report = {"dependencies": [{"name": "pkg", "version": "1.0", "vulns": [{"id": "X-1", "aliases": []}]}]}
    log = pip_audit_to_sarif(report, {}, lambda _id: None, None)
    out = ingest(log, source="pip-audit")
    assert out.findings[0].severity is Severity.HIGH
    assert "treated as high" in out.notes[0].message
