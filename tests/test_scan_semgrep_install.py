"""Provisioning semgrep into its own virtualenv: hash-locked from the checkout, idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_agent.core.errors import StageFailed
from devops_agent.security.scanners import (
    SEMGREP_VERSION,
    ensure_semgrep,
    install_semgrep_commands,
    semgrep_install_plan,
    semgrep_lock,
)
from tests.conftest import REPO_ROOT


def test_the_checkout_lock_pins_semgrep_with_hashes() -> None:
    lock = semgrep_lock()
    assert lock == REPO_ROOT / "requirements" / "semgrep.lock"
    text = lock.read_text()
    assert f"semgrep=={SEMGREP_VERSION} \\" in text
    assert "--hash=sha256:" in text
    assert "index-url" not in text


def test_install_uses_the_lock_with_require_hashes(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    create, install = install_semgrep_commands(venv, python="python3")
    assert create == ["python3", "-m", "venv", str(venv)]
    assert install[-3:] == ["--require-hashes", "-r", str(REPO_ROOT / "requirements" / "semgrep.lock")]


def test_without_a_lock_the_version_is_still_pinned(tmp_path: Path) -> None:
    _, install = semgrep_install_plan(tmp_path, "python3", None)
    assert install[-1] == f"semgrep=={SEMGREP_VERSION}"
    assert "--require-hashes" not in install


def test_failed_install_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(StageFailed, match="set DEVOPS_AGENT_SEMGREP"):
        ensure_semgrep({"XDG_CACHE_HOME": str(tmp_path)}, run=lambda cmd: 1)
