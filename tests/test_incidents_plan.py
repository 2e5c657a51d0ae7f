"""The pure incident planner: needs classification, failure streaks, markers, the plan itself."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devops_agent.core.errors import ConfigError
from devops_agent.core.platform import Issue, key_marker
from devops_agent.incidents.model import (
    URGENT_PREFIX,
    FailureContext,
    IncidentMarker,
    IncidentSettings,
    OpenIncident,
    RunInfo,
    RunView,
    StageResult,
    incident_key,
)
from devops_agent.incidents.plan import (
    classify,
    comment_key,
    count_consecutive_failures,
    parse_needs,
    plan_incidents,
    plan_to_json,
    select_open_incidents,
)

T0 = datetime(2027, 1, 15, 12, 0, tzinfo=timezone.utc)
SETTINGS = IncidentSettings(owners=("@org/platform-team", "alice"))


def run(run_id: str = "101", attempt: int = 1, branch: str = "main") -> RunInfo:
    return RunInfo(
        pipeline="app/ci.yml",
        workflow="ci.yml",
        run_id=run_id,
        branch=branch,
        sha="c0ffee" * 6 + "abcd",
        run_attempt=attempt,
        run_number=7,
        run_url=f"https://github.com/o/r/actions/runs/{run_id}",
    )


def ctx(*stages: tuple[str, str], run_info: RunInfo | None = None) -> FailureContext:
    return FailureContext(run_info or run(), tuple(StageResult(n, r) for n, r in stages), T0)


def incident(
    number: int,
    stage: str = "build",
    *,
    first_run: str = "90",
    attempt: int = 1,
    labels: tuple[str, ...] = ("deployment-failure", "cicd-incident"),
    title: str = "Pipeline failure: build failed on main (app)",
    keys: frozenset[str] = frozenset(),
    branch: str = "main",
) -> OpenIncident:
    marker = IncidentMarker(
        incident_key("app/ci.yml", branch, stage),
        "app/ci.yml",
        branch,
        stage,
        T0 - timedelta(hours=2),
        first_run,
        attempt,
    )
    return OpenIncident(number, title, labels, marker, comment_keys=keys)


def plan(c: FailureContext, incidents: list[OpenIncident], consecutive: int = 1, **kw: object):  # type: ignore[no-untyped-def]
    return plan_incidents(
        c,
        SETTINGS,
        incidents,
        consecutive=consecutive,
        now=T0,
        app="app",
        context_path="ctx.md",
        **kw,  # type: ignore[arg-type]
    )


# -- needs --------------------------------------------------------------------------------------


def test_parse_needs_keeps_order_and_outputs() -> None:
    stages = parse_needs(
        '{"build": {"result": "success", "outputs": {"version": "1.2.3"}},'
        ' "scan": {"result": "failure", "outputs": {}}, "deploy": {"result": "skipped"}}'
    )
    assert [(s.name, s.result) for s in stages] == [
        ("build", "success"),
        ("scan", "failure"),
        ("deploy", "skipped"),
    ]
    assert stages[0].outputs == {"version": "1.2.3"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('["build"]', "JSON object"),
        ('{"build": {"result": "exploded"}}', "'exploded'"),
        ('{"build": "failure"}', "None"),
        ('{"build": {"result": "success", "outputs": [1]}}', "outputs"),
    ],
)
def test_parse_needs_rejects_bad_input(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_needs(text)
    assert err.value.field == "needs"
    assert fragment in err.value.cause
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    ("results", "outcome"),
    [
        (["success", "failure", "skipped"], "failure"),
        (["failure", "cancelled"], "failure"),
        (["success", "cancelled"], "cancelled"),
        (["skipped", "skipped"], "skipped"),
        ([], "skipped"),
        (["success", "skipped"], "success"),
        (["success"], "success"),
    ],
)
def test_classify(results: list[str], outcome: str) -> None:
    assert classify([StageResult(f"s{i}", r) for i, r in enumerate(results)]) == outcome


# -- failure streak -------------------------------------------------------------------------------


def rv(run_id: str, conclusion: str | None, status: str = "completed") -> RunView:
    return RunView(run_id, status, conclusion)


def test_streak_counts_current_run_and_stops_at_success() -> None:
    runs = [
        rv("5", None, "in_progress"),
        rv("4", "failure"),
        rv("3", "timed_out"),
        rv("2", "success"),
        rv("1", "failure"),
    ]
    assert count_consecutive_failures(runs, "5") == 3


def test_streak_ignores_cancelled_skipped_and_unfinished_runs() -> None:
    runs = [
        rv("9", None, "in_progress"),  # the current run
        rv("8", "cancelled"),
        rv("7", None, "queued"),  # another run still going
        rv("6", "failure"),
        rv("5", "skipped"),
        rv("4", "neutral"),
        rv("3", "failure"),
        rv("2", "success"),
    ]
    assert count_consecutive_failures(runs, "9") == 3


def test_streak_skips_runs_newer_than_a_rerun() -> None:
    # run 3 is re-run (attempt 2) after run 4 succeeded: only runs older than 3 count
    runs = [rv("4", "success"), rv("3", None, "in_progress"), rv("2", "failure"), rv("1", "success")]
    assert count_consecutive_failures(runs, "3") == 2


def test_streak_when_the_current_run_is_not_listed() -> None:
    assert count_consecutive_failures([rv("2", "failure"), rv("1", "failure")], "77") == 3
    assert count_consecutive_failures([], "77") == 1


_CONCLUSIONS = st.sampled_from(["success", "failure", "timed_out", "cancelled", "skipped", "neutral", None])


@given(st.lists(_CONCLUSIONS, max_size=30))
def test_streak_matches_a_reference_model(conclusions: list[str | None]) -> None:
    runs = [rv(str(100 - i), c, "completed" if c else "in_progress") for i, c in enumerate(conclusions)]
    expected = 1
    for c in conclusions:
        if c == "success":
            break
        expected += c in ("failure", "timed_out")
    assert count_consecutive_failures(runs, "current") == expected


# -- markers and keys -------------------------------------------------------------------------------


@given(
    st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != ""),
    st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != ""),
)
def test_marker_round_trips_and_stays_one_html_comment(branch: str, stage: str) -> None:
    key = incident_key("app/ci.yml", branch, stage)
    marker = IncidentMarker(key, "app/ci.yml", branch, stage, T0, "42", 2, "https://x/42")
    text = marker.render()
    inner = text[len("<!-- ") : -len(" -->")]
    assert "--" not in inner
    assert ">" not in inner
    assert IncidentMarker.parse(f"body\n\n{text}\n") == marker
    key_marker(key)  # a valid platform idempotency key (no '--', no newline)


def test_marker_parse_rejects_foreign_or_damaged_bodies() -> None:
    assert IncidentMarker.parse("no marker") is None
    assert IncidentMarker.parse(None) is None
    assert IncidentMarker.parse('<!-- devops-agent:incident {"key": "x"} -->') is None
    assert IncidentMarker.parse("<!-- devops-agent:incident {broken -->") is None


def test_incident_key_separates_pipeline_branch_and_stage() -> None:
    keys = {
        incident_key("app/ci.yml", "main", "build"),
        incident_key("app/ci.yml", "main", "scan"),
        incident_key("app/ci.yml", "dev", "build"),
        incident_key("app/cd.yml", "main", "build"),
    }
    assert len(keys) == 4
    assert "--" not in incident_key("a", "feat--x", "b")


def test_select_open_incidents_filters_pipeline_branch_and_state() -> None:
    def issue(number: int, branch: str, state: str = "open", body_marker: bool = True) -> Issue:
        m = IncidentMarker(
            incident_key("app/ci.yml", branch, "build"), "app/ci.yml", branch, "build", T0, "1"
        )
        body = "x\n" + (m.render() if body_marker else "")
        return Issue(number, "t", body, state, ("cicd-incident",), T0, T0)  # type: ignore[arg-type]

    issues = [
        issue(5, "main"),
        issue(3, "main"),
        issue(4, "dev"),
        issue(6, "main", "closed"),
        issue(7, "main", body_marker=False),
    ]
    assert [i.number for i, _ in select_open_incidents(issues, "app/ci.yml", "main")] == [3, 5]


# -- the plan ---------------------------------------------------------------------------------------


def test_first_failure_creates_one_issue_with_marker_and_labels() -> None:
    p = plan(ctx(("build", "success"), ("scan", "failure"), ("deploy", "skipped")), [])
    assert p.outcome == "failure"
    [action] = p.actions
    assert action.kind == "create"
    assert action.stage == "scan"
    assert action.create is not None
    assert action.create.labels == ("deployment-failure", "cicd-incident")
    assert action.create.key == f"{incident_key('app/ci.yml', 'main', 'scan')}:run:101"
    assert not action.create.title.startswith(URGENT_PREFIX)
    marker = IncidentMarker.parse(action.create.body)
    assert marker is not None
    assert marker.stage == "scan"
    assert marker.first_run_id == "101"
    assert marker.first_failure_at == T0
    assert "Failure point: scan" in action.create.body
    assert {lbl.name for lbl in p.labels} == {"deployment-failure", "cicd-incident", "escalated"}
    assert all(lbl.color and lbl.description for lbl in p.labels)


def test_repeat_failure_comments_on_the_open_incident() -> None:
    p = plan(ctx(("build", "failure")), [incident(12)], consecutive=2)
    [action] = p.actions
    assert (action.kind, action.number) == ("comment", 12)
    assert action.comment is not None
    assert action.comment.key == comment_key(incident_key("app/ci.yml", "main", "build"), "101", 1)
    assert "Failed again" in action.comment.body
    assert "**2**" in action.comment.body
    assert action.escalation is None
    assert p.labels == ()  # nothing new to label


def test_same_run_attempt_never_comments_twice() -> None:
    key = comment_key(incident_key("app/ci.yml", "main", "build"), "101", 1)
    p = plan(ctx(("build", "failure")), [incident(12, keys=frozenset({key}))], consecutive=2)
    assert p.actions[0].kind == "unchanged"
    assert p.actions[0].comment is None
    assert not p.writes


def test_the_attempt_that_opened_the_incident_does_not_comment_on_it() -> None:
    p = plan(ctx(("build", "failure")), [incident(12, first_run="101")])
    assert p.actions[0].kind == "unchanged"


def test_a_new_attempt_of_the_same_run_comments() -> None:
    p = plan(ctx(("build", "failure"), run_info=run(attempt=2)), [incident(12, first_run="101")])
    assert p.actions[0].kind == "comment"
    assert p.actions[0].comment is not None
    assert p.actions[0].comment.key.endswith(":run:101:attempt:2")


def test_escalation_at_threshold_adds_label_title_and_mentions_once() -> None:
    p = plan(ctx(("build", "failure")), [incident(12)], consecutive=3)
    esc = p.actions[0].escalation
    assert esc is not None
    assert esc.comment is not None
    assert esc.add_label == "escalated"
    assert esc.title == URGENT_PREFIX + "Pipeline failure: build failed on main (app)"
    assert "@org/platform-team @alice" in esc.comment.body
    assert "3 consecutive" in esc.comment.body
    # once escalated (label, title, comment all present), a 4th failure only comments
    done = incident(
        12,
        labels=("deployment-failure", "cicd-incident", "escalated"),
        title=esc.title,
        keys=frozenset({esc.comment.key}),
    )
    again = plan(ctx(("build", "failure")), [done], consecutive=4)
    assert again.actions[0].escalation is None
    assert again.actions[0].kind == "comment"


def test_partial_escalation_is_completed_without_a_second_comment() -> None:
    ekey = f"{incident_key('app/ci.yml', 'main', 'build')}:escalated"
    half = incident(12, keys=frozenset({ekey}))  # comment posted, label and title missing
    esc = plan(ctx(("build", "failure")), [half], consecutive=5).actions[0].escalation
    assert esc is not None
    assert esc.comment is None
    assert esc.add_label == "escalated"
    assert esc.title


def test_below_threshold_no_escalation_and_threshold_is_configurable() -> None:
    assert plan(ctx(("build", "failure")), [incident(12)], consecutive=2).actions[0].escalation is None
    p = plan_incidents(
        ctx(("build", "failure")),
        IncidentSettings(escalate_after=2),
        [incident(12)],
        consecutive=2,
        now=T0,
        app="app",
        context_path="c",
    )
    assert p.actions[0].escalation is not None


def test_new_issue_past_threshold_is_created_escalated() -> None:
    action = plan(ctx(("deploy", "failure")), [], consecutive=4).actions[0]
    assert action.create is not None
    assert action.create.title.startswith(URGENT_PREFIX)
    assert "escalated" in action.create.labels
    assert "@org/platform-team" in action.create.body
    assert action.escalates


def test_success_resolves_open_incidents_with_mttr() -> None:
    p = plan(ctx(("build", "success"), ("scan", "success")), [incident(12), incident(13, "scan")])
    assert p.outcome == "success"
    assert [(a.kind, a.number, a.close) for a in p.actions] == [("resolve", 12, True), ("resolve", 13, True)]
    assert p.actions[0].mttr == timedelta(hours=2)
    assert p.actions[0].comment is not None
    assert "2h 00m 00s" in p.actions[0].comment.body
    assert "runs/101" in p.actions[0].comment.body


def test_only_stages_that_passed_are_resolved() -> None:
    # deploy was skipped on this run (e.g. a pull request): its incident stays open
    p = plan(ctx(("build", "success"), ("deploy", "skipped")), [incident(12), incident(14, "deploy")])
    assert [a.number for a in p.actions] == [12]


def test_a_failure_of_one_stage_resolves_another_that_passed() -> None:
    p = plan(
        ctx(("build", "success"), ("deploy", "failure")),
        [incident(12), incident(14, "deploy")],
        consecutive=2,
    )
    kinds = {a.stage: a.kind for a in p.actions}
    assert kinds == {"deploy": "comment", "build": "resolve"}


def test_resolution_comment_is_not_repeated() -> None:
    rkey = f"{incident_key('app/ci.yml', 'main', 'build')}:resolved"
    p = plan(ctx(("build", "success")), [incident(12, keys=frozenset({rkey}))])
    assert p.actions[0].comment is None
    assert p.actions[0].close


def test_resolve_all_closes_every_incident_of_pipeline_and_branch() -> None:
    p = plan(ctx(), [incident(12), incident(14, "deploy")], resolve_all=True)
    assert [a.number for a in p.actions] == [12, 14]


@pytest.mark.parametrize("result", ["cancelled", "skipped"])
def test_cancelled_and_skipped_runs_are_ignored(result: str) -> None:
    p = plan(
        ctx(("build", "success"), ("scan", result)) if result == "cancelled" else ctx(("b", "skipped")),
        [incident(12)],
    )
    assert p.actions == ()
    assert p.ignored
    assert not p.writes


def test_disabled_incidents_do_nothing() -> None:
    p = plan_incidents(
        ctx(("build", "failure")),
        IncidentSettings(enabled=False),
        [],
        consecutive=9,
        now=T0,
        app="a",
        context_path="",
    )
    assert p.ignored == "incidents.enabled is false"
    assert not p.actions


def test_duplicate_open_incidents_converge_on_the_oldest() -> None:
    p = plan(ctx(("build", "failure")), [incident(20), incident(12)], consecutive=2)
    action = p.actions[0]
    assert action.number == 12
    assert action.duplicates == (20,)
    assert plan_to_json(p)["actions"][0]["duplicates"] == [20]


def test_settings_validation() -> None:
    with pytest.raises(ConfigError, match=r"incidents\.labels"):
        IncidentSettings(labels=())
    with pytest.raises(ConfigError, match=r"incidents\.escalation_label"):
        IncidentSettings(escalation_label="cicd-incident")
    with pytest.raises(ConfigError, match=r"incidents\.context_dir"):
        IncidentSettings(context_dir="../outside")
    assert IncidentSettings(owners=("@org/team", "bob")).mentions == ("@org/team", "@bob")


def test_issue_opened_escalated_is_never_mentioned_again() -> None:
    """Found by test_incidents_properties: a re-run report of an issue that was opened already
    escalated posted a second mention (the first one is in the body, not in a comment)."""
    created = plan(ctx(("build", "failure")), [], consecutive=3).actions[0].create
    assert created is not None
    marker = IncidentMarker.parse(created.body)
    assert marker is not None
    assert marker.escalated
    reopened = OpenIncident(1, created.title, created.labels, marker)
    action = plan(ctx(("build", "failure")), [reopened], consecutive=3).actions[0]
    assert action.escalation is None
    assert action.kind == "unchanged"
    # a human removed the label: it is put back, still without a second mention
    unlabelled = OpenIncident(1, created.title, ("deployment-failure", "cicd-incident"), marker)
    esc = plan(ctx(("build", "failure")), [unlabelled], consecutive=4).actions[0].escalation
    assert esc is not None
    assert esc.comment is None
    assert esc.add_label == "escalated"


def test_titles_stay_within_githubs_limit_even_once_escalated() -> None:
    from devops_agent.incidents.render import MAX_TITLE, incident_title

    long_branch = "feature/" + "x" * 400
    title = incident_title("app", "build", long_branch, urgent=False)
    assert len(URGENT_PREFIX + title) <= MAX_TITLE
    assert title.endswith("…")
    c = ctx(("build", "failure"), run_info=run(branch=long_branch))
    action = plan(c, [incident(3, title=title, branch=long_branch)], consecutive=3).actions[0]
    assert action.escalation is not None
    assert action.escalation.title is not None
    assert len(action.escalation.title) <= MAX_TITLE


def test_labels_with_commas_are_refused() -> None:
    with pytest.raises(ConfigError, match="comma"):
        IncidentSettings(labels=("ci,cd",))
