"""Local Docker/podman housekeeping for self-hosted runners (only with ``--local-images``).

Dry run: report what the engine says is reclaimable (``system df``) and the commands that would
run. Execute: ``image prune --all --force --filter until=<max_age>`` (images no container uses)
and, when enabled, ``builder prune --force --filter until=<max_age>``.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from devops_agent.cleanup.policy import LocalImagesPolicy
from devops_agent.core.errors import ConfigError, PlatformError
from devops_agent.core.gha import Actions


def find_engine(policy: LocalImagesPolicy) -> str:
    candidates = ("docker", "podman") if policy.engine == "auto" else (policy.engine,)
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    raise ConfigError(
        f"--local-images: no container engine found ({' or '.join(candidates)} not on PATH)",
        "run on a runner with docker or podman, or drop --local-images",
        field="local_images.engine",
    )


def prune_commands(engine: str, policy: LocalImagesPolicy) -> list[list[str]]:
    hours = max(int(policy.max_age.total_seconds() // 3600), 1)
    commands = [[engine, "image", "prune", "--all", "--force", "--filter", f"until={hours}h"]]
    if policy.prune_build_cache:
        if engine.endswith("podman"):
            commands.append([engine, "system", "prune", "--force", "--build", "--filter", f"until={hours}h"])
        else:
            commands.append([engine, "builder", "prune", "--force", "--filter", f"until={hours}h"])
    return commands


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PlatformError(f"{' '.join(command)} failed: {exc}", "check the container engine") from None
    if done.returncode != 0:
        raise PlatformError(
            f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-500:]}",
            "check that the engine runs and this user may use it",
        )
    return done.stdout


def prune_local_images(policy: LocalImagesPolicy, *, execute: bool, actions: Actions) -> dict[str, Any]:
    engine = find_engine(policy)
    commands = prune_commands(engine, policy)
    result: dict[str, Any] = {
        "engine": engine,
        "commands": [" ".join(c) for c in commands],
        "executed": execute,
    }
    with actions.group("local images"):
        result["before"] = _run([engine, "system", "df"])
        if not execute:
            for command in commands:
                actions.info(f"would run: {' '.join(command)}")
            return result
        result["output"] = [_run(command) for command in commands]
        result["after"] = _run([engine, "system", "df"])
    return result
