"""Shared fixtures. Every test starts outside GitHub Actions, with no action inputs set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_APP = REPO_ROOT / "examples" / "sample-app"
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _clean_actions_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not inherit the runner's GITHUB_* files or our inputs (CI runs in Actions)."""
    for name in list(os.environ):
        if name.startswith("DEVOPS_AGENT_INPUT_") or name in {
            "GITHUB_ACTIONS",
            "GITHUB_OUTPUT",
            "GITHUB_STEP_SUMMARY",
            "GITHUB_ENV",
            "GITHUB_PATH",
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "DEVOPS_AGENT_ARGS",
            "DEVOPS_AGENT_EXTRAS",
        }:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def sample_app(tmp_path: Path) -> Path:
    """A private copy of examples/sample-app (without build outputs or local state)."""
    target = tmp_path / "sample-app"
    shutil.copytree(SAMPLE_APP, target, ignore=shutil.ignore_patterns(".devops-agent", "dist", "__pycache__"))
    return target
