"""deploy/validate/rollback --environment production use the production settings (promote.deploy)."""

from __future__ import annotations

from pathlib import Path

import yaml

from devops_agent.core.config import load_config
from devops_agent.deploy.settings import deploy_settings
from devops_agent.promote.settings import config_for_environment


def test_production_gets_promote_deploy_and_staging_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "devops-agent.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "app": {"name": "demo"},
                "build": {"artifacts": ["dist/*"]},
                "deploy": {"driver": "process", "process": {"ports": [20001, 20002]}},
                "promote": {"environment": "prod", "deploy": {"process": {"ports": [20011, 20012]}}},
            }
        )
    )
    config = load_config(path)
    assert config_for_environment(config, "staging") is config
    assert config_for_environment(config, None) is config
    production = deploy_settings(config_for_environment(config, "prod"))
    assert production.environment == "prod"
    assert list(production.process.ports) == [20011, 20012]
    assert list(deploy_settings(config).process.ports) == [20001, 20002]
