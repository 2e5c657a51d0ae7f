"""`gitops` driver: commit the new image digest to a manifests repository and push it.

Argo CD / Flux (or anything watching the repository) then rolls it out. The file at
``deploy.gitops.path`` is edited with ruamel.yaml's round-trip mode (comments and layout stay):

- ``kustomize``: the ``images:`` entry whose ``name`` is ``key`` (default: deploy.image) gets
  ``digest: sha256:…`` (``newTag`` is removed: a digest pins the image);
- ``helm-values``: the dotted ``key`` (default ``image.digest``) becomes ``sha256:…``;
- ``yaml``: the dotted ``key`` (list indexes allowed, e.g. ``spec.template.spec.containers.0.image``)
  becomes ``<image>@sha256:…``.

Every deploy commit carries trailers (Devops-Agent-Environment/-Digest/-Run) so a rollback finds
it and reverts it (``git revert``), or — when it cannot — writes the last good digest in a new
commit. A push rejected because someone pushed first is rebased and retried. Optionally the
driver waits for a health URL (e.g. Argo CD's application health) or a health command; when that
fails the deploy commit is reverted before the error is raised.
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devops_agent.core.errors import ConfigError, StageFailed
from devops_agent.deploy import shell
from devops_agent.deploy.base import (
    Deployed,
    DeployOutcome,
    DriverContext,
    DriverStatus,
    Release,
    normalize_digest,
)
from devops_agent.deploy.settings import GitopsSettings

STATE_FILE = "gitops.json"
PUSH_ATTEMPTS = 3


# -- the document edit (pure) ------------------------------------------------------------------


def _yaml() -> Any:
    try:
        from ruamel.yaml import YAML
    except ImportError:  # pragma: no cover - depends on the install
        raise StageFailed(
            "the gitops driver needs ruamel.yaml",
            "install devops-agent with the deploy extra: pip install 'devops-agent[deploy]'",
        ) from None
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    return y


def _split_key(key: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in key.split(".") if p != ""]


def _walk(doc: Any, parts: list[str | int], *, create: bool, where: str) -> tuple[Any, str | int]:
    node = doc
    for part in parts[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise StageFailed(f"{where}: no list item {part}", "fix deploy.gitops.key")
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise StageFailed(f"{where}: {part!r} is not inside a mapping", "fix deploy.gitops.key")
        if part not in node:
            if not create:
                raise StageFailed(f"{where}: key {part!r} not found", "fix deploy.gitops.key")
            from ruamel.yaml.comments import CommentedMap

            node[part] = CommentedMap()
        node = node[part]
    return node, parts[-1]


def image_name_of(value: str) -> str:
    """``ghcr.io/o/app:1.2@sha256:…`` → ``ghcr.io/o/app`` (a registry port's colon is kept)."""
    name = value.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name


def _mapping_indent(text: str) -> int:
    """The indentation of a mapping nested in a mapping (ruamel guesses only sequences)."""
    previous: tuple[int, str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if previous is not None:
            prev_indent, prev_text = previous
            nested = (
                prev_text.endswith(":") and not prev_text.startswith("- ") and not stripped.startswith("- ")
            )
            if nested and indent > prev_indent:
                return indent - prev_indent
        previous = (indent, stripped.split(" #", 1)[0].rstrip())
    return 2


@dataclass(frozen=True)
class Edit:
    text: str
    old: str | None  # the digest or image reference the file held
    new: str


def update_manifest(text: str, fmt: str, key: str | None, release: Release, *, where: str) -> Edit:
    """Put ``release``'s digest into a manifest text; returns the new text (same text: no change)."""
    y = _yaml()
    doc = y.load(text) if text.strip() else None
    if doc is None:
        from ruamel.yaml.comments import CommentedMap

        doc = CommentedMap()
    else:
        from ruamel.yaml.util import load_yaml_guess_indent

        _, seq_indent, block_seq_indent = load_yaml_guess_indent(text)
        y.indent(
            mapping=_mapping_indent(text),
            sequence=seq_indent or 2,
            offset=block_seq_indent or 0,
        )
    old: str | None
    if fmt == "kustomize":
        name = key or release.image
        if not name:
            raise ConfigError(
                "kustomize needs the image name",
                "set deploy.gitops.key (the images[].name to pin) or deploy.image",
                field="deploy.gitops.key",
            )
        images = doc.setdefault("images", [])
        entry = next((e for e in images if isinstance(e, dict) and e.get("name") == name), None)
        if entry is None:
            from ruamel.yaml.comments import CommentedMap

            entry = CommentedMap([("name", name)])
            images.append(entry)
        old = entry.get("digest")
        entry["digest"] = release.ref
        entry.pop("newTag", None)
        new = release.ref
    elif fmt == "helm-values":
        parent, leaf = _walk(doc, _split_key(key or "image.digest"), create=True, where=where)
        old = parent.get(leaf) if isinstance(parent, dict) else None
        parent[leaf] = new = release.ref
    elif fmt == "yaml":
        if not key:
            raise ConfigError(
                "the yaml format needs the dotted key of the image field",
                "e.g. key: spec.template.spec.containers.0.image",
                field="deploy.gitops.key",
            )
        parent, leaf = _walk(doc, _split_key(key), create=False, where=where)
        try:
            current = parent[leaf]
        except (KeyError, IndexError, TypeError):
            raise StageFailed(f"{where}: key {key!r} not found", "fix deploy.gitops.key") from None
        old = str(current) if current is not None else None
        image = release.image or (image_name_of(old) if old and ("/" in old or ":" in old) else None)
        new = f"{image}@{release.ref}" if image else release.ref
        parent[leaf] = new
    else:
        raise ConfigError(
            f"unknown format {fmt!r}", "use kustomize, helm-values or yaml", field="deploy.gitops.format"
        )
    out = io.StringIO()
    y.dump(doc, out)
    return Edit(out.getvalue(), None if old is None else str(old), new)


def digest_in(value: str | None) -> str | None:
    """The sha256 digest inside a manifest value, if there is one."""
    if not value or "sha256:" not in value:
        return None
    try:
        return normalize_digest("sha256:" + value.split("sha256:", 1)[1][:64])
    except ConfigError:
        return None


def read_manifest_value(text: str, fmt: str, key: str | None, image: str | None) -> str | None:
    y = _yaml()
    doc = y.load(text) if text.strip() else None
    if doc is None:
        return None
    try:
        if fmt == "kustomize":
            name = key or image
            for entry in doc.get("images") or []:
                if isinstance(entry, dict) and entry.get("name") == name:
                    return None if entry.get("digest") is None else str(entry.get("digest"))
            return None
        parent, leaf = _walk(doc, _split_key(key or "image.digest"), create=False, where="manifest")
        value = parent[leaf]
    except (StageFailed, KeyError, IndexError, TypeError, AttributeError):
        return None
    return None if value is None else str(value)


# -- git -------------------------------------------------------------------------------------


def git_env(cfg: GitopsSettings, env: Mapping[str, str]) -> dict[str, str]:
    """Author/committer identity, no prompts, and an HTTPS token via GIT_CONFIG_* (never argv)."""
    name, _, email = cfg.author.partition("<")
    out = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": name.strip() or "devops-agent",
        "GIT_AUTHOR_EMAIL": email.rstrip(">").strip() or "devops-agent@users.noreply.github.com",
        "GIT_COMMITTER_NAME": name.strip() or "devops-agent",
        "GIT_COMMITTER_EMAIL": email.rstrip(">").strip() or "devops-agent@users.noreply.github.com",
    }
    if cfg.token_env:
        token = env.get(cfg.token_env, "")
        if not token:
            raise ConfigError(
                f"environment variable {cfg.token_env} is empty",
                f"pass the push token as the secret {cfg.token_env} (env:) or remove deploy.gitops.token_env",
                field="deploy.gitops.token_env",
            )
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        out.update(
            {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
        )
    return out


class GitopsDriver:
    name = "gitops"
    supports_canary = False

    def __init__(self, ctx: DriverContext) -> None:
        if ctx.settings.gitops is None:
            raise StageFailed("deploy.gitops is missing", "add deploy.gitops.repository, path and format")
        self.ctx = ctx
        self.cfg: GitopsSettings = ctx.settings.gitops
        self.state_path = ctx.state_dir / STATE_FILE
        self._env = git_env(self.cfg, ctx.env)

    # -- git plumbing ----------------------------------------------------------------------------
    def _git(self, repo: Path | None, *args: str, check: bool = True) -> shell.Completed:
        argv = ["git", *args] if repo is None else ["git", "-C", str(repo), *args]
        result = shell.run(
            argv, cwd=self.ctx.app_dir, env=self._env, timeout=self.ctx.settings.timeout_seconds
        )
        if check:
            shell.require_ok(result, f"git {args[0]}", "check deploy.gitops.repository, branch and access")
        return result

    def _clone(self, tmp: Path) -> Path:
        repo = tmp / "manifests"
        self._git(
            None,
            "clone",
            "--quiet",
            "--branch",
            self.cfg.branch,
            "--single-branch",
            self.cfg.repository,
            str(repo),
        )
        return repo

    def _file(self, repo: Path) -> Path:
        return repo / self.cfg.path

    def _read_value(self, repo: Path) -> str | None:
        path = self._file(repo)
        if not path.is_file():
            return None
        return read_manifest_value(
            path.read_text(encoding="utf-8"), self.cfg.format, self.cfg.key, self.ctx.settings.image
        )

    def _push(self, repo: Path) -> None:
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            result = self._git(
                repo, "push", "--quiet", "origin", f"HEAD:refs/heads/{self.cfg.branch}", check=False
            )
            if result.ok:
                return
            if attempt == PUSH_ATTEMPTS:
                shell.require_ok(result, "git push", "check push access to deploy.gitops.repository")
            self.ctx.log(f"push rejected (attempt {attempt}); rebasing on the remote branch and retrying")
            self._git(repo, "pull", "--quiet", "--rebase", "origin", self.cfg.branch)

    def _commit(self, repo: Path, subject: str, release: Release, action: str) -> str:
        message = (
            f"{subject}\n\n"
            f"Devops-Agent-Action: {action}\n"
            f"Devops-Agent-Environment: {self.ctx.environment}\n"
            f"Devops-Agent-Digest: {release.ref}\n"
            f"Devops-Agent-Version: {release.version}\n"
            + (f"Devops-Agent-Run: {release.run_id}\n" if release.run_id else "")
        )
        self._git(repo, "add", "--", self.cfg.path)
        self._git(repo, "commit", "--quiet", "-m", message)
        return self._git(repo, "rev-parse", "HEAD").output.strip()

    def _write(self, repo: Path, release: Release) -> Edit:
        path = self._file(repo)
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        edit = update_manifest(text, self.cfg.format, self.cfg.key, release, where=self.cfg.path)
        if edit.text != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(edit.text, encoding="utf-8")
        return edit

    # -- state -----------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_path.read_text(encoding="utf-8"))
            return data
        except FileNotFoundError:
            return {}

    def _save(self, data: Mapping[str, Any]) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(dict(data), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def _known(self, digest: str | None) -> Release | None:
        """Our remembered release for a digest read from the repository (version etc.)."""
        if digest is None:
            return None
        for raw in (self._load().get("live"), self._load().get("previous")):
            if raw and normalize_digest(raw["digest"]) == digest:
                return Release.from_json(raw)
        return Release(digest, "unknown", image=self.ctx.settings.image)

    # -- health wait -----------------------------------------------------------------------------
    def _wait_healthy(self, release: Release, commit: str) -> str | None:
        """None when healthy (or nothing to wait for), else the reason it is not."""
        if not self.cfg.health_url and not self.cfg.health_command:
            return None
        deadline = time.monotonic() + self.cfg.health_timeout_seconds
        env = release.env(self.ctx.environment)
        env["DEVOPS_AGENT_COMMIT"] = commit
        reason = "not checked"
        delay = 0.5
        while True:
            if self.cfg.health_url:
                reason = _http_ok(
                    self.cfg.health_url, timeout=min(10.0, max(0.5, deadline - time.monotonic()))
                )
            else:
                assert self.cfg.health_command is not None
                result = shell.shell(
                    self.cfg.health_command,
                    cwd=self.ctx.app_dir,
                    env=env,
                    timeout=max(1.0, deadline - time.monotonic()),
                )
                reason = "" if result.ok else f"health command exit {result.exit_code}: {result.tail(3)}"
            if not reason:
                return None
            if time.monotonic() + delay > deadline:
                return reason
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    # -- the contract ----------------------------------------------------------------------------
    def deploy(self, release: Release, *, canary: bool = False) -> DeployOutcome:
        if canary:
            raise StageFailed(
                "the gitops driver has no canary",
                "use Argo Rollouts/Flagger in the cluster, or remove validate.canary",
            )
        with tempfile.TemporaryDirectory(prefix="devops-agent-gitops-") as tmp:
            repo = self._clone(Path(tmp))
            before = digest_in(self._read_value(repo))
            previous_release = self._known(before)
            edit = self._write(repo, release)
            data = self._load()
            if before == release.digest:
                deployed = Deployed(
                    release, self.ctx.settings.url, None, "already in the manifests repository"
                )
                return DeployOutcome(deployed, changed=False, action="unchanged")
            subject = f"deploy({self.ctx.environment}): {release.version} {release.ref[:19]}"
            commit = self._commit(repo, subject, release, "deploy")
            self._push(repo)
            self.ctx.log(f"pushed {commit[:12]} to {self.cfg.branch}: {self.cfg.path} → {edit.new}")
            self._save(
                {
                    "live": release.to_json(),
                    "previous": previous_release.to_json() if previous_release else data.get("live"),
                    "commit": commit,
                }
            )
            problem = self._wait_healthy(release, commit)
            if problem:
                self._git(repo, "revert", "--no-edit", commit)
                self._push(repo)
                self._save(data)
                raise StageFailed(
                    f"{release.version} was pushed ({commit[:12]}) but never became healthy: {problem}; "
                    "the deploy commit was reverted",
                    "check the GitOps controller and the release; "
                    "raise deploy.gitops.health_timeout_seconds if it is slow",
                )
            previous = Deployed(previous_release, self.ctx.settings.url) if previous_release else None
            deployed = Deployed(release, self.ctx.settings.url, None, f"commit {commit[:12]}")
            return DeployOutcome(
                deployed, changed=True, action="deployed", previous=previous, notes=(f"commit {commit}",)
            )

    def rollback(self, target: Release | None, *, failed: Release | None = None) -> DeployOutcome:
        with tempfile.TemporaryDirectory(prefix="devops-agent-gitops-") as tmp:
            repo = self._clone(Path(tmp))
            now = digest_in(self._read_value(repo))
            failed_digest = failed.digest if failed else now
            if target is None:
                prev = self._load().get("previous")
                if not prev:
                    raise StageFailed(
                        "nothing to roll back to: no previous release recorded", "pass --to DIGEST"
                    )
                target = Release.from_json(prev)
            failed_known = self._known(now)
            failed_deployed = Deployed(failed_known, self.ctx.settings.url) if failed_known else None
            if now == target.digest:
                return DeployOutcome(
                    Deployed(target, self.ctx.settings.url), changed=False, action="unchanged"
                )
            notes: list[str] = []
            reverted = False
            if failed_digest and now == failed_digest:
                found = self._git(
                    repo,
                    "log",
                    "-n",
                    "1",
                    "--format=%H",
                    "--fixed-strings",
                    f"--grep=Devops-Agent-Digest: sha256:{failed_digest}",
                    "--",
                    self.cfg.path,
                ).output.strip()
                if found:
                    result = self._git(repo, "revert", "--no-edit", found, check=False)
                    if result.ok and digest_in(self._read_value(repo)) == target.digest:
                        reverted = True
                        notes.append(f"reverted {found[:12]}")
                    elif result.ok:
                        self._git(repo, "reset", "--quiet", "--hard", "HEAD~1")
                    else:
                        self._git(repo, "revert", "--abort", check=False)
            if not reverted:
                self._write(repo, target)
                subject = f"rollback({self.ctx.environment}): {target.version} {target.ref[:19]}"
                self._commit(repo, subject, target, "rollback")
                notes.append("wrote the last good digest (no revertable deploy commit)")
            self._push(repo)
            commit = self._git(repo, "rev-parse", "HEAD").output.strip()
            self._save({"live": target.to_json(), "previous": None, "commit": commit})
            problem = self._wait_healthy(target, commit)
            if problem:
                raise StageFailed(
                    f"rolled back to {target.version} ({commit[:12]}) "
                    f"but it did not become healthy: {problem}",
                    "check the GitOps controller; the manifests repository holds the last good digest",
                )
            return DeployOutcome(
                Deployed(target, self.ctx.settings.url, None, f"commit {commit[:12]}"),
                changed=True,
                action="rolled-back",
                previous=failed_deployed,
                notes=tuple(notes),
            )

    def current(self) -> Deployed | None:
        with tempfile.TemporaryDirectory(prefix="devops-agent-gitops-") as tmp:
            repo = self._clone(Path(tmp))
            release = self._known(digest_in(self._read_value(repo)))
        return Deployed(release, self.ctx.settings.url) if release else None

    def status(self) -> DriverStatus:
        live = self.current()
        prev_raw = self._load().get("previous")
        previous = Deployed(Release.from_json(prev_raw), self.ctx.settings.url) if prev_raw else None
        healthy: bool | None = None
        detail = f"{self.cfg.repository} {self.cfg.branch}:{self.cfg.path}"
        if self.cfg.health_url:
            problem = _http_ok(self.cfg.health_url, timeout=10.0)
            healthy = not problem
            detail += f"; health: {problem or 'ok'}"
        return DriverStatus(self.name, live, previous, None, healthy, detail)

    def promote_canary(self) -> DeployOutcome:
        raise StageFailed("the gitops driver has no canary", "remove validate.canary")

    def stop(self) -> list[str]:
        return []


def _http_ok(url: str, *, timeout: float) -> str:
    """'' when ``url`` answers 2xx, else why not."""
    import requests

    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return f"{url}: {type(exc).__name__}"
    if 200 <= response.status_code < 300:
        return ""
    return f"{url} answered {response.status_code}"
