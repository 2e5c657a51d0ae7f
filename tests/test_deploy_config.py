"""Bad input exits 2 with nothing deployed; the verification gate fails closed (exit 1)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devops_agent.core.config import load_config
from devops_agent.core.errors import ConfigError, GateFailed
from devops_agent.core.gha import Actions
from devops_agent.core.state import StateStore, state_dir
from devops_agent.deploy.base import DriverContext, Release, normalize_digest
from devops_agent.deploy.process import ProcessDriver
from devops_agent.deploy.settings import deploy_settings, history_settings, validate_settings
from devops_agent.deploy.verifying import digest_only, real_verifier, verify_release
from devops_agent.stages import deploy as deploy_stage
from devops_agent.stages import validate as validate_stage
from devops_agent.stages.build import execute_build
from tests.fixtures.deploy.support import free_ports, write_config


@pytest.fixture
def app(sample_app: Path) -> Iterator[Path]:
    write_config(sample_app, ports=free_ports(2))
    execute_build(
        load_config(sample_app / ".github/devops-agent.yml"),
        sample_app,
        Actions.from_env(stream=io.StringIO()),
        skip_tests=True,
    )
    settings = deploy_settings(load_config(sample_app / ".github/devops-agent.yml"))
    yield sample_app
    # Only the verification test could have started something; stop it whatever the config is now.
    ProcessDriver(DriverContext(sample_app, settings.environment, settings)).stop()


def edit(app: Path, section: str, value: Any) -> None:
    path = app / ".github" / "devops-agent.yml"
    data = yaml.safe_load(path.read_text())
    data[section] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def nothing_deployed(app: Path) -> bool:
    deploy_dir = state_dir(app) / "deploy"
    with StateStore.for_app(app) as store:
        records = store.deployments()
    return not records and not (deploy_dir / "staging" / "process.json").exists()


def run_deploy(app: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = deploy_stage.main(["--app", str(app), *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


BAD_DEPLOY = [
    ({"driver": "ftp"}, "deploy.driver"),
    ({"driver": "command"}, "deploy.command"),
    ({"driver": "command", "command": {"deploy": "./d.sh"}}, "rollback"),
    (
        {"driver": "gitops", "gitops": {"repository": "x", "path": "../escape.yaml", "format": "yaml"}},
        "deploy.gitops.path",
    ),
    ({"driver": "kubectl"}, "deploy.kubectl"),
    ({"driver": "process", "url": "not a url"}, "deploy.url"),
    ({"driver": "process", "process": {"ports": [18000, 18000]}}, "deploy.process.ports"),
    (
        {"driver": "process", "process": {"ports": [1, 2], "command": "python3 app.pyz"}},
        "deploy.process.command",
    ),
    (
        {
            "driver": "gitops",
            "gitops": {"repository": "x", "path": "k.yaml", "format": "yaml", "health_url": "ftp://argo/app"},
        },
        "health_url",
    ),
]


@pytest.mark.parametrize(("section", "field"), BAD_DEPLOY)
def test_bad_deploy_config_exits_2_and_deploys_nothing(
    app: Path, section: dict[str, Any], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(app, "deploy", section)
    code, output = run_deploy(app, capsys=capsys)
    assert code == 2, output
    assert field in output
    assert "fix" in output
    assert nothing_deployed(app)


@pytest.mark.parametrize(
    ("validate", "field"),
    [
        ({"checks": [{"name": "x", "url": "ftp://example/health"}]}, "validate.checks[0].url"),
        ({"checks": [{"name": "x", "path": "healthz"}]}, "validate.checks[0].path"),
        ({"checks": [{"name": "a", "path": "/a"}, {"name": "a", "path": "/b"}]}, "validate.checks"),
        ({"url": "localhost:8080"}, "validate.url"),
        ({"canary": {"rounds": 3}}, "validate.canary"),
    ],
)
def test_bad_validate_config_exits_2_before_deploying(
    app: Path, validate: dict[str, Any], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(app, "validate", validate)
    code, output = run_deploy(app, capsys=capsys)
    assert code == 2, output
    assert field in output
    assert nothing_deployed(app)


def test_bad_inputs_exit_2(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_deploy(app, "--digest", "sha256:1234", capsys=capsys)
    assert code == 2
    assert "is not a sha256 digest" in output
    code, output = run_deploy(app, "--artifact", "dist/missing.pyz", capsys=capsys)
    assert code == 2
    assert "--artifact" in output
    code = validate_stage.main(["--app", str(app), "--url", "not-a-url"])
    assert code == 2
    assert "--url" in capsys.readouterr().err
    edit(app, "history", {"path": "/etc/history.md"})
    code, output = run_deploy(app, capsys=capsys)
    assert code == 2
    assert "history.path" in output
    assert nothing_deployed(app)


def test_validate_with_nothing_to_check_is_bad_input(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(app, "validate", {"retries": 2})
    assert validate_stage.main(["--app", str(app)]) == 2
    assert "nothing to validate" in capsys.readouterr().err


def test_dry_run_plans_and_changes_nothing(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_deploy(app, "--dry-run", capsys=capsys)
    assert code == 0, output
    assert "Deploy plan (dry run)" in output
    assert nothing_deployed(app)


def test_verification_gate_fails_closed_and_deploys_nothing(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy.verify: true with no signed evidence: exit 1, nothing started, nothing recorded."""
    path = app / ".github" / "devops-agent.yml"
    data = yaml.safe_load(path.read_text())
    data["deploy"]["verify"] = True
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    code, output = run_deploy(app, capsys=capsys)
    assert code == 1, output
    assert "verif" in output
    assert nothing_deployed(app)


def test_fallback_digest_check_refuses_a_tampered_artifact(app: Path) -> None:
    config = load_config(app / ".github" / "devops-agent.yml")
    from devops_agent.stages.build import load_manifest

    artifact = load_manifest(app)["artifacts"][0]
    release = Release(artifact["sha256"], "1.0.0", str(app / artifact["path"]))
    evidence = digest_only(app, config, release)
    assert evidence["method"] == "digest-only (build manifest)"
    (app / artifact["path"]).write_bytes(b"tampered")
    with pytest.raises(GateFailed, match="hashes to sha256:"):
        digest_only(app, config, release)
    unknown = Release("0" * 64, "9.9.9", None)
    with pytest.raises(GateFailed, match="not an artifact of the last build"):
        digest_only(app, config, unknown)


def test_verify_release_uses_the_verify_stage_when_installed(app: Path) -> None:
    config = load_config(app / ".github" / "devops-agent.yml")
    release = Release("a" * 64, "1.0.0")
    calls: list[str] = []

    def verifier(app_dir: Path, cfg: Any, digest: str) -> dict[str, Any]:
        calls.append(digest)
        return {"passed": True}

    evidence = verify_release(app, config, release, verifier=verifier)
    assert calls == ["sha256:" + "a" * 64]
    assert "devops-agent verify" in evidence["method"]
    assert verify_release(app, config, release, enabled=False)["method"].startswith("skipped")
    # This checkout ships the verify stage, so the default is the real one (not the fallback).
    assert real_verifier() is not None


def test_settings_defaults_and_digest_forms(app: Path) -> None:
    config = load_config(app / ".github" / "devops-agent.yml")
    s = deploy_settings(config)
    assert (s.driver, s.environment, s.process.host) == ("process", "staging", "127.0.0.1")
    assert validate_settings(config).rollback is True
    assert history_settings(config).path == "docs/operations/deployment_history.md"
    assert normalize_digest("SHA256:" + "AB" * 32) == "ab" * 32
    with pytest.raises(ConfigError):
        normalize_digest("md5:abc")
