"""The act layer: perform a plan's deletions, one at a time, in the plan's order.

- Sequential: never more than one write in flight; the GitHub backend paces writes
  (``RetryPolicy.write_interval``) and waits out rate limits as GitHub asks.
- Idempotent: a ``404`` (the platform's ``delete_*`` returns False) means already gone — done.
- A failure of one deletion is recorded and the run goes on; a rate limit that outlasts the retry
  budget stops the run (the remaining deletions are reported as not attempted) — a re-run picks
  up where it stopped because it plans again from fresh listings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, cast

from devops_agent.cleanup.model import Deletion
from devops_agent.core.errors import PlatformError, RateLimitError
from devops_agent.core.platform import PackageOwner, PackageType, Platform

Status = Literal["planned", "deleted", "already-gone", "failed", "not-attempted"]


@dataclass(frozen=True)
class Outcome:
    deletion: Deletion
    status: Status
    error: str | None = None


class TagDeleter(Protocol):
    """What the act layer needs for git tags (see ``collect.GitTags``)."""

    def delete(self, name: str) -> bool: ...


def delete_one(deletion: Deletion, platform: Platform | None, tags: TagDeleter | None) -> bool:
    """Perform one deletion; True when it deleted something, False when it was already gone."""
    target = deletion.target
    if target == "tags":
        if tags is None:
            raise PlatformError(
                "no git checkout to delete tags from", "run in a checkout with the tags fetched"
            )
        return tags.delete(deletion.id)
    if platform is None:
        raise PlatformError(
            f"no platform to delete {target}", "configure the GitHub token or the local state"
        )
    if target == "branches":
        return platform.delete_branch(deletion.id)
    if target == "artifacts":
        return platform.delete_artifact(int(deletion.id))
    if target == "caches":
        return platform.delete_cache(int(deletion.id))
    if target == "packages":
        ref = deletion.package
        if ref is None:
            raise PlatformError(
                f"deletion {deletion.id} lacks its package", "this is a bug; please report it"
            )
        return platform.delete_package_version(
            PackageOwner(ref.owner_kind, ref.owner), cast(PackageType, ref.type), ref.name, int(deletion.id)
        )
    raise PlatformError(f"unknown cleanup target {target!r}", "this is a bug; please report it")


def execute(
    deletions: Sequence[Deletion],
    platform: Platform | None,
    *,
    tags: TagDeleter | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> tuple[Outcome, ...]:
    outcomes: list[Outcome] = []
    stopped: str | None = None
    for deletion in deletions:
        if stopped is not None:
            outcomes.append(Outcome(deletion, "not-attempted", stopped))
            continue
        try:
            outcome = Outcome(deletion, "deleted" if delete_one(deletion, platform, tags) else "already-gone")
        except RateLimitError as exc:
            stopped = f"stopped by a rate limit: {exc.cause}"
            outcome = Outcome(deletion, "failed", exc.cause)
        except PlatformError as exc:
            outcome = Outcome(deletion, "failed", exc.cause)
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return tuple(outcomes)
