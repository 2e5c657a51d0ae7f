"""Random sequences of pipeline runs (failures of either stage, successes, cancelled runs, re-run
reports) through `devops-agent report-failure` on the local backend, checked against a model:

- at most one open incident per stage, and it is open exactly when the last run that decided the
  stage (failure or success) failed it;
- an incident is escalated exactly when, while it was open, the branch reached `escalate_after`
  consecutive failed runs; it is mentioned once and never escalated twice;
- every comment key is unique per issue; a closed incident has exactly one resolution comment.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devops_agent.core.platform import Issue
from devops_agent.core.state import StateStore
from devops_agent.incidents.model import IncidentMarker
from devops_agent.platform.local import LocalPlatform
from devops_agent.stages import incidents as stage

CONFIG = "version: 1\napp:\n  name: app\nbuild:\n  artifacts: [dist/*]\nincidents:\n  owners: [ops]\n"
# run kinds → the final job's needs
NEEDS = {
    "build-fails": {"build": "failure", "deploy": "skipped"},
    "deploy-fails": {"build": "success", "deploy": "failure"},
    "success": {"build": "success", "deploy": "success"},
    "pr-success": {"build": "success", "deploy": "skipped"},
    "cancelled": {"build": "success", "deploy": "cancelled"},
}
RUN_STATUS = {
    "build-fails": "failure",
    "deploy-fails": "failure",
    "success": "success",
    "pr-success": "success",
}


def report(app: Path, kind: str) -> None:
    needs = json.dumps({job: {"result": result, "outputs": {}} for job, result in NEEDS[kind].items()})
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = stage.main(["report-failure", "--app", str(app), "--needs", needs, "--branch", "main"], env={})
    assert code == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(NEEDS)), st.booleans()),
        min_size=1,
        max_size=9,
    )
)
def test_random_run_sequences_keep_the_invariants(runs: list[tuple[str, bool]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "app"
        (app / ".github").mkdir(parents=True)
        (app / ".github" / "devops-agent.yml").write_text(CONFIG, encoding="utf-8")
        streak = 0
        open_model: dict[str, bool] = {}  # stage → incident open
        escalated_model: dict[str, bool] = {}
        for kind, rerun in runs:
            with StateStore.for_app(app) as store:
                run_id = store.start_run(branch="main")
                store.finish_run(run_id, RUN_STATUS.get(kind, "cancelled"))
            report(app, kind)
            if rerun:
                report(app, kind)  # the final job re-run for the same attempt
            if kind == "cancelled":
                continue
            streak = streak + 1 if kind in ("build-fails", "deploy-fails") else 0
            for name, result in NEEDS[kind].items():
                if result == "failure":
                    if not open_model.get(name):
                        escalated_model[name] = False
                    open_model[name] = True
                    escalated_model[name] = escalated_model[name] or streak >= 3
                elif result == "success":
                    open_model[name] = False
            check(app, open_model, escalated_model)


def check(app: Path, open_model: dict[str, bool], escalated_model: dict[str, bool]) -> None:
    with LocalPlatform.for_app(app) as platform:
        issues: list[Issue] = list(platform.list_issues(labels=["cicd-incident"], state="all"))
        comments = {i.number: platform.list_comments(i.number) for i in issues}
    open_by_stage: dict[str, list[Issue]] = {}
    for issue in issues:
        marker = IncidentMarker.parse(issue.body)
        assert marker is not None
        keys = [c.key for c in comments[issue.number]]
        assert len(keys) == len(set(keys)), keys  # no comment twice
        mentions = sum("@ops" in c.body for c in comments[issue.number]) + ("@ops" in issue.body)
        assert mentions <= 1
        assert ("escalated" in issue.labels) == (mentions == 1) == issue.title.startswith("[URGENT] ")
        resolutions = sum("Recovered" in c.body for c in comments[issue.number])
        assert resolutions == (1 if issue.state == "closed" else 0)
        if issue.state == "open":
            open_by_stage.setdefault(marker.stage, []).append(issue)
    for name in ("build", "deploy"):
        current = open_by_stage.get(name, [])
        assert len(current) == (1 if open_model.get(name) else 0), (name, current)
        if current:
            assert ("escalated" in current[0].labels) == escalated_model[name]
