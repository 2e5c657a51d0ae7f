"""docs/actions/*.md are generated from action.yml files and must not drift."""

from __future__ import annotations

import shutil
from pathlib import Path

from devops_agent.checks.action_docs import pages, stale_pages
from tests.conftest import REPO_ROOT


def test_committed_action_docs_are_current() -> None:
    assert stale_pages(REPO_ROOT) == [], "run `python -m devops_agent.checks.action_docs`"


def test_every_action_has_a_page_listing_all_inputs_and_outputs() -> None:
    import yaml

    generated = pages(REPO_ROOT)
    for action in [REPO_ROOT / "action.yml", *sorted(REPO_ROOT.glob("actions/*/action.yml"))]:
        spec = yaml.safe_load(action.read_text())
        name = "devops-agent" if action.parent == REPO_ROOT else action.parent.name
        text = generated[REPO_ROOT / "docs" / "actions" / f"{name}.md"]
        for key in [*(spec.get("inputs") or {}), *(spec.get("outputs") or {})]:
            assert f"| `{key}` |" in text, (name, key)


def test_drift_is_detected(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "actions" / "x").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "action.yml", root / "action.yml")
    action = (
        "name: x\ndescription: d\ninputs:\n  a:\n    description: {}\n"
        "runs:\n  using: composite\n  steps: []\n"
    )
    (root / "actions" / "x" / "action.yml").write_text(action.format("first"))
    (root / "docs" / "actions").mkdir(parents=True)
    for path, text in pages(root).items():
        path.write_text(text)
    assert stale_pages(root) == []
    (root / "actions" / "x" / "action.yml").write_text(action.format("changed"))
    assert stale_pages(root) == ["docs/actions/x.md is stale or missing"]
    (root / "docs" / "actions" / "old.md").write_text("x")
    assert "docs/actions/old.md documents no action" in stale_pages(root)
