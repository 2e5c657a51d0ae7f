"""Which GitHub token is in use, and whether it can do what we are about to ask.

- Creating or changing an environment needs **Administration: write** on the repository: a
  repository admin's personal access token, or a GitHub App installation token with that
  permission. The workflow's ``GITHUB_TOKEN`` can never get it (``permissions:`` has no
  ``administration`` scope).
- Reviewing a pending deployment (approve/reject) must be done by a **required reviewer, as a
  user**: their own token (classic PAT with ``repo``, fine-grained with Deployments: write, or
  ``gh auth token``). ``GITHUB_TOKEN`` and App installation tokens are not users and cannot
  review; GitHub answers such requests with an error or silently ignores them.

Detection (no network): the token in use is the first of DEVOPS_AGENT_GITHUB_TOKEN,
GITHUB_TOKEN, GH_TOKEN (as in :class:`~devops_agent.core.platform.PlatformSettings`).

- ``ghs_…`` is an installation token — the workflow's ``GITHUB_TOKEN`` is one;
- inside GitHub Actions, a token equal to the ``GITHUB_TOKEN`` variable without a user-token
  prefix (``ghp_``, ``github_pat_``, ``gho_``, ``ghu_``) is taken to be the workflow token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from devops_agent.core.errors import ConfigError
from devops_agent.core.platform import TOKEN_ENV_VARS

TokenKind = Literal["workflow", "installation", "user", "unknown", "none"]
USER_PREFIXES = ("ghp_", "github_pat_", "gho_", "ghu_")
INSTALLATION_PREFIX = "ghs_"
DOCS = "https://github.com/org/devops-agent/blob/v1/docs/promote.md#tokens"


@dataclass(frozen=True)
class TokenInfo:
    kind: TokenKind
    source: str | None  # the variable it came from

    def describe(self) -> str:
        where = f" (from {self.source})" if self.source else ""
        return {
            "workflow": "the workflow's GITHUB_TOKEN",
            "installation": "a GitHub App installation token (ghs_…, like GITHUB_TOKEN)",
            "user": "a user token",
            "unknown": "a token of unknown kind",
            "none": "no token",
        }[self.kind] + where


def token_in_use(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    for name in TOKEN_ENV_VARS:
        if env.get(name):
            return env[name], name
    return None, None


def classify(env: Mapping[str, str]) -> TokenInfo:
    token, source = token_in_use(env)
    if not token:
        return TokenInfo("none", None)
    if token.startswith(USER_PREFIXES):
        return TokenInfo("user", source)
    in_actions = env.get("GITHUB_ACTIONS") == "true"
    if in_actions and env.get("GITHUB_TOKEN") == token:
        return TokenInfo("workflow", source)
    if token.startswith(INSTALLATION_PREFIX):
        return TokenInfo("installation", source)
    return TokenInfo("unknown", source)


def require_admin_token(env: Mapping[str, str], *, app_token: bool = False) -> TokenInfo:
    """ConfigError (exit 2, nothing changed) when the token cannot administer environments."""
    info = classify(env)
    if info.kind == "workflow" or (info.kind == "installation" and not app_token):
        raise ConfigError(
            f"environments cannot be changed with {info.describe()}: it never has "
            "Administration: write, and GitHub's PUT /environments needs it",
            "pass a repository admin's token in DEVOPS_AGENT_GITHUB_TOKEN (e.g. a secret "
            "ENVIRONMENTS_ADMIN_TOKEN: fine-grained PAT with Administration: read and write), or a GitHub "
            "App installation token with that permission plus --app-token (input `app-token: true`)",
            field="token",
            link=DOCS,
        )
    return info


def require_reviewer_token(env: Mapping[str, str]) -> TokenInfo:
    """ConfigError when the token cannot review deployments (it is not a user's token)."""
    info = classify(env)
    if info.kind in {"workflow", "installation"}:
        raise ConfigError(
            f"pending deployments cannot be reviewed with {info.describe()}: only a required "
            "reviewer, as a user, can approve or reject",
            "use your own token: `DEVOPS_AGENT_GITHUB_TOKEN=$(gh auth token) devops-agent approve …` "
            "(classic PAT with repo scope, or fine-grained with Deployments: read and write)",
            field="token",
            link=DOCS,
        )
    return info
