"""Deployment drivers behind one contract (:class:`devops_agent.deploy.base.Driver`).

``make_driver(ctx)`` returns the driver ``deploy.driver`` names: ``process`` (local blue/green
processes, the default), ``command`` (user commands), ``gitops`` (commit + push the digest to a
manifests repository), ``kubectl`` and ``helm``. Modules are imported only when chosen.
"""

from __future__ import annotations

import importlib

from devops_agent.core.errors import ConfigError
from devops_agent.deploy.base import Driver, DriverContext

DRIVER_CLASSES: dict[str, tuple[str, str]] = {
    "process": ("devops_agent.deploy.process", "ProcessDriver"),
    "command": ("devops_agent.deploy.command", "CommandDriver"),
    "gitops": ("devops_agent.deploy.gitops", "GitopsDriver"),
    "kubectl": ("devops_agent.deploy.kube", "KubectlDriver"),
    "helm": ("devops_agent.deploy.kube", "HelmDriver"),
}


def make_driver(ctx: DriverContext, name: str | None = None) -> Driver:
    name = name or ctx.settings.driver
    if name not in DRIVER_CLASSES:
        raise ConfigError(
            f"unknown driver {name!r}", f"use one of: {', '.join(DRIVER_CLASSES)}", field="deploy.driver"
        )
    module_name, class_name = DRIVER_CLASSES[name]
    driver: Driver = getattr(importlib.import_module(module_name), class_name)(ctx)
    return driver


__all__ = ["DRIVER_CLASSES", "Driver", "DriverContext", "make_driver"]
