"""Real bandit and semgrep through the gate: insecure code exits 1, clean code exits 0.

semgrep lives in its own virtualenv (its pins conflict with check-jsonschema): it is found through
DEVOPS_AGENT_SEMGREP, then <repo>/.venv-semgrep/bin/semgrep (made by .ci/setup.d/20-semgrep.sh),
then PATH.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from devops_agent.core.config import load_config
from devops_agent.core.errors import GateFailed
from devops_agent.core.gha import Actions
from devops_agent.security.scanners import SEMGREP_VERSION, plan_scan
from devops_agent.stages import scan
from devops_agent.stages.pipeline import PipelineContext

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "scan"
CORPUS = REPO.parent / "shared" / "corpus" / "sarif"


def find_semgrep() -> str | None:
    for candidate in (
        os.environ.get("DEVOPS_AGENT_SEMGREP"),
        str(REPO / ".venv-semgrep" / "bin" / "semgrep"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("semgrep")


SEMGREP = find_semgrep()
needs_semgrep = pytest.mark.skipif(
    SEMGREP is None,
    reason="semgrep is not installed: run `ROOT=$PWD bash .ci/setup.d/20-semgrep.sh` (own venv) "
    "or set DEVOPS_AGENT_SEMGREP",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    if SEMGREP:
        monkeypatch.setenv("DEVOPS_AGENT_SEMGREP", SEMGREP)
    files = {"summary": tmp_path / "summary.md", "output": tmp_path / "output.txt"}
    for f in files.values():
        f.write_text("")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(files["summary"]))
    monkeypatch.setenv("GITHUB_OUTPUT", str(files["output"]))
    return files


def copy_app(name: str, tmp_path: Path) -> Path:
    """Outside tests/: semgrep's default ignore list skips tests/ paths."""
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def results_by_tool(sarif: Path) -> dict[str, list[dict[str, Any]]]:
    doc = json.loads(sarif.read_text())
    return {run["tool"]["driver"]["name"]: run["results"] for run in doc["runs"]}


@pytest.mark.slow
@needs_semgrep
def test_insecure_code_blocks_with_the_expected_findings(env: dict[str, Path], tmp_path: Path) -> None:
    app = copy_app("insecure-app", tmp_path)
    code = scan.main(["--app", str(app)])
    assert code == 1
    merged = app / ".devops-agent" / "scan" / "merged.sarif"
    by_tool = results_by_tool(merged)
    bandit_rules = {r["ruleId"] for r in by_tool["Bandit"]}
    assert {"B602", "B307", "B301", "B506", "B608", "B324", "B105"} <= bandit_rules
    semgrep_rules = {r["ruleId"] for r in by_tool["Semgrep OSS"]}
    assert semgrep_rules == {
        "devops-agent.python.subprocess-shell-true",
        "devops-agent.python.eval-exec",
        "devops-agent.python.pickle-load",
        "devops-agent.python.yaml-unsafe-load",
        "devops-agent.python.sql-string-format",
        "devops-agent.python.weak-hash",
        "devops-agent.python.hardcoded-password",
    }  # ids without semgrep's install-path prefix: stable fingerprints
    for results in by_tool.values():
        for r in results:
            assert (
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/insecure_handlers.py"
            )
    summary = env["summary"].read_text()
    assert "2 new critical finding(s) from semgrep (threshold: critical" in summary
    assert "| bandit | ✅ ran |" in summary
    assert "| semgrep | ✅ ran |" in summary
    assert "| pip-audit | ⏸️ disabled |" in summary  # reported, not silently skipped
    assert (app / ".devops-agent" / "scan" / "bandit.sarif").exists()


@pytest.mark.slow
@needs_semgrep
def test_clean_code_passes(env: dict[str, Path], tmp_path: Path) -> None:
    app = copy_app("clean-app", tmp_path)
    assert scan.main(["--app", str(app)]) == 0
    by_tool = results_by_tool(app / ".devops-agent" / "scan" / "merged.sarif")
    assert by_tool["Semgrep OSS"] == []
    assert all(r["properties"]["devops-agent/severity"] == "low" for r in by_tool["Bandit"])
    assert "✅ passed" in env["summary"].read_text()


@pytest.mark.slow
@needs_semgrep
def test_baseline_accepts_known_findings_then_a_new_one_blocks(env: dict[str, Path], tmp_path: Path) -> None:
    app = copy_app("insecure-app", tmp_path)
    config = app / ".github" / "devops-agent.yml"
    data = yaml.safe_load(config.read_text())
    data["scan"]["gate"] = {"threshold": "high", "baseline": "security-baseline.json"}
    config.write_text(yaml.safe_dump(data))
    assert scan.main(["--app", str(app), "--write-baseline"]) == 0
    assert scan.main(["--app", str(app)]) == 0
    # unrelated lines inserted above: same findings, same fingerprints
    source = app / "src" / "insecure_handlers.py"
    source.write_text(source.read_text().replace("import hashlib\n", "import hashlib\n\n\n# moved\n", 1))
    assert scan.main(["--app", str(app)]) == 0
    with source.open("a") as fh:
        fh.write("\n\ndef again(text: str) -> Any:\n    return eval(text)\n")
    assert scan.main(["--app", str(app)]) == 1
    assert "new vs the baseline" in env["summary"].read_text()


@pytest.mark.slow
@needs_semgrep
def test_pipeline_step_scans_then_gates(env: dict[str, Path], tmp_path: Path) -> None:
    insecure = copy_app("insecure-app", tmp_path)
    ctx = PipelineContext(
        insecure, load_config(insecure / ".github" / "devops-agent.yml"), Actions.from_env(), "r1"
    )
    with pytest.raises(GateFailed, match="security gate blocked: 2 new critical finding"):
        scan.pipeline_step(ctx)
    clean = copy_app("clean-app", tmp_path)
    ctx = PipelineContext(
        clean, load_config(clean / ".github" / "devops-agent.yml"), Actions.from_env(), "r2"
    )
    outcome = scan.pipeline_step(ctx)
    assert outcome["passed"] is True
    assert "ran: bandit, semgrep" in str(outcome["detail"])


@pytest.mark.slow
def test_semgrep_missing_fails_the_scan_with_install_instructions(
    env: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = copy_app("clean-app", tmp_path)
    monkeypatch.setenv("DEVOPS_AGENT_SEMGREP", str(tmp_path / "no-such-semgrep"))
    assert scan.main(["--app", str(app)]) == 1
    summary = env["summary"].read_text()
    assert "scanner semgrep failed" in summary
    assert f"semgrep=={SEMGREP_VERSION}" in summary
    assert "scan.semgrep.enabled: false" in summary


@pytest.mark.slow
def test_external_sarif_is_ingested_and_a_missing_one_fails(
    env: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    app = copy_app("clean-app", tmp_path)
    config = app / ".github" / "devops-agent.yml"
    data = yaml.safe_load(config.read_text())
    data["scan"]["semgrep"] = {"enabled": False}
    data["scan"]["sarif"] = ["reports/*.sarif"]
    config.write_text(yaml.safe_dump(data))
    assert scan.main(["--app", str(app)]) == 1
    assert "no file matches scan.sarif" in env["summary"].read_text()
    (app / "reports").mkdir()
    shutil.copy(CORPUS / "grype-klass-web-1.sarif", app / "reports" / "grype.sarif")
    assert scan.main(["--app", str(app), "--json"]) == 1  # grype: 15 critical
    assert "15 new critical finding(s) from grype" in env["summary"].read_text()


def test_checkov_auto_without_checkov_is_reported(tmp_path: Path) -> None:
    plans = {p.name: p for p in plan_scan({}, tmp_path, tools={"checkov": (None, None)})}
    assert plans["checkov"].action == "not-installed"
    assert "IaC not scanned" in plans["checkov"].reason
    plans = {p.name: p for p in plan_scan({"checkov": {"enabled": True}}, tmp_path, tools={})}
    assert plans["checkov"].action == "missing"  # required but absent: the scan fails
    plans = {p.name: p for p in plan_scan({"checkov": {"enabled": False}}, tmp_path, tools={})}
    assert plans["checkov"].action == "disabled"


def test_checkov_skips_our_own_outputs(tmp_path: Path) -> None:
    scan_section = {"checkov": {"paths": ["."]}, "gate": {"baseline": ".github/security-baseline.json"}}
    [plan] = [
        p
        for p in plan_scan(scan_section, tmp_path, tools={"checkov": ("/x/checkov", None)})
        if p.name == "checkov"
    ]
    assert plan.action == "run"
    assert ".github/security-baseline.json" in plan.exclude
    assert ".devops-agent" in plan.exclude


def test_semgrep_setup_script_pins_the_same_version() -> None:
    script = (REPO / ".ci" / "setup.d" / "20-semgrep.sh").read_text()
    assert f'SEMGREP_VERSION="{SEMGREP_VERSION}"' in script


def test_unknown_semgrep_rule_file_is_bad_input(tmp_path: Path) -> None:
    from devops_agent.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"scan\.semgrep\.rules"):
        plan_scan(
            {"semgrep": {"rules": ["rules/missing.yml"]}}, tmp_path, tools={"semgrep": ("/bin/true", None)}
        )


@pytest.mark.slow
@needs_semgrep
def test_sample_app_passes_its_own_gate(env: dict[str, Path], sample_app: Path) -> None:
    """examples/sample-app: stdlib only (pip-audit has nothing to ask OSV), clean under bandit+semgrep."""
    assert scan.main(["--app", str(sample_app)]) == 0
    summary = env["summary"].read_text()
    assert "✅ passed" in summary
    assert "nothing to audit" in summary


def test_malformed_external_sarif_is_bad_input_before_anything_changes(
    env: dict[str, Path], tmp_path: Path
) -> None:
    app = copy_app("clean-app", tmp_path)
    config = app / ".github" / "devops-agent.yml"
    data = yaml.safe_load(config.read_text())
    data["scan"] = {"bandit": {"enabled": False}, "semgrep": {"enabled": False}, "sarif": ["reports/*.sarif"]}
    config.write_text(yaml.safe_dump(data))
    (app / "reports").mkdir()
    (app / "reports" / "trivy.sarif").write_text('{"version": "2.1.0", "runs": [')
    previous = app / ".devops-agent" / "scan" / "merged.sarif"
    previous.parent.mkdir(parents=True)
    previous.write_text("{}")
    assert scan.main(["--app", str(app)]) == 2
    assert previous.read_text() == "{}"


def find_checkov() -> str | None:
    for candidate in (
        os.environ.get("DEVOPS_AGENT_CHECKOV"),
        str(REPO / ".venv-checkov" / "bin" / "checkov"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("checkov")


CHECKOV = find_checkov()


@pytest.mark.slow
@pytest.mark.skipif(
    CHECKOV is None,
    reason="checkov is not installed: run `ROOT=$PWD bash .ci/setup.d/21-checkov.sh` "
    "or set DEVOPS_AGENT_CHECKOV",
)
def test_real_checkov_finds_insecure_terraform(
    env: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CHECKOV is not None
    monkeypatch.setenv("DEVOPS_AGENT_CHECKOV", CHECKOV)
    app = copy_app("iac-app", tmp_path)
    assert scan.main(["--app", str(app)]) == 1
    [results] = results_by_tool(app / ".devops-agent" / "scan" / "merged.sarif").values()
    rules = {r["ruleId"] for r in results}
    assert "CKV_AWS_24" in rules  # security group open to 0.0.0.0/0 on port 22
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris == {"infra/main.tf"}  # checkov's paths are relative to each scanned directory
    summary = env["summary"].read_text()
    assert "| checkov | ✅ ran |" in summary
    assert "new high finding(s) from checkov" in summary
