"""`devops-agent environments apply FILE` against the fake GitHub server (and the local store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_agent.core.platform import EnvironmentSpec, Reviewer
from devops_agent.promote.envfile import diff_environment, parse_document
from devops_agent.stages import environments
from tests.fixtures.promote.support import GitHubEnv, call, call_json, github

FILE = """\
version: 1
environments:
  staging:
    deployment_branches: custom
    branch_policies: [main, "release/*", {name: "v*", type: tag}]
  production:
    reviewers:
      users: [octocat]
      teams: [octo-org/release-managers]
    wait_timer: 10
    prevent_self_review: true
    deployment_branches: protected
"""


def write(tmp_path: Path, text: str = FILE) -> Path:
    path = tmp_path / "environments.yml"
    path.write_text(text, encoding="utf-8")
    return path


def seed(gh: GitHubEnv) -> None:
    gh.fake.add_team("octo-org", "release-managers")


def test_apply_round_trip_then_second_apply_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with github(monkeypatch) as gh:
        seed(gh)
        code, first = call_json(environments.main, "apply", str(write(tmp_path)), "--app", str(tmp_path))
        assert code == 0
        assert {e["environment"]: e["action"] for e in first["environments"]} == {
            "production": "create",
            "staging": "create",
        }
        prod = gh.fake.environments["production"]
        team_id = gh.fake.teams[("octo-org", "release-managers")]
        assert prod["wait_timer"] == 10
        assert prod["prevent_self_review"] is True
        assert sorted((r["type"], r["id"]) for r in prod["reviewers"]) == sorted(
            [("User", gh.fake.users["octocat"]), ("Team", team_id)]
        )
        assert prod["branch_policy"] == {"protected_branches": True, "custom_branch_policies": False}
        assert sorted((p["type"], p["name"]) for p in gh.fake.branch_policies["staging"]) == [
            ("branch", "main"),
            ("branch", "release/*"),
            ("tag", "v*"),
        ]
        writes_after_first = len(gh.writes())
        assert writes_after_first >= 5  # 2 PUTs + 3 branch policies

        code, second = call_json(environments.main, "apply", str(write(tmp_path)), "--app", str(tmp_path))
        assert code == 0
        assert {e["action"] for e in second["environments"]} == {"unchanged"}
        assert second["applied"] == []
        assert len(gh.writes()) == writes_after_first  # no write at all the second time


def test_dry_run_prints_the_diff_and_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with github(monkeypatch) as gh:
        seed(gh)
        code, out = call(
            environments.main, "apply", str(write(tmp_path)), "--app", str(tmp_path), "--dry-run"
        )
        assert code == 0
        assert "+ production (create)" in out
        assert "+ wait_timer: 10 min" in out
        assert "+ branch_policies: branch:main, branch:release/*, tag:v*" in out
        assert gh.fake.environments == {}
        assert gh.writes() == []


def test_every_protection_field_is_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing one field must not reset the others (GitHub's PUT resets what is not sent)."""
    with github(monkeypatch) as gh:
        seed(gh)
        assert call(environments.main, "apply", str(write(tmp_path)), "--app", str(tmp_path))[0] == 0
        changed = FILE.replace("prevent_self_review: true", "prevent_self_review: false")
        code, result = call_json(
            environments.main, "apply", str(write(tmp_path, changed)), "--app", str(tmp_path)
        )
        assert code == 0
        (prod,) = [e for e in result["environments"] if e["environment"] == "production"]
        assert [c["field"] for c in prod["changes"]] == ["prevent_self_review"]
        env = gh.fake.environments["production"]
        assert env["prevent_self_review"] is False
        assert env["wait_timer"] == 10  # kept because it was sent again
        assert len(env["reviewers"]) == 2
        # a field dropped from the file goes back to its documented default, visibly
        dropped = changed.replace("    wait_timer: 10\n", "")
        code, out = call(
            environments.main, "apply", str(write(tmp_path, dropped)), "--app", str(tmp_path), "--dry-run"
        )
        assert "- wait_timer: 10 min" in out
        assert "+ wait_timer: 0 min" in out


def test_drift_made_in_the_ui_is_detected_and_repaired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with github(monkeypatch) as gh:
        seed(gh)
        assert call(environments.main, "apply", str(write(tmp_path)), "--app", str(tmp_path))[0] == 0
        gh.fake.environments["production"]["wait_timer"] = 0  # someone changed it by hand
        gh.fake.branch_policies["staging"].append({"id": 99, "name": "feature/*", "type": "branch"})
        code, result = call_json(environments.main, "apply", str(write(tmp_path)), "--app", str(tmp_path))
        assert code == 0
        assert sorted(result["applied"]) == ["production", "staging"]
        assert gh.fake.environments["production"]["wait_timer"] == 10
        assert "feature/*" not in {p["name"] for p in gh.fake.branch_policies["staging"]}


@pytest.mark.parametrize(
    ("env", "token"),
    [
        ({"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": "fake-token-0123456789"}, "fake-token-0123456789"),
        ({}, "ghs_installationtoken0123456789"),
    ],
)
def test_github_token_is_refused_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], token: str
) -> None:
    with github(monkeypatch, token=token) as gh:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code, _ = call(environments.main, "apply", str(write(tmp_path)), "--app", str(tmp_path))
        assert code == 2
        assert gh.fake.log == []


def test_an_app_installation_token_is_accepted_when_declared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with github(monkeypatch, token="ghs_appinstallation0123456789") as gh:
        seed(gh)
        code, _ = call(
            environments.main, "apply", str(write(tmp_path)), "--app", str(tmp_path), "--app-token"
        )
        assert code == 0
        assert set(gh.fake.environments) == {"production", "staging"}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (FILE.replace("wait_timer: 10", "wait_timer: 99999"), "environments.production.wait_timer"),
        (
            FILE.replace("deployment_branches: custom", "deployment_branches: all"),
            "environments.staging.branch_policies",
        ),
        (
            FILE.replace(
                "    prevent_self_review: true\n",
                "    prevent_self_review: true\n    can_admins_bypass: false\n",
            ),
            "environments.production.can_admins_bypass",
        ),
        (FILE.replace("wait_timer", "wait_time"), "environments.production.wait_time"),
    ],
)
def test_bad_files_exit_2_and_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, field: str
) -> None:
    with github(monkeypatch) as gh:
        seed(gh)
        from devops_agent.core.gha import Actions

        errors: list[str] = []
        monkeypatch.setattr(Actions, "error", lambda self, message, **_: errors.append(message))
        code, _ = call(environments.main, "apply", str(write(tmp_path, text)), "--app", str(tmp_path))
        assert code == 2
        assert field in "\n".join(errors)
        assert gh.writes() == []


def test_unknown_reviewer_fails_before_any_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with github(monkeypatch) as gh:
        seed(gh)
        code, _ = call(
            environments.main,
            "apply",
            str(write(tmp_path, FILE.replace("octocat", "nobody-here"))),
            "--app",
            str(tmp_path),
        )
        assert code == 1
        assert gh.writes() == []


def test_apply_to_the_local_store_round_trips(tmp_path: Path) -> None:
    code, first = call_json(environments.main, "apply", str(write(tmp_path)), "--app", str(tmp_path))
    assert code == 0
    assert first["target"].startswith("local state store")
    code, second = call_json(environments.main, "apply", str(write(tmp_path)), "--app", str(tmp_path))
    assert code == 0
    assert {e["action"] for e in second["environments"]} == {"unchanged"}


# -- the pure diff -----------------------------------------------------------------------------


def test_diff_ignores_order_and_ids_of_policies_but_not_reviewers() -> None:
    (desired,) = [
        d
        for d in parse_document(
            {
                "environments": {
                    "p": {
                        "reviewers": {"users": ["a", "b"]},
                        "deployment_branches": "custom",
                        "branch_policies": ["x", "y"],
                    }
                }
            },
            source="t",
        )
        if d.name == "p"
    ]
    spec = desired.spec([Reviewer("User", 1, "a"), Reviewer("User", 2, "b")])
    same = EnvironmentSpec(
        "p",
        reviewers=(Reviewer("User", 2, "b"), Reviewer("User", 1, "a")),
        deployment_branch_policy=spec.deployment_branch_policy,
        branch_policies=tuple(reversed(spec.branch_policies)),
    )
    assert not diff_environment(same, spec).changed
    other = EnvironmentSpec(
        "p",
        reviewers=(Reviewer("User", 3, "c"),),
        deployment_branch_policy=spec.deployment_branch_policy,
        branch_policies=spec.branch_policies,
    )
    d = diff_environment(other, spec)
    assert [c.field for c in d.changes] == ["reviewers"]
    assert diff_environment(None, spec).action == "create"


def test_team_without_org_takes_the_repository_owner() -> None:
    (env,) = parse_document(
        {"environments": {"p": {"reviewers": {"teams": ["sre"]}}}}, source="t", owner="octo-org"
    )
    assert env.reviewers[0].name == "octo-org/sre"
