"""The ``promote`` config section as a frozen dataclass, and the production deploy config.

Production reuses the ``deploy`` section (driver, its settings) with ``promote.deploy`` merged on
top and ``deploy.environment`` replaced by ``promote.environment``. For the local ``process``
driver the production slots default to the staging ports + 10, so staging and production can
both run on one machine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devops_agent.core.config import Config, _freeze
from devops_agent.core.errors import ConfigError
from devops_agent.promote.freeze import FreezeWindow, parse_windows

PORT_OFFSET = 10


@dataclass(frozen=True)
class PromoteSettings:
    environment: str = "production"
    staging_environment: str = "staging"
    auto: bool = False
    freeze: tuple[FreezeWindow, ...] = ()
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # promote.deploy


def promote_settings(config: Config) -> PromoteSettings:
    raw = config.section("promote")
    deploy = config.section("deploy")
    environment = str(raw.get("environment", "production")).strip()
    staging = str(deploy.get("environment", "staging")).strip()
    if not environment:
        raise ConfigError(
            "is empty", "name the production environment, e.g. production", field="promote.environment"
        )
    if environment == staging:
        raise ConfigError(
            f"is {environment!r}, the same as deploy.environment",
            "production must be a different environment from staging (e.g. production)",
            field="promote.environment",
        )
    return PromoteSettings(
        environment=environment,
        staging_environment=staging,
        auto=bool(raw.get("auto", False)),
        freeze=parse_windows(raw.get("freeze") or ()),
        overrides=_thaw(raw.get("deploy") or {}),
    )


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def production_config(config: Config, settings: PromoteSettings | None = None) -> Config:
    """``config`` whose ``deploy`` section describes production (see the module doc)."""
    settings = settings or promote_settings(config)
    raw = _thaw(config.raw)
    deploy = _merge(raw.get("deploy") or {}, settings.overrides)
    deploy["environment"] = settings.environment
    if deploy.get("driver", "process") == "process" and "ports" not in (
        settings.overrides.get("process") or {}
    ):
        ports = (raw.get("deploy") or {}).get("process", {}).get("ports", [18081, 18082])
        deploy.setdefault("process", {})
        deploy["process"] = {**deploy["process"], "ports": [int(p) + PORT_OFFSET for p in ports]}
    raw["deploy"] = deploy
    return dataclasses.replace(config, raw=_freeze(raw))


def config_for_environment(config: Config, environment: str | None) -> Config:
    """The config whose ``deploy`` section describes ``environment``: production gets
    ``promote.deploy`` merged in (its own ports, driver settings); any other name is unchanged."""
    if environment and environment == promote_settings(config).environment:
        return production_config(config)
    return config
