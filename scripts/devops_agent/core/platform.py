"""The platform interface: what the stages need from GitHub (or from the local embedded store).

Two implementations pass the same contract tests (``tests/test_platform_contract.py``):

- ``devops_agent.platform.github.GitHubPlatform`` — the GitHub REST API (github.com or GHES),
  through PyGithub plus raw calls on its requester, with our retry policy
  (``devops_agent.platform.retry``);
- ``devops_agent.platform.local.LocalPlatform`` — the same operations on the SQLite state store
  (``<app>/.devops-agent/state.db``), the default of ``devops-agent run`` on a workstation.

Stages code against :class:`Platform` only and obtain one with :func:`get_platform`.

Conventions of this interface (stable; later changes are additive only):

- Every value returned is a frozen dataclass; sequences are tuples; times are timezone-aware UTC
  ``datetime`` objects.
- ``list_*`` methods follow every page and return everything (or at most ``limit`` items when a
  ``limit`` parameter exists), ordered as documented on each method.
- ``create_*`` methods are safe to call again after a failure: the GitHub backend looks an object
  up before re-sending a POST that may have succeeded, so a retried call never creates a duplicate
  issue, comment or deployment. Pass ``key=`` to make a create idempotent across *separate* runs
  too (the key is stored in the object: a hidden HTML comment in issue/comment bodies, the payload of
  a deployment) and :meth:`Platform.find_issue_by_key` / ``list_deployments`` find it again.
- ``get_*`` methods return ``None`` when the object does not exist; ``delete_*`` methods return
  ``False`` when it was already gone (deleting twice is not an error).
- Errors are :class:`~devops_agent.core.errors.PlatformError` (exit 1) with the cause and the fix;
  a limit that persists beyond the retry budget is a
  :class:`~devops_agent.core.errors.RateLimitError` naming the limit. ``ConfigError`` (exit 2) is
  raised for unusable settings (e.g. GitHub selected but no token).
- Tokens are never logged, never part of an error message, never stored by the local backend.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from devops_agent.core.errors import ConfigError

IssueState = Literal["open", "closed"]
IssueStateFilter = Literal["open", "closed", "all"]
CloseReason = Literal["completed", "not_planned"]
DeploymentState = Literal["error", "failure", "inactive", "in_progress", "queued", "pending", "success"]
ReviewState = Literal["approved", "rejected"]
ReviewerType = Literal["User", "Team"]
OwnerKind = Literal["user", "org"]
PackageType = Literal["container", "npm", "maven", "rubygems", "nuget", "docker"]
BranchPolicyType = Literal["branch", "tag"]

#: Environment variables that may carry the GitHub token, in order of preference.
TOKEN_ENV_VARS: tuple[str, ...] = ("DEVOPS_AGENT_GITHUB_TOKEN", "GITHUB_TOKEN", "GH_TOKEN")

#: The hidden marker that carries an idempotency key in issue and comment bodies.
KEY_MARKER_PREFIX = "<!-- devops-agent:key="
KEY_MARKER_SUFFIX = " -->"
#: The key under which an idempotency key is stored in a deployment's payload.
DEPLOYMENT_KEY_FIELD = "devops_agent_key"


def key_marker(key: str) -> str:
    """The hidden HTML comment that tags a body with an idempotency key."""
    if not key or "--" in key or "\n" in key:
        raise ConfigError(
            f"idempotency key {key!r} is empty or contains '--' or a newline",
            "use letters, digits, '.', '_', ':', '/' or single '-'",
            field="key",
        )
    return f"{KEY_MARKER_PREFIX}{key}{KEY_MARKER_SUFFIX}"


def body_key(body: str | None) -> str | None:
    """The idempotency key hidden in ``body`` (see :func:`key_marker`), if any."""
    if not body:
        return None
    start = body.find(KEY_MARKER_PREFIX)
    if start < 0:
        return None
    start += len(KEY_MARKER_PREFIX)
    end = body.find(KEY_MARKER_SUFFIX, start)
    return body[start:end] if end > start else None


def with_key(body: str, key: str | None) -> str:
    """``body`` tagged with ``key`` (unchanged when there is no key or it is already tagged)."""
    if key is None or body_key(body) == key:
        return body
    return f"{body.rstrip()}\n\n{key_marker(key)}\n"


def bundle_subject_digest(bundle: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the first subject of a Sigstore bundle's DSSE in-toto statement, or ""."""
    import base64
    import json

    try:
        envelope = bundle["dsseEnvelope"]
        statement = json.loads(base64.b64decode(envelope["payload"]))
        return f"sha256:{statement['subject'][0]['digest']['sha256']}"
    except (KeyError, IndexError, ValueError, TypeError):
        return ""


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepoRef:
    """``owner/name`` of a repository."""

    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @classmethod
    def parse(cls, value: str, *, field_name: str = "repository") -> RepoRef:
        owner, sep, name = value.strip().partition("/")
        if not sep or not owner or not name or "/" in name:
            raise ConfigError(
                f"{value!r} is not an owner/name repository",
                "use the form owner/name, e.g. octo-org/hello-world",
                field=field_name,
            )
        return cls(owner, name)


@dataclass(frozen=True)
class Repository:
    full_name: str
    default_branch: str
    private: bool
    html_url: str
    owner_kind: OwnerKind  # "org" for an organisation-owned repository
    id: int = 0


@dataclass(frozen=True)
class Branch:
    name: str
    sha: str
    protected: bool
    #: Date of the head commit (committer date); None when the backend does not know it.
    commit_date: datetime | None = None


@dataclass(frozen=True)
class BranchProtection:
    """The parts of a branch protection rule the pipeline reads."""

    branch: str
    required_status_checks: tuple[str, ...] = ()
    required_approving_review_count: int = 0
    enforce_admins: bool = False
    allow_force_pushes: bool = False
    allow_deletions: bool = False


@dataclass(frozen=True)
class PullRequest:
    number: int
    title: str
    state: str  # open | closed
    head_ref: str
    head_sha: str
    base_ref: str
    html_url: str = ""


@dataclass(frozen=True)
class Label:
    name: str
    color: str = "ededed"
    description: str = ""


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    state: IssueState
    labels: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    html_url: str = ""
    assignees: tuple[str, ...] = ()
    comments: int = 0

    @property
    def key(self) -> str | None:
        """The idempotency key this issue was created with, if any."""
        return body_key(self.body)


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    created_at: datetime
    author: str = ""
    html_url: str = ""

    @property
    def key(self) -> str | None:
        return body_key(self.body)


@dataclass(frozen=True)
class Deployment:
    id: int
    sha: str
    ref: str
    environment: str
    task: str
    payload: Mapping[str, Any]
    description: str
    created_at: datetime
    updated_at: datetime
    production_environment: bool = False
    transient_environment: bool = False
    creator: str = ""

    @property
    def key(self) -> str | None:
        value = self.payload.get(DEPLOYMENT_KEY_FIELD)
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class DeploymentStatus:
    id: int
    deployment_id: int
    state: DeploymentState
    description: str
    environment: str
    created_at: datetime
    environment_url: str = ""
    log_url: str = ""


@dataclass(frozen=True)
class Reviewer:
    """A required reviewer of an environment (``id`` is what the API needs)."""

    type: ReviewerType
    id: int
    login: str = ""  # user login or team slug, for display


@dataclass(frozen=True)
class BranchPolicy:
    """A custom deployment branch/tag policy of an environment (``name`` is a fnmatch pattern)."""

    name: str
    type: BranchPolicyType = "branch"
    id: int = 0


@dataclass(frozen=True)
class DeploymentBranchPolicy:
    """Which refs may deploy to an environment. ``None`` on an environment means: any ref."""

    protected_branches: bool
    custom_branch_policies: bool

    def __post_init__(self) -> None:
        if self.protected_branches and self.custom_branch_policies:
            raise ConfigError(
                "deployment branch policy cannot be both protected_branches and custom",
                "choose either protected branches only or custom branch policies",
                field="deployment_branch_policy",
            )


@dataclass(frozen=True)
class EnvironmentSpec:
    """The full protection of an environment: what :meth:`Platform.put_environment` sends.

    GitHub's ``PUT /repos/{o}/{r}/environments/{name}`` resets every field not sent, so a spec is
    always complete. ``branch_policies`` is applied only with custom branch policies.
    """

    name: str
    reviewers: tuple[Reviewer, ...] = ()
    wait_timer: int = 0  # minutes, 0..43200
    prevent_self_review: bool = False
    can_admins_bypass: bool = True
    deployment_branch_policy: DeploymentBranchPolicy | None = None
    branch_policies: tuple[BranchPolicy, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.wait_timer <= 43200:
            raise ConfigError(
                f"wait_timer {self.wait_timer} is out of range",
                "use minutes between 0 and 43200 (30 days)",
                field=f"environments.{self.name}.wait_timer",
            )
        if len(self.reviewers) > 6:
            raise ConfigError(
                f"{len(self.reviewers)} reviewers given; GitHub allows at most 6",
                "list at most 6 users or teams",
                field=f"environments.{self.name}.reviewers",
            )


@dataclass(frozen=True)
class Environment:
    """An environment as it is now (same fields as :class:`EnvironmentSpec`, plus ids/times)."""

    name: str
    id: int
    reviewers: tuple[Reviewer, ...]
    wait_timer: int
    prevent_self_review: bool
    can_admins_bypass: bool
    deployment_branch_policy: DeploymentBranchPolicy | None
    branch_policies: tuple[BranchPolicy, ...] = ()
    html_url: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def spec(self) -> EnvironmentSpec:
        """The spec that would reproduce this environment (for diffs against a desired spec)."""
        return EnvironmentSpec(
            name=self.name,
            reviewers=self.reviewers,
            wait_timer=self.wait_timer,
            prevent_self_review=self.prevent_self_review,
            can_admins_bypass=self.can_admins_bypass,
            deployment_branch_policy=self.deployment_branch_policy,
            branch_policies=self.branch_policies,
        )


@dataclass(frozen=True)
class PendingDeployment:
    """An environment a workflow run waits on for review."""

    environment: str
    environment_id: int
    wait_timer: int
    wait_timer_started_at: datetime | None
    current_user_can_approve: bool
    reviewers: tuple[Reviewer, ...] = ()


@dataclass(frozen=True)
class WorkflowRun:
    id: int
    name: str
    workflow_id: int
    head_branch: str
    head_sha: str
    event: str
    status: str  # queued | in_progress | completed | waiting | requested | pending
    conclusion: str | None  # success | failure | cancelled | skipped | timed_out | ... | None
    run_number: int
    run_attempt: int
    created_at: datetime
    updated_at: datetime
    html_url: str = ""


@dataclass(frozen=True)
class Job:
    id: int
    run_id: int
    name: str
    status: str
    conclusion: str | None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    html_url: str = ""


@dataclass(frozen=True)
class Artifact:
    id: int
    name: str
    size_in_bytes: int
    expired: bool
    created_at: datetime
    run_id: int | None = None
    head_branch: str | None = None


@dataclass(frozen=True)
class Cache:
    id: int
    key: str
    ref: str
    size_in_bytes: int
    created_at: datetime
    last_accessed_at: datetime


@dataclass(frozen=True)
class PackageOwner:
    """Who owns a package: a user (``/users/{login}/packages``) or an organisation (``/orgs/…``)."""

    kind: OwnerKind
    login: str


@dataclass(frozen=True)
class PackageVersion:
    id: int
    name: str  # for containers: the manifest digest (sha256:…)
    tags: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    html_url: str = ""


@dataclass(frozen=True)
class SarifUpload:
    id: str
    url: str = ""


@dataclass(frozen=True)
class Attestation:
    id: int
    subject_digest: str = ""  # "sha256:<hex>" when known
    bundle: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestStats:
    """Counters of the HTTP requests a backend made (for benchmarks and the job summary)."""

    requests: int = 0  # every attempt sent, retries included
    reads: int = 0  # GET/HEAD attempts
    writes: int = 0  # POST/PUT/PATCH/DELETE attempts
    retries: int = 0  # attempts that repeated an earlier one
    lookups: int = 0  # requests made to check whether a failed POST had succeeded
    waited_seconds: float = 0.0  # total time slept by the retry policy
    rate_limited: int = 0  # responses that were a rate limit (primary, secondary, 429)


# --------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------


class Platform(abc.ABC):
    """Everything the pipeline stages do on GitHub, behind one interface."""

    #: "github" or "local"
    kind: str
    repo: RepoRef

    # -- repository ----------------------------------------------------------------------------
    @abc.abstractmethod
    def get_repository(self) -> Repository:
        """The repository (its default branch in particular)."""

    # -- branches and pull requests ------------------------------------------------------------
    @abc.abstractmethod
    def list_branches(self) -> tuple[Branch, ...]:
        """All branches, sorted by name. ``commit_date`` may be None on GitHub (one more GET per
        branch would be needed): call :meth:`get_branch` for the ones you decide on."""

    @abc.abstractmethod
    def get_branch(self, name: str) -> Branch | None:
        """One branch with its head commit date."""

    @abc.abstractmethod
    def get_branch_protection(self, branch: str) -> BranchProtection | None:
        """The protection rule of ``branch``; None when unprotected."""

    @abc.abstractmethod
    def delete_branch(self, name: str) -> bool:
        """Delete a branch (its ref). False when it did not exist."""

    @abc.abstractmethod
    def list_pull_requests(
        self, *, state: IssueStateFilter = "open", head: str | None = None, base: str | None = None
    ) -> tuple[PullRequest, ...]:
        """Pull requests, newest first. ``head`` is a branch name of this repository."""

    # -- issues, labels, comments --------------------------------------------------------------
    @abc.abstractmethod
    def list_issues(
        self, *, labels: Sequence[str] = (), state: IssueStateFilter = "open"
    ) -> tuple[Issue, ...]:
        """Issues (never pull requests) carrying ALL ``labels``, newest first."""

    @abc.abstractmethod
    def get_issue(self, number: int) -> Issue | None:
        """One issue by number."""

    @abc.abstractmethod
    def find_issue_by_key(
        self, key: str, *, labels: Sequence[str] = (), state: IssueStateFilter = "all"
    ) -> Issue | None:
        """The newest issue created with idempotency ``key`` (searched among ``labels``)."""

    @abc.abstractmethod
    def create_issue(
        self,
        title: str,
        body: str,
        *,
        labels: Sequence[str] = (),
        assignees: Sequence[str] = (),
        key: str | None = None,
    ) -> Issue:
        """Create an issue. With ``key``: return the existing issue with that key instead."""

    @abc.abstractmethod
    def update_issue(
        self,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        labels: Sequence[str] | None = None,
        state: IssueState | None = None,
        state_reason: CloseReason | None = None,
    ) -> Issue:
        """Change the given fields (``labels`` replaces the whole set). Idempotent."""

    def close_issue(self, number: int, *, reason: CloseReason = "completed") -> Issue:
        """Close an issue (idempotent)."""
        return self.update_issue(number, state="closed", state_reason=reason)

    @abc.abstractmethod
    def add_labels(self, number: int, labels: Sequence[str]) -> tuple[str, ...]:
        """Add labels to an issue (creating missing labels with default colour); returns all."""

    @abc.abstractmethod
    def add_comment(self, number: int, body: str, *, key: str | None = None) -> Comment:
        """Comment on an issue. With ``key``: return the existing comment with that key instead."""

    @abc.abstractmethod
    def list_comments(self, number: int) -> tuple[Comment, ...]:
        """Comments of an issue, oldest first."""

    @abc.abstractmethod
    def list_labels(self) -> tuple[Label, ...]:
        """Labels of the repository, sorted by name."""

    @abc.abstractmethod
    def create_label(self, name: str, *, color: str = "ededed", description: str = "") -> Label:
        """Create a label; when it exists already, return it unchanged (idempotent)."""

    # -- deployments ---------------------------------------------------------------------------
    @abc.abstractmethod
    def create_deployment(
        self,
        ref: str,
        environment: str,
        *,
        description: str = "",
        payload: Mapping[str, Any] | None = None,
        task: str = "deploy",
        production_environment: bool | None = None,
        transient_environment: bool = False,
        key: str | None = None,
    ) -> Deployment:
        """Record a deployment of ``ref`` (a sha, preferably). Always sent with
        ``required_contexts=[]`` and ``auto_merge=false`` (a deploy from a pipeline run must not
        wait for commit statuses or merge the default branch). With ``key`` (stored in the
        payload): return the existing deployment with that key instead."""

    @abc.abstractmethod
    def list_deployments(
        self,
        *,
        environment: str | None = None,
        sha: str | None = None,
        ref: str | None = None,
        task: str | None = None,
        limit: int | None = None,
    ) -> tuple[Deployment, ...]:
        """Deployments matching every given filter, newest first."""

    @abc.abstractmethod
    def get_deployment(self, deployment_id: int) -> Deployment | None:
        """One deployment by id."""

    @abc.abstractmethod
    def create_deployment_status(
        self,
        deployment_id: int,
        state: DeploymentState,
        *,
        description: str = "",
        environment_url: str = "",
        log_url: str = "",
        auto_inactive: bool = True,
    ) -> DeploymentStatus:
        """Add a status. ``auto_inactive`` marks older successful deployments of the same
        environment inactive when ``state`` is success (GitHub's behaviour)."""

    @abc.abstractmethod
    def list_deployment_statuses(self, deployment_id: int) -> tuple[DeploymentStatus, ...]:
        """Statuses of a deployment, newest first (the first one is the current state)."""

    # -- environments --------------------------------------------------------------------------
    @abc.abstractmethod
    def list_environments(self) -> tuple[Environment, ...]:
        """All environments, sorted by name."""

    @abc.abstractmethod
    def get_environment(self, name: str) -> Environment | None:
        """One environment with its protection rules and branch policies."""

    @abc.abstractmethod
    def put_environment(self, spec: EnvironmentSpec) -> Environment:
        """Create or update an environment to match ``spec`` EXACTLY: every protection field is
        sent, and with custom branch policies the policy set is made equal to
        ``spec.branch_policies`` (missing ones created, extra ones deleted). Needs an admin token
        on GitHub (GITHUB_TOKEN cannot)."""

    @abc.abstractmethod
    def resolve_reviewer(self, type_: ReviewerType, name: str) -> Reviewer:
        """A user login or ``org/team-slug`` → the reviewer id the API needs. PlatformError when it
        does not exist."""

    # -- pending deployments (environment approvals) -------------------------------------------
    @abc.abstractmethod
    def list_pending_deployments(self, run_id: int) -> tuple[PendingDeployment, ...]:
        """Environments workflow run ``run_id`` waits on."""

    @abc.abstractmethod
    def review_pending_deployments(
        self, run_id: int, environment_ids: Sequence[int], state: ReviewState, comment: str
    ) -> tuple[Deployment, ...]:
        """Approve or reject. ``comment`` is required (non-blank). On GitHub this needs the
        reviewer's own user token; GITHUB_TOKEN and App tokens cannot review."""

    # -- workflow runs and jobs ----------------------------------------------------------------
    @abc.abstractmethod
    def list_workflow_runs(
        self,
        workflow: str | int,
        *,
        branch: str | None = None,
        event: str | None = None,
        status: str | None = None,
        limit: int | None = 100,
    ) -> tuple[WorkflowRun, ...]:
        """Runs of a workflow (file name like ``devsecops.yml`` or id), newest first. GitHub
        returns at most 1,000 runs for a query."""

    @abc.abstractmethod
    def get_workflow_run(self, run_id: int) -> WorkflowRun | None:
        """One run by id."""

    @abc.abstractmethod
    def list_jobs(self, run_id: int) -> tuple[Job, ...]:
        """Jobs of the latest attempt of a run."""

    # -- artifacts and caches ------------------------------------------------------------------
    @abc.abstractmethod
    def list_artifacts(self, *, name: str | None = None) -> tuple[Artifact, ...]:
        """Workflow artifacts of the repository, newest first."""

    @abc.abstractmethod
    def delete_artifact(self, artifact_id: int) -> bool:
        """Delete an artifact. False when it was already gone."""

    @abc.abstractmethod
    def list_caches(self, *, key: str | None = None, ref: str | None = None) -> tuple[Cache, ...]:
        """Actions caches (``key`` is a prefix), most recently used first."""

    @abc.abstractmethod
    def delete_cache(self, cache_id: int) -> bool:
        """Delete a cache by id. False when it was already gone."""

    # -- packages ------------------------------------------------------------------------------
    @abc.abstractmethod
    def list_package_versions(
        self, owner: PackageOwner, package_type: PackageType, package_name: str
    ) -> tuple[PackageVersion, ...]:
        """Every version of a package, newest first. Empty when the package does not exist."""

    @abc.abstractmethod
    def delete_package_version(
        self, owner: PackageOwner, package_type: PackageType, package_name: str, version_id: int
    ) -> bool:
        """Delete one version. False when it was already gone."""

    # -- code scanning and attestations --------------------------------------------------------
    @abc.abstractmethod
    def upload_sarif(
        self,
        commit_sha: str,
        ref: str,
        sarif: bytes,
        *,
        tool_name: str | None = None,
        checkout_uri: str | None = None,
    ) -> SarifUpload:
        """Upload a SARIF document (raw JSON bytes; compressed and encoded here)."""

    @abc.abstractmethod
    def create_attestation(self, bundle: Mapping[str, Any]) -> Attestation:
        """Store a Sigstore bundle as an artifact attestation (not available on GHES)."""

    @abc.abstractmethod
    def list_attestations(self, subject_digest: str) -> tuple[Attestation, ...]:
        """Attestations of ``sha256:<hex>``."""

    # -- observability -------------------------------------------------------------------------
    @abc.abstractmethod
    def stats(self) -> RequestStats:
        """Request counters so far (all zero for the local backend)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, database)."""

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Choosing a backend
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformSettings:
    """Where :func:`get_platform` connects, built once from the environment."""

    kind: Literal["github", "local"]
    repo: RepoRef
    api_url: str = "https://api.github.com"
    server_url: str = "https://github.com"
    token: str | None = field(default=None, repr=False)  # never printed
    #: Why the local backend was chosen inside GitHub Actions ("" otherwise): stages show it.
    note: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str], app_dir: Path | None = None) -> PlatformSettings:
        """GitHub when running in Actions (``GITHUB_ACTIONS=true``) or when ``GITHUB_REPOSITORY``
        is set, with a token; local otherwise. ``DEVOPS_AGENT_PLATFORM=github|local`` forces it."""
        token = next((env[name] for name in TOKEN_ENV_VARS if env.get(name)), None)
        forced = env.get("DEVOPS_AGENT_PLATFORM", "").strip().lower()
        if forced not in ("", "github", "local"):
            raise ConfigError(
                f"unknown platform {forced!r}",
                "set DEVOPS_AGENT_PLATFORM to 'github' or 'local' (or unset it)",
                field="DEVOPS_AGENT_PLATFORM",
            )
        repository = env.get("GITHUB_REPOSITORY", "").strip()
        on_github = env.get("GITHUB_ACTIONS") == "true" or bool(repository)
        kind: Literal["github", "local"]
        if forced:
            kind = "github" if forced == "github" else "local"
        else:
            kind = "github" if on_github and token else "local"
        if kind == "local":
            name = (app_dir.resolve().name if app_dir else "") or "app"
            repo = RepoRef.parse(repository, field_name="GITHUB_REPOSITORY") if repository else None
            note = ""
            if on_github and not forced:
                note = (
                    "running in GitHub Actions without a token: using the local state store; "
                    "pass GITHUB_TOKEN (env: GITHUB_TOKEN: ${{ github.token }}) to record on GitHub"
                )
            return cls("local", repo or RepoRef("local", name), note=note)
        if not repository:
            raise ConfigError(
                "the GitHub platform needs the repository",
                "set GITHUB_REPOSITORY=owner/name (GitHub Actions sets it for you)",
                field="GITHUB_REPOSITORY",
            )
        if not token:
            raise ConfigError(
                "the GitHub platform needs a token and none is set",
                "pass a token in DEVOPS_AGENT_GITHUB_TOKEN, GITHUB_TOKEN or GH_TOKEN "
                "(e.g. `env: GITHUB_TOKEN: ${{ github.token }}`)",
                field="GITHUB_TOKEN",
            )
        server = env.get("GITHUB_SERVER_URL", "").strip().rstrip("/") or "https://github.com"
        api = env.get("GITHUB_API_URL", "").strip().rstrip("/") or _api_url_for(server)
        return cls("github", RepoRef.parse(repository, field_name="GITHUB_REPOSITORY"), api, server, token)


def _api_url_for(server_url: str) -> str:
    """github.com's API is api.github.com; a GHES server serves it under /api/v3."""
    if server_url in ("https://github.com", "http://github.com"):
        return "https://api.github.com"
    return f"{server_url}/api/v3"


def get_platform(app_dir: Path, env: Mapping[str, str] | None = None) -> Platform:
    """The platform for this invocation: GitHub in Actions (or when GITHUB_REPOSITORY and a token
    are set), the local state store of ``app_dir`` otherwise. See :class:`PlatformSettings`."""
    env = os.environ if env is None else env
    settings = PlatformSettings.from_env(env, app_dir)
    if settings.kind == "github":
        from devops_agent.platform.github import GitHubPlatform

        return GitHubPlatform.from_settings(settings)
    from devops_agent.platform.local import LocalPlatform

    return LocalPlatform.for_app(app_dir, repo=settings.repo)
