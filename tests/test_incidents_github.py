"""The incident lifecycle end to end: `devops-agent report-failure` / `resolve` against the fake
GitHub server (real HTTP, OpenAPI-validated requests, fault injection), GitHubPlatform included.

Failure → one issue; second failure → a comment; re-run of the same attempt → nothing new; third
→ escalation, once; cancelled → no write at all; success → closed with MTTR (+ history row);
a 5xx after the issue was created + retry → still one issue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from devops_agent.incidents.model import IncidentMarker
from devops_agent.stages import incidents as stage
from tests.fakes.github.harness import FakeClock, GitHubHarness

WORKFLOW = "ci.yml"
NEEDS_FAIL = json.dumps(
    {
        "build": {"result": "success", "outputs": {}},
        "scan": {"result": "failure", "outputs": {}},
        "deploy": {"result": "skipped", "outputs": {}},
    }
)
NEEDS_OK = json.dumps(
    {
        "build": {"result": "success", "outputs": {}},
        "scan": {"result": "success", "outputs": {}},
        "deploy": {"result": "success", "outputs": {"url": "http://127.0.0.1:18081"}},
    }
)
NEEDS_CANCELLED = json.dumps(
    {"build": {"result": "success", "outputs": {}}, "scan": {"result": "cancelled", "outputs": {}}}
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gh(clock: FakeClock) -> Iterator[GitHubHarness]:
    h = GitHubHarness(clock)
    try:
        yield h
    finally:
        h.close()
    assert h.fake.violations == [], "\n".join(map(str, h.fake.violations))


@dataclass
class Pipeline:
    """Drives runs of the caller's workflow on the fake and reports them like the final job."""

    gh: GitHubHarness
    clock: FakeClock
    app: Path
    tmp: Path
    capsys: pytest.CaptureFixture[str]

    def start_run(self, branch: str = "main") -> int:
        self.clock.advance(600)
        run_id = self.gh.fake.add_run(
            WORKFLOW, branch=branch, status="in_progress", conclusion=None, created_at=self.clock.iso()
        )
        # the fake seeds one "completed" job with the run's (null) conclusion, which its own OpenAPI
        # check rejects; seed what GitHub shows while the final job runs instead
        self.gh.fake.jobs[run_id] = [
            {
                "id": self.gh.fake.new_id(),
                "name": "pipeline / build",
                "status": "completed",
                "conclusion": "success",
            }
        ]
        return run_id

    def finish(self, run_id: int, conclusion: str, failed_job: str | None = "pipeline / scan") -> None:
        self.gh.fake.runs[run_id].update(status="completed", conclusion=conclusion)
        jobs = [
            {
                "id": self.gh.fake.new_id(),
                "name": "pipeline / build",
                "status": "completed",
                "conclusion": "success",
            }
        ]
        if failed_job:
            jobs.append(
                {
                    "id": self.gh.fake.new_id(),
                    "name": failed_job,
                    "status": "completed",
                    "conclusion": "failure",
                }
            )
        self.gh.fake.jobs[run_id] = jobs

    def env(self, run_id: int, attempt: int = 1, branch: str = "main") -> dict[str, str]:
        return {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "octo-org/hello-world",
            "GITHUB_RUN_ID": str(run_id),
            "GITHUB_RUN_ATTEMPT": str(attempt),
            "GITHUB_RUN_NUMBER": str(run_id - 1000),
            "GITHUB_WORKFLOW_REF": f"octo-org/hello-world/.github/workflows/{WORKFLOW}@refs/heads/{branch}",
            "GITHUB_WORKFLOW": "CI",
            "GITHUB_REF_NAME": branch,
            "GITHUB_SHA": f"{run_id:040x}",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_API_URL": self.gh.fake.api_url,
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_ACTOR": "dev1",
            "GITHUB_TOKEN": self.gh.fake.token,
            "GITHUB_OUTPUT": str(self.tmp / f"output-{run_id}-{attempt}"),
            "GITHUB_STEP_SUMMARY": str(self.tmp / f"summary-{run_id}-{attempt}"),
        }

    def report(
        self,
        needs: str,
        run_id: int,
        *,
        attempt: int = 1,
        command: str = "report-failure",
        extra: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        self.capsys.readouterr()
        now = datetime.fromtimestamp(self.clock.now, tz=timezone.utc)
        argv = [command, "--app", str(self.app), "--json", *extra]
        if needs:
            argv += ["--needs", needs]
        code = stage.main(argv, env=self.env(run_id, attempt), clock=lambda: now, platform=self.gh.platform)
        out = self.capsys.readouterr()
        assert code == 0, out.err
        payload: dict[str, Any] = json.loads(out.out)
        return payload

    def issues(self) -> dict[int, dict[str, Any]]:
        return self.gh.fake.issues

    def comments(self, number: int) -> list[str]:
        return [c["body"] for c in self.gh.fake.comments.get(number, [])]

    def writes(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.gh.fake.log if r.method != "GET"]


@pytest.fixture
def pipe(
    gh: GitHubHarness, clock: FakeClock, sample_app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Pipeline:
    return Pipeline(gh, clock, sample_app, tmp_path, capsys)


def fail_run(pipe: Pipeline) -> tuple[int, dict[str, Any]]:
    run_id = pipe.start_run()
    pipe.finish(run_id, "failure")  # jobs done; the run itself completes after the final job
    pipe.gh.fake.runs[run_id].update(status="in_progress", conclusion=None)
    payload = pipe.report(NEEDS_FAIL, run_id)
    pipe.gh.fake.runs[run_id].update(status="completed", conclusion="failure")
    return run_id, payload


def test_first_failure_opens_one_labelled_issue_with_the_context(pipe: Pipeline, tmp_path: Path) -> None:
    run_id, payload = fail_run(pipe)
    assert [r["action"] for r in payload["results"]] == ["created"]
    [(number, issue)] = pipe.issues().items()
    assert issue["labels"] == ["deployment-failure", "cicd-incident"]
    assert issue["title"] == "Pipeline failure: scan failed on main (sample-app)"
    body = issue["body"]
    marker = IncidentMarker.parse(body)
    assert marker is not None
    assert (marker.stage, marker.branch, marker.first_run_id) == (
        "scan",
        "main",
        str(run_id),
    )
    assert f"https://github.com/octo-org/hello-world/actions/runs/{run_id}" in body
    assert "[pipeline / scan](" in body  # failed job from the jobs API, with its link
    assert "HTTP 404" in body  # the fake has no job-logs endpoint: reported, not fatal
    assert "@dev1" in body
    # labels were created with colours and descriptions (not the default grey)
    labels = pipe.gh.fake.labels
    assert labels["deployment-failure"]["color"] == "d73a4a"
    assert labels["deployment-failure"]["description"]
    assert labels["escalated"]["color"] == "e11d21"
    # the failure-context file is written where the workflow uploads it from
    ctx_file = pipe.app / payload["context_file"]
    assert ctx_file.name == f".devops_cicd_cache_{run_id:040x}.md"
    assert "Failure point: scan" in ctx_file.read_text(encoding="utf-8")
    outputs = (tmp_path / f"output-{run_id}-1").read_text(encoding="utf-8")
    assert "outcome<<" in outputs
    assert payload["context_file"] in outputs
    summary = (tmp_path / f"summary-{run_id}-1").read_text(encoding="utf-8")
    assert "| scan | created | #" in summary
    # found by listing by label, never through the search API
    assert not [r for r in pipe.gh.fake.log if "search" in r.path]
    assert number == payload["results"][0]["issue"]


def test_second_failure_comments_and_a_rerun_of_the_same_attempt_adds_nothing(pipe: Pipeline) -> None:
    fail_run(pipe)
    second, payload = fail_run(pipe)
    assert [r["action"] for r in payload["results"]] == ["commented"]
    [number] = pipe.issues()
    comments = pipe.comments(number)
    assert len(comments) == 1
    assert "Failed again" in comments[0]
    assert "**2**" in comments[0]
    assert f"runs/{second}" in comments[0]
    # the final job re-runs for the same attempt: no second comment, no write at all
    before = len(pipe.writes())
    again = pipe.report(NEEDS_FAIL, second)
    assert [r["action"] for r in again["results"]] == ["unchanged"]
    assert len(pipe.comments(number)) == 1
    assert pipe.writes()[before:] == []
    # a new attempt of the run that fails again is a new event: one comment
    attempt2 = pipe.report(NEEDS_FAIL, second, attempt=2)
    assert [r["action"] for r in attempt2["results"]] == ["commented"]
    assert len(pipe.comments(number)) == 2
    assert len(pipe.issues()) == 1


def test_third_consecutive_failure_escalates_exactly_once(pipe: Pipeline) -> None:
    fail_run(pipe)
    fail_run(pipe)
    _, third = fail_run(pipe)
    [number] = pipe.issues()
    issue = pipe.issues()[number]
    assert third["consecutive_failures"] == 3
    assert third["results"][0]["escalated"] is True
    assert "escalated" in issue["labels"]
    assert issue["title"].startswith("[URGENT] ")
    escalations = [c for c in pipe.comments(number) if "Escalated" in c]
    assert len(escalations) == 1
    assert "@org/platform-team" in escalations[0]
    _, fourth = fail_run(pipe)
    assert fourth["consecutive_failures"] == 4
    assert fourth["results"][0]["escalated"] is False
    assert len([c for c in pipe.comments(number) if "Escalated" in c]) == 1
    assert pipe.issues()[number]["title"].count("[URGENT]") == 1
    assert len(pipe.issues()) == 1


def test_cancelled_runs_neither_report_nor_count(pipe: Pipeline) -> None:
    fail_run(pipe)
    before = len(pipe.writes())
    run_id = pipe.start_run()
    payload = pipe.report(NEEDS_CANCELLED, run_id)
    assert payload["outcome"] == "cancelled"
    assert payload["ignored"]
    assert payload["results"] == []
    assert pipe.writes()[before:] == []  # nothing written: no comment, no close, no label
    pipe.gh.fake.runs[run_id].update(status="completed", conclusion="cancelled")
    # fail, cancelled, fail: the streak is 2 — the cancelled run neither counts nor breaks it
    _, payload = fail_run(pipe)
    assert payload["consecutive_failures"] == 2
    [number] = pipe.issues()
    assert "escalated" not in pipe.issues()[number]["labels"]


def test_success_closes_the_incident_with_mttr_and_records_it(pipe: Pipeline, clock: FakeClock) -> None:
    _first, _ = fail_run(pipe)
    fail_run(pipe)
    [number] = pipe.issues()
    fixed = pipe.start_run()  # 1200 s after the first failure was reported (two runs, 600 s apart)
    payload = pipe.report(NEEDS_OK, fixed)
    assert [(r["action"], r["issue"], r["closed"]) for r in payload["results"]] == [
        ("resolved", number, True)
    ]
    assert payload["results"][0]["mttr_seconds"] == 1200
    issue = pipe.issues()[number]
    assert issue["state"] == "closed"
    assert issue["state_reason"] == "completed"
    closing = pipe.comments(number)[-1]
    assert "Recovered" in closing
    assert "**20m 00s**" in closing
    assert f"runs/{fixed}" in closing
    history = (pipe.app / "docs/operations/deployment_history.md").read_text(encoding="utf-8")
    assert "MTTR 20m 00s" in history
    assert f"incident #{number} closed" in history
    # the success is reported again (re-run): nothing more happens
    before = len(pipe.writes())
    again = pipe.report(NEEDS_OK, fixed)
    assert again["results"] == []
    assert pipe.writes()[before:] == []
    # the next failure opens a NEW incident (the old one is closed)
    pipe.gh.fake.runs[fixed].update(status="completed", conclusion="success")
    _, payload = fail_run(pipe)
    assert payload["results"][0]["action"] == "created"
    assert payload["consecutive_failures"] == 1
    assert len(pipe.issues()) == 2


def test_resolve_command_closes_everything_of_the_branch(pipe: Pipeline) -> None:
    fail_run(pipe)
    [number] = pipe.issues()
    fixed = pipe.start_run()
    payload = pipe.report("", fixed, command="resolve")
    assert [r["action"] for r in payload["results"]] == ["resolved"]
    assert pipe.issues()[number]["state"] == "closed"


def test_incidents_are_per_branch(pipe: Pipeline) -> None:
    fail_run(pipe)
    run_id = pipe.start_run(branch="feature")
    payload = pipe.report(NEEDS_FAIL, run_id, extra=("--branch", "feature"))
    assert payload["results"][0]["action"] == "created"
    assert len(pipe.issues()) == 2


def test_5xx_after_the_issue_was_created_still_gives_one_issue(pipe: Pipeline) -> None:
    pipe.gh.fake.inject("status", method="POST", path=r"/issues$", status=502, after=True)
    run_id, payload = fail_run(pipe)
    assert len(pipe.issues()) == 1
    assert [r.status for r in pipe.gh.fake.requests("POST", "/repos/{owner}/{repo}/issues")] == [502]
    assert payload["results"][0]["action"] == "created"
    # the whole job is re-run after such an error: still one issue, no comment either
    again = pipe.report(NEEDS_FAIL, run_id)
    assert again["results"][0]["action"] == "unchanged"
    assert len(pipe.issues()) == 1
    assert pipe.comments(next(iter(pipe.issues()))) == []


def test_5xx_on_the_repeat_comment_gives_one_comment(pipe: Pipeline) -> None:
    fail_run(pipe)
    pipe.gh.fake.inject("status", method="POST", path=r"/comments$", status=500, after=True)
    fail_run(pipe)
    [number] = pipe.issues()
    assert len(pipe.comments(number)) == 1


def test_rate_limited_issue_creation_waits_and_succeeds(pipe: Pipeline, clock: FakeClock) -> None:
    pipe.gh.fake.inject("secondary", method="POST", path=r"/issues$", retry_after=30)
    fail_run(pipe)
    assert len(pipe.issues()) == 1
    assert 30 in clock.slept


def test_racing_runs_converge_on_the_oldest_issue(pipe: Pipeline) -> None:
    run_id, _ = fail_run(pipe)
    [first] = pipe.issues()
    # another run created a twin at the same moment (same marker), e.g. two pushes in a row
    twin = pipe.gh.platform.create_issue(
        "twin",
        pipe.issues()[first]["body"].replace(str(run_id), "x"),
        labels=["deployment-failure", "cicd-incident"],
    )
    _, payload = fail_run(pipe)
    assert payload["results"][0]["issue"] == first
    assert payload["results"][0]["duplicates_closed"] == [twin.number]
    assert pipe.issues()[twin.number]["state"] == "closed"
    assert pipe.issues()[twin.number]["state_reason"] == "not_planned"
    assert f"duplicate of #{first}" in pipe.comments(twin.number)[0]


def test_dry_run_plans_without_writing(pipe: Pipeline) -> None:
    run_id = pipe.start_run()
    payload = pipe.report(NEEDS_FAIL, run_id, extra=("--dry-run",))
    assert payload["dry_run"] is True
    assert payload["actions"][0]["action"] == "create"
    assert pipe.writes() == []
    assert pipe.issues() == {}
    assert not (pipe.app / "docs/operations/failed_deployments").exists()


def test_bad_needs_is_exit_2_and_changes_nothing(pipe: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    run_id = pipe.start_run()
    code = stage.main(
        ["report-failure", "--app", str(pipe.app), "--needs", "{oops"],
        env=pipe.env(run_id),
        platform=pipe.gh.platform,
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "::error title=devops-agent%3A invalid input::needs: is not valid JSON" in err
    assert pipe.writes() == []


def test_secrets_never_reach_the_issue(pipe: Pipeline) -> None:
    run_id = pipe.start_run()
    pipe.finish(run_id, "failure")
    pipe.gh.fake.runs[run_id].update(status="in_progress", conclusion=None)
    env_secret = "zq-deploy-key-000111"
    pipe.capsys.readouterr()
    env = {**pipe.env(run_id), "DEPLOY_API_TOKEN": env_secret}
    code = stage.main(
        [
            "report-failure",
            "--app",
            str(pipe.app),
            "--needs",
            NEEDS_FAIL,
            "--error",
            f"push refused: ghp_{'x' * 36} / {env_secret}",
        ],
        env=env,
        platform=pipe.gh.platform,
    )
    assert code == 0
    [issue] = pipe.issues().values()
    assert env_secret not in issue["body"]
    assert "ghp_" not in issue["body"]
    assert "push refused: ***" in issue["body"]
    text = next((pipe.app / "docs/operations/failed_deployments").iterdir()).read_text(encoding="utf-8")
    assert env_secret not in text
    assert "ghp_" not in text
    assert pipe.gh.fake.token not in issue["body"] + text


def test_request_budget_per_lifecycle_step(pipe: Pipeline) -> None:
    """Requests sent to GitHub per report (reads paginate the label listing; the job-log fetch is
    separate). Upper bounds: a regression that adds calls per run shows up here."""

    def sent(action: Callable[[], object]) -> tuple[int, int]:
        before = len(pipe.gh.fake.log)
        action()
        new = pipe.gh.fake.log[before:]
        return len(new), sum(r.method != "GET" for r in new)

    # jobs + runs + list open + labels + create-lookup + twin check; 3 labels + 1 issue
    assert sent(lambda: fail_run(pipe)) == (10, 4)
    # jobs + runs + list open + comments + comment-key lookup; 1 comment
    assert sent(lambda: fail_run(pipe)) == (6, 1)
    # + labels, escalation comment lookup; comment, escalation comment, label, title
    assert sent(lambda: fail_run(pipe)) == (11, 4)
    fixed = pipe.start_run()
    # list open + comments + comment-key lookup; closing comment + close
    assert sent(lambda: pipe.report(NEEDS_OK, fixed)) == (5, 2)
    # nothing open: one listing, no write
    assert sent(lambda: pipe.report(NEEDS_OK, fixed)) == (1, 0)


def test_github_refusing_the_report_is_exit_1_but_the_context_is_kept(pipe: Pipeline, tmp_path: Path) -> None:
    # a read-only token (fork pull request): GitHub answers 403 without any rate-limit hint
    pipe.gh.fake.inject("status", method="POST", path=r"/issues$", status=403)
    run_id = pipe.start_run()
    code = stage.main(
        ["report-failure", "--app", str(pipe.app), "--needs", NEEDS_FAIL],
        env=pipe.env(run_id),
        platform=pipe.gh.platform,
    )
    assert code == 1
    assert pipe.issues() == {}
    outputs = (tmp_path / f"output-{run_id}-1").read_text(encoding="utf-8")
    context = re.search(r"context-file<<(\S+)\n(.*)\n", outputs)
    assert context is not None
    assert (pipe.app / context.group(2)).is_file()


def test_unassignable_assignee_does_not_lose_the_incident(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    config = pipe.app / ".github/devops-agent.yml"
    config.write_text(config.read_text(encoding="utf-8") + "  assignees: [ghost]\n", encoding="utf-8")
    # GitHub answers 422 when an assignee has no access; the fake does not model that check
    pipe.gh.fake.inject("status", method="POST", path=r"/issues$", status=422)
    _run_id, payload = fail_run(pipe)
    assert payload["results"][0]["action"] == "created"
    [issue] = pipe.issues().values()
    assert issue["assignees"] == []
    assert [r.status for r in pipe.gh.fake.requests("POST", "/repos/{owner}/{repo}/issues")] == [422, 201]
