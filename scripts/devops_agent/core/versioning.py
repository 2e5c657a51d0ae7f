"""Release version: from config, else derived from the latest semver git tag (pure + git I/O)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from devops_agent.core.errors import ConfigError

NO_TAG_VERSION = "0.0.0"


@dataclass(frozen=True)
class GitState:
    """What version derivation needs from git (None when not a git checkout)."""

    tags: tuple[str, ...]
    commits_since: int
    short_sha: str | None
    latest_tag: str | None = None


def parse_tag(tag: str) -> object | None:
    """A semver.Version for ``v1.2.3`` / ``1.2.3-rc.1``; None for anything else."""
    import semver

    text = tag[1:] if tag[:1] in {"v", "V"} else tag
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        return None


def latest_semver_tag(tags: Iterable[str]) -> str | None:
    import semver

    best: tuple[semver.Version, str] | None = None
    for tag in tags:
        parsed = parse_tag(tag)
        if isinstance(parsed, semver.Version) and (best is None or parsed > best[0]):
            best = (parsed, tag)
    return best[1] if best else None


def validate_version(version: str, *, field: str = "build.version") -> str:
    """Accept semver (``1.2.3``, ``v1.2.3-rc.1``) or a PEP 440 version; normalise the v-prefix away."""
    from packaging.version import InvalidVersion, Version

    if parse_tag(version) is not None:
        return version[1:] if version[:1] in {"v", "V"} else version
    try:
        return str(Version(version))
    except InvalidVersion:
        raise ConfigError(
            f"{version!r} is neither a semantic version nor a PEP 440 version",
            "use a version such as 1.4.0 or 1.4.0-rc.1",
            field=field,
        ) from None


def derive_version(configured: str | None, git: GitState | None) -> str:
    """Decide the version (pure).

    - configured → that (validated);
    - HEAD exactly at the latest semver tag → the tag without its v;
    - commits after it → next patch as a dev pre-release with build metadata
      (``1.2.4-dev.3+g1a2b3c4``), so every build is distinct and sorts after the tag;
    - no tag → ``0.0.0-dev.N+g<sha>``; not a git checkout → ``0.0.0-dev``.
    """
    import semver

    if configured:
        return validate_version(configured)
    if git is None:
        return f"{NO_TAG_VERSION}-dev"
    meta = f"+g{git.short_sha}" if git.short_sha else ""
    tag = git.latest_tag or latest_semver_tag(git.tags)
    if tag is None:
        return f"{NO_TAG_VERSION}-dev.{git.commits_since}{meta}"
    parsed = parse_tag(tag)
    assert isinstance(parsed, semver.Version)
    if git.commits_since == 0:
        return str(parsed)
    if parsed.prerelease:
        return f"{parsed.replace(build=None)}.dev.{git.commits_since}{meta}"
    return f"{parsed.bump_patch()}-dev.{git.commits_since}{meta}"


def _git(app_dir: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(app_dir), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def read_git_state(app_dir: Path) -> GitState | None:
    """Tags merged into HEAD, commits since the newest semver one, HEAD's short sha."""
    head = _git(app_dir, "rev-parse", "--short=7", "HEAD")
    if head is None:
        return None
    merged = _git(app_dir, "tag", "--merged", "HEAD") or ""
    tags = tuple(t for t in merged.splitlines() if t)
    latest = latest_semver_tag(tags)
    if latest is None:
        count = _git(app_dir, "rev-list", "--count", "HEAD")
    else:
        count = _git(app_dir, "rev-list", "--count", f"refs/tags/{latest}..HEAD")
    return GitState(tags=tags, commits_since=int(count or 0), short_sha=head, latest_tag=latest)


def git_commit(app_dir: Path) -> str | None:
    return _git(app_dir, "rev-parse", "HEAD")


def git_branch(app_dir: Path) -> str | None:
    return _git(app_dir, "rev-parse", "--abbrev-ref", "HEAD")
