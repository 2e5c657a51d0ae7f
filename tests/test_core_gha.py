"""The actions I/O facade: outputs, summaries, annotations, masking, inputs."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from devops_agent.core.errors import ConfigError
from devops_agent.core.gha import Actions, get_bool_input, get_input, get_multiline_input, md_table
from tests.workflow_runner.runner import parse_kv_file

# The runner's own parser of GITHUB_OUTPUT (name=value lines and name<<DELIMITER blocks).
parse_github_output = parse_kv_file


def gha(tmp_path: Path, *, github: bool = True) -> tuple[Actions, io.StringIO, Path, Path]:
    output = tmp_path / "output"
    summary = tmp_path / "summary"
    output.touch()
    summary.touch()
    env = {"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    if github:
        env["GITHUB_ACTIONS"] = "true"
    stream = io.StringIO()
    return Actions.from_env(env, stream), stream, output, summary


def test_outputs_round_trip_including_multiline_and_json(tmp_path: Path) -> None:
    actions, _, output, _ = gha(tmp_path)
    actions.set_output("version", "1.2.3")
    actions.set_output("notes", "line one\nline two\n\nline=four")
    actions.set_output("subjects", [{"name": "a", "digest": {"sha256": "00"}}])
    actions.set_output("ok", True)
    text = output.read_text()
    parsed = parse_github_output(text)
    assert parsed == {
        "version": "1.2.3",
        "notes": "line one\nline two\n\nline=four",
        "subjects": '[{"digest": {"sha256": "00"}, "name": "a"}]',
        "ok": "true",
    }
    delimiters = re.findall(r"<<(ghadelimiter_[0-9a-f-]+)", text)
    assert len(delimiters) == 4
    assert len(set(delimiters)) == 4, "each value gets its own random delimiter"


def test_output_value_cannot_forge_another_output(tmp_path: Path) -> None:
    actions, _, output, _ = gha(tmp_path)
    actions.set_output("title", "x\nversion=6.6.6\nghadelimiter_fake")
    parsed = parse_github_output(output.read_text())
    assert parsed == {"title": "x\nversion=6.6.6\nghadelimiter_fake"}


def test_summary_appends_markdown_and_redacts_secrets(tmp_path: Path) -> None:
    actions, _, _, summary = gha(tmp_path)
    actions.mask("s3cr3t-value")
    actions.summary("## Title\n\ntoken s3cr3t-value here")
    actions.summary(md_table(["a", "b"], [["1", "x|y"]]))
    text = summary.read_text()
    assert text.startswith("## Title\n\ntoken *** here\n")
    assert "| a | b |\n| --- | --- |\n| 1 | x\\|y |\n" in text
    assert "s3cr3t-value" not in text


def test_mask_emits_add_mask_per_line_and_redacts_logs(tmp_path: Path) -> None:
    actions, stream, _, _ = gha(tmp_path)
    actions.mask("first-line\nsecond-line")
    actions.info("got first-line and second-line")
    log = stream.getvalue()
    assert "::add-mask::first-line\n" in log
    assert "::add-mask::second-line\n" in log
    assert "got *** and ***" in log


def test_mask_outside_actions_prints_no_command_but_still_redacts(tmp_path: Path) -> None:
    actions, stream, _, _ = gha(tmp_path, github=False)
    actions.mask("hunter2-secret")
    actions.error("login failed for hunter2-secret")
    log = stream.getvalue()
    assert "::add-mask::" not in log
    assert "hunter2-secret" not in log
    assert "error: login failed for ***" in log


def test_annotation_workflow_command_escapes_properties_and_message(tmp_path: Path) -> None:
    actions, stream, _, _ = gha(tmp_path)
    actions.error("bad: 100% wrong\nsecond", file="src/a,b.py", line=7, title="B105: hardcoded")
    assert stream.getvalue() == (
        "::error file=src/a%2Cb.py,line=7,title=B105%3A hardcoded::bad: 100%25 wrong%0Asecond\n"
    )


def test_annotation_terminal_fallback_is_readable(tmp_path: Path) -> None:
    actions, stream, _, _ = gha(tmp_path, github=False)
    actions.warning("weak hash", file="src/a.py", line=3, title="B303")
    assert stream.getvalue() == "src/a.py:3: warning: B303: weak hash\n"


def test_group_markers_only_in_actions(tmp_path: Path) -> None:
    actions, stream, _, _ = gha(tmp_path)
    with actions.group("build"):
        actions.info("inside")
    assert stream.getvalue() == "::group::build\ninside\n::endgroup::\n"
    (tmp_path / "plain").mkdir()
    plain, plain_stream, _, _ = gha(tmp_path / "plain", github=False)
    with plain.group("build"):
        plain.info("inside")
    assert "::group::" not in plain_stream.getvalue()


def test_unknown_annotation_level_is_a_bug(tmp_path: Path) -> None:
    actions, _, _, _ = gha(tmp_path)
    with pytest.raises(ValueError, match="unknown annotation level"):
        actions.annotate("fatal", "x")


def test_inputs_from_namespaced_env() -> None:
    env = {
        "DEVOPS_AGENT_INPUT_APP_DIR": " examples/app ",
        "DEVOPS_AGENT_INPUT_DRY_RUN": "false",
        "DEVOPS_AGENT_INPUT_TARGETS": "branches\n\n caches \n",
    }
    assert get_input("app-dir", env) == "examples/app"
    assert get_input("missing", env, default="d") == "d"
    assert get_bool_input("dry-run", env, default=True) is False
    assert get_bool_input("absent", env, default=True) is True
    assert get_multiline_input("targets", env) == ["branches", "caches"]


def test_bad_boolean_input_names_the_input() -> None:
    with pytest.raises(ConfigError) as info:
        get_bool_input("dry-run", {"DEVOPS_AGENT_INPUT_DRY_RUN": "yes"}, default=True)
    assert info.value.exit_code == 2
    assert "input 'dry-run'" in str(info.value)
    assert '"true" or "false"' in str(info.value)


def test_required_input_missing_is_bad_input() -> None:
    with pytest.raises(ConfigError, match="DEVOPS_AGENT_INPUT_ENVIRONMENT"):
        get_input("environment", {}, required=True)
