"""The fake GitHub server is held to GitHub's official OpenAPI description, and the check can fail."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from tests.fakes.github import regenerate_openapi
from tests.fakes.github.contract import ContractValidator, load_spec, operations, spec_version
from tests.fakes.github.harness import FakeClock, GitHubHarness
from tests.fakes.github.server import FakeGitHub, shared_validator

OWNER_REPO = {"owner": "octo-org", "repo": "hello-world"}


@pytest.fixture(scope="module")
def validator() -> ContractValidator:
    return shared_validator()


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


def test_trimmed_copy_records_its_source_version() -> None:
    assert spec_version().startswith("@octokit/openapi@")
    assert load_spec()["openapi"].startswith("3.0")


def test_every_fake_route_is_a_described_operation_and_vice_versa() -> None:
    described = operations()
    routes = FakeGitHub.route_table()
    assert routes == described
    assert {(m.upper(), p) for m, p in regenerate_openapi.OPERATIONS} == described


def test_trim_keeps_only_listed_operations_and_their_components() -> None:
    source = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/a": {"get": {"responses": {"200": {"$ref": "#/components/responses/r"}}}},
            "/b": {"get": {"responses": {}}},
        },
        "components": {
            "responses": {
                "r": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/s"}}}}
            },
            "schemas": {"s": {"type": "object", "example": {"x": 1}}, "unused": {"type": "string"}},
        },
    }
    original = regenerate_openapi.OPERATIONS
    try:
        regenerate_openapi.OPERATIONS = (("get", "/a"),)
        trimmed = regenerate_openapi.trim(source, "0.0.0")
    finally:
        regenerate_openapi.OPERATIONS = original
    assert list(trimmed["paths"]) == ["/a"]
    assert trimmed["components"]["schemas"] == {"s": {"type": "object"}}
    assert trimmed["info"]["x-trimmed-from"].startswith("@octokit/openapi@0.0.0")


# -- the check rejects malformed requests and responses ----------------------------------------------
def test_validator_accepts_a_valid_request(validator: ContractValidator) -> None:
    body = json.dumps({"title": "t", "labels": ["a"]}).encode()
    assert validator.check_request("POST", "/repos/{owner}/{repo}/issues", OWNER_REPO, {}, body) is None


@pytest.mark.parametrize(
    ("pattern", "query", "body", "needle"),
    [
        ("/repos/{owner}/{repo}/issues", {}, {"labels": ["a"]}, "title"),  # required field missing
        ("/repos/{owner}/{repo}/issues", {}, {"title": "t", "labels": "a"}, "array"),  # wrong type
        ("/repos/{owner}/{repo}/deployments", {}, {"ref": "main", "auto_merge": "no"}, "boolean"),
    ],
)
def test_validator_rejects_malformed_requests(
    validator: ContractValidator, pattern: str, query: dict[str, str], body: object, needle: str
) -> None:
    violation = validator.check_request("POST", pattern, OWNER_REPO, query, json.dumps(body).encode())
    assert violation is not None
    assert needle in violation.message


def test_validator_rejects_bad_query_and_unknown_environment_field(validator: ContractValidator) -> None:
    bad_state = validator.check_request(
        "GET", "/repos/{owner}/{repo}/issues", OWNER_REPO, {"state": "bogus"}, b""
    )
    assert bad_state is not None
    assert "state" in bad_state.message
    env = dict(OWNER_REPO, environment_name="production")
    put = json.dumps({"wait_timer": 1, "can_admins_bypass": False}).encode()
    assert validator.check_request(
        "PUT", "/repos/{owner}/{repo}/environments/{environment_name}", env, {}, put
    )


def test_validator_rejects_malformed_responses(validator: ContractValidator) -> None:
    label = {"id": 1, "node_id": "x", "url": "https://x.invalid/", "name": "a", "description": None}
    pattern = "/repos/{owner}/{repo}/labels/{name}"
    params = dict(OWNER_REPO, name="a")
    missing = validator.check_response("GET", pattern, params, {}, b"", 200, json.dumps(label).encode())
    assert missing is not None
    assert "color" in missing.message
    good = dict(label, color="ededed", default=False)
    assert validator.check_response("GET", pattern, params, {}, b"", 200, json.dumps(good).encode()) is None
    wrong = dict(good, id="one")
    assert validator.check_response("GET", pattern, params, {}, b"", 200, json.dumps(wrong).encode())
    undeclared = validator.check_response("GET", pattern, params, {}, b"", 418, b"{}")
    assert undeclared is not None


def test_server_answers_400_and_records_a_malformed_request(fake: FakeGitHub) -> None:
    response = requests.post(
        f"{fake.api_url}/repos/octo-org/hello-world/issues",
        json={"labels": ["no-title"]},
        headers={"Authorization": f"token {fake.token}"},
        timeout=10,
    )
    assert response.status_code == 400
    assert len(fake.violations) == 1
    assert fake.violations[0].direction == "request"
    assert fake.issues == {}


def test_server_records_a_malformed_response(fake: FakeGitHub) -> None:
    fake.add_artifact("dist")
    fake.inject("corrupt", method="GET", path=r"/artifacts$")
    response = requests.get(
        f"{fake.api_url}/repos/octo-org/hello-world/actions/artifacts",
        headers={"Authorization": f"token {fake.token}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert [v.direction for v in fake.violations] == ["response"]
    assert "id" in fake.violations[0].message


def test_requests_without_the_token_are_refused(fake: FakeGitHub) -> None:
    response = requests.get(f"{fake.api_url}/repos/octo-org/hello-world", timeout=10)
    assert response.status_code == 401


def test_a_full_session_has_no_violations() -> None:
    h = GitHubHarness(FakeClock())
    try:
        h.add_branch("topic")
        h.add_pull("topic")
        h.platform.list_pull_requests()
        h.platform.get_branch("topic")
        h.platform.get_repository()
        assert h.fake.validator is not None
        assert h.fake.log
    finally:
        h.close()
    assert h.fake.violations == []
