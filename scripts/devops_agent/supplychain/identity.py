"""Who built what from where: the expected builder, build type, source and workflow.

The same derivation runs when signing and when verifying (in the same workflow run in GitHub, or
on the same machine locally), so verification compares the provenance with what *this* pipeline
would have produced. Config (``sign.builder_id``, ``sign.source_uri``) and CLI flags override it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from devops_agent.core.config import Config
from devops_agent.core.errors import ConfigError

BUILD_TYPE = "https://github.com/org/devops-agent/blob/v1/docs/supply-chain.md#build-type-v1"
LOCAL_BUILDER_ID = "local://devops-agent"
LOCAL_WORKFLOW_REF = "local"


@dataclass(frozen=True)
class BuildIdentity:
    """Expected/recorded identity of a build. ``workflow_ref`` is ``owner/repo/path@ref`` in GitHub."""

    builder_id: str
    source_uri: str
    workflow_ref: str
    build_type: str = BUILD_TYPE
    commit: str | None = None
    invocation_id: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def _git_remote(app_dir: Path) -> str | None:
    import subprocess

    try:
        proc = subprocess.run(
            ["git", "-C", str(app_dir), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    url = proc.stdout.strip()
    return url or None


def source_uri_from_remote(url: str) -> str:
    """A git remote URL → ``git+https://host/owner/repo`` (credentials stripped)."""
    text = url.strip()
    if text.startswith("git@") and ":" in text:  # scp-like syntax
        host, path = text[4:].split(":", 1)
        text = f"https://{host}/{path}"
    if "://" in text:
        scheme, rest = text.split("://", 1)
        if "@" in rest.split("/", 1)[0]:
            rest = rest.split("@", 1)[1]
        text = f"{scheme}://{rest}"
    if text.endswith(".git"):
        text = text[:-4]
    return text if text.startswith("git+") else f"git+{text}"


def derive_identity(
    config: Config,
    app_dir: Path,
    env: Mapping[str, str],
    *,
    commit: str | None = None,
    run_id: str | None = None,
) -> BuildIdentity:
    """The identity of a build by this pipeline here (pure apart from a `git config` read locally)."""
    sign = config.section("sign")
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    in_gha = env.get("GITHUB_ACTIONS") == "true"
    repo = env.get("GITHUB_REPOSITORY", "")
    workflow_ref = env.get("GITHUB_WORKFLOW_REF", "") if in_gha else ""
    if in_gha and (not repo or not workflow_ref):
        raise ConfigError(
            "GITHUB_REPOSITORY / GITHUB_WORKFLOW_REF are not set inside GitHub Actions",
            "run the stage from a workflow job (the runner sets them) or unset GITHUB_ACTIONS",
            field="environment",
        )
    builder_id = str(sign.get("builder_id") or "")
    if not builder_id:
        builder_id = f"{server}/{signer_workflow(env)}" if in_gha else LOCAL_BUILDER_ID
    source_uri = str(sign.get("source_uri") or "")
    if not source_uri:
        if in_gha:
            source_uri = f"git+{server}/{repo}"
        else:
            remote = _git_remote(app_dir)
            source_uri = source_uri_from_remote(remote) if remote else f"local://{config.app.name}"
    if in_gha:
        invocation = (
            f"{server}/{repo}/actions/runs/{env.get('GITHUB_RUN_ID', '')}"
            f"/attempts/{env.get('GITHUB_RUN_ATTEMPT', '1')}"
        )
        commit = commit or env.get("GITHUB_SHA") or None
    else:
        invocation = f"local:{run_id}" if run_id else ""
    inputs = _workflow_inputs(env) if in_gha else {"app": config.app.name}
    return BuildIdentity(
        builder_id=builder_id,
        source_uri=source_uri,
        workflow_ref=workflow_ref or LOCAL_WORKFLOW_REF,
        commit=commit,
        invocation_id=invocation or None,
        inputs=MappingProxyType(inputs),
    )


def signer_workflow(env: Mapping[str, str]) -> str:
    """The workflow that builds and signs, ``owner/repo/path@ref``: the action input
    `signer-workflow`, else ``$DEVOPS_AGENT_SIGNER_WORKFLOW`` (set once per job for stages that call
    verify indirectly, e.g. deploy), else the run's GITHUB_WORKFLOW_REF. From a reusable workflow pass
    its own ref (``job.workflow_ref``): that is the identity Fulcio certifies."""
    for name in ("DEVOPS_AGENT_INPUT_SIGNER_WORKFLOW", "DEVOPS_AGENT_SIGNER_WORKFLOW", "GITHUB_WORKFLOW_REF"):
        value = env.get(name, "").strip()
        if value:
            return value
    return ""


def _workflow_inputs(env: Mapping[str, str]) -> dict[str, Any]:
    """The caller's workflow inputs, passed as JSON via the action input `workflow-inputs`."""
    raw = env.get("DEVOPS_AGENT_INPUT_WORKFLOW_INPUTS", "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"is not JSON ({exc.msg})",
            "pass `workflow-inputs: ${{ toJSON(inputs) }}`",
            field="input 'workflow-inputs'",
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(
            "must be a JSON object", "pass `${{ toJSON(inputs) }}`", field="input 'workflow-inputs'"
        )
    return value
