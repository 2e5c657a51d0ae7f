"""Carry a build between CI jobs: restore what `devops-agent build --out DIR` exported.

The build job uploads ``DIR`` (every artifact under its name + ``build-manifest.json``); the sbom
and sign jobs download it and pass ``--build-dir DIR``. Each artifact is copied back to the path the
manifest records and re-hashed: a file that does not match its recorded digest stops the stage.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from devops_agent.core.errors import ConfigError, GateFailed
from devops_agent.core.state import state_dir

MANIFEST = "build-manifest.json"


def read_exported_manifest(build_dir: Path) -> dict[str, Any]:
    """The manifest of an exported build (bad input when absent or unreadable)."""
    source = build_dir / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{source} does not exist",
            "download the build job's artifact into this directory (it holds build-manifest.json)",
            field="--build-dir",
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"cannot read {source}: {exc}", "re-run the build job", field="--build-dir"
        ) from None
    return manifest


def import_build(app_dir: Path, build_dir: Path) -> dict[str, Any]:
    """Restore the exported build into ``app_dir``; returns the manifest. Idempotent."""
    from devops_agent.stages.build import sha256_file

    manifest = read_exported_manifest(build_dir)
    app_root = app_dir.resolve()
    for item in manifest.get("artifacts") or []:
        name, rel, expected = str(item["name"]), str(item["path"]), str(item["sha256"])
        target = (app_dir / rel).resolve()
        if app_root not in target.parents:
            raise GateFailed(f"build manifest path {rel!r} leaves the app directory", "re-run the build job")
        exported = build_dir / name
        if not exported.is_file():
            raise GateFailed(f"{name} is missing from {build_dir}", "download the complete build artifact")
        actual = sha256_file(exported)
        if actual != expected:
            raise GateFailed(
                f"{name} in {build_dir} hashes to sha256:{actual}, the build recorded sha256:{expected}",
                "the downloaded artifact is not what the build produced: re-run the pipeline",
            )
        if not target.is_file() or sha256_file(target) != expected:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(exported, target)
    state = state_dir(app_dir)
    state.mkdir(parents=True, exist_ok=True)
    (state / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest
