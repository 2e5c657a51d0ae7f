"""Config loading and `devops-agent config validate`: exit 2, field path and fix, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from devops_agent.cli import main
from devops_agent.core.config import ConfigErrors, load_config, load_schema
from tests.conftest import REPO_ROOT, SAMPLE_APP

VALID = {
    "version": 1,
    "app": {"name": "demo"},
    "build": {"commands": ["make"], "artifacts": ["dist/*"]},
}


def write(tmp_path: Path, data: object, name: str = "devops-agent.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(load_schema())


def test_packaged_schema_is_the_repository_schema() -> None:
    packaged = REPO_ROOT / "scripts" / "devops_agent" / "data" / "devops-agent.schema.json"
    assert packaged.read_bytes() == (REPO_ROOT / "schemas" / "devops-agent.schema.json").read_bytes()


def test_schema_defines_every_stage_section() -> None:
    sections = set(load_schema()["properties"])
    assert {
        "build",
        "scan",
        "sbom",
        "sign",
        "deploy",
        "validate",
        "promote",
        "incidents",
        "history",
        "cleanup",
    } <= sections


@pytest.mark.parametrize(
    "path", sorted(REPO_ROOT.glob("examples/*/.github/devops-agent.yml")), ids=lambda p: p.parts[-3]
)
def test_every_example_config_is_valid(path: Path) -> None:
    config = load_config(path)
    assert config.app.name


def test_valid_config_builds_frozen_dataclasses(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.build.commands == ("make",)
    assert config.build.artifacts == ("dist/*",)
    assert config.build.timeout_minutes == 30
    with pytest.raises(AttributeError):
        config.app.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.section("build")["commands"] = []  # type: ignore[index]


def run_validate(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["config", "validate", str(path), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_validate_cli_accepts_sample_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_validate(SAMPLE_APP / ".github" / "devops-agent.yml", capsys)
    assert code == 0
    assert "valid (app 'sample-app')" in out


def test_wrong_type_exits_2_naming_path_and_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(json.dumps(VALID))
    data["build"]["timeout_minutes"] = "ten"
    path = write(tmp_path, data)
    before = snapshot(tmp_path)
    code, _, err = run_validate(path, capsys)
    assert code == 2
    assert "build.timeout_minutes" in err
    assert "give a value of type integer (got str)" in err
    assert snapshot(tmp_path) == before, "validation must not write anything"


def test_unknown_key_exits_2_with_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(json.dumps(VALID))
    data["build"]["comands"] = ["x"]
    code, _, err = run_validate(write(tmp_path, data), capsys)
    assert code == 2
    assert "build.comands" in err
    assert "did you mean `commands`?" in err


def test_nested_list_item_path_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(json.dumps(VALID))
    data["validate"] = {"checks": [{"name": "ok", "path": "/healthz"}, {"name": "bad", "path": 7}]}
    code, _, err = run_validate(write(tmp_path, data), capsys)
    assert code == 2
    assert "validate.checks[1].path" in err


def test_missing_required_section_names_it(tmp_path: Path) -> None:
    data = {"version": 1, "app": {"name": "demo"}}
    with pytest.raises(ConfigErrors) as info:
        load_config(write(tmp_path, data))
    assert info.value.exit_code == 2
    assert info.value.errors[0].field == "build"
    assert "add `build`" in str(info.value)


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    data = json.loads(json.dumps(VALID))
    data["build"]["timeout_minutes"] = 0
    data["deploy"] = {"driver": "ftp"}
    with pytest.raises(ConfigErrors) as info:
        load_config(write(tmp_path, data))
    fields = [e.field for e in info.value.errors]
    assert fields == ["build.timeout_minutes", "deploy.driver"]
    assert 'use one of: "process", "command", "gitops", "kubectl", "helm"' in str(info.value)


def test_literal_token_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(json.dumps(VALID))
    data["build"]["env"] = {"TOKEN": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"}
    code, _, err = run_validate(write(tmp_path, data), capsys)
    assert code == 2
    assert "build.env.TOKEN" in err
    assert "looks like a GitHub token" in err
    assert "ghp_a1B2" not in err, "the secret itself is never echoed"


def test_yaml_syntax_error_names_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_validate(write(tmp_path, "version: 1\napp: [unclosed\n"), capsys)
    assert code == 2
    assert "devops-agent.yml:3:" in err or "devops-agent.yml:2:" in err
    assert "not valid YAML" in err


def test_missing_and_empty_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_validate(tmp_path / "nope.yml", capsys)
    assert code == 2
    assert "does not exist" in err
    code, _, err = run_validate(write(tmp_path, ""), capsys)
    assert code == 2
    assert "the file is empty" in err


def test_validate_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(json.dumps(VALID))
    data["app"]["name"] = "bad name!"
    code, out, _ = run_validate(write(tmp_path, data), capsys, "--json")
    assert code == 2
    payload = json.loads(out)
    assert payload["valid"] is False
    assert payload["errors"][0]["field"] == "app.name"
