"""One exception hierarchy; the CLI edge turns it into exit codes.

Every message carries the cause and the fix (and a link when one helps), in the spirit of
pypa/gh-action-pypi-publish's error templates.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class DevopsAgentError(Exception):
    """Base class. ``exit_code`` is what the CLI returns."""

    exit_code = EXIT_FAILED

    def __init__(self, cause: str, fix: str | None = None, *, link: str | None = None) -> None:
        self.cause = cause
        self.fix = fix
        self.link = link
        super().__init__(self.render())

    def render(self) -> str:
        text = self.cause
        if self.fix:
            text += f"\n  fix: {self.fix}"
        if self.link:
            text += f"\n  see: {self.link}"
        return text


class ConfigError(DevopsAgentError):
    """Bad input: configuration, CLI arguments or action inputs. Nothing was changed."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        cause: str,
        fix: str | None = None,
        *,
        field: str | None = None,
        link: str | None = None,
    ) -> None:
        self.field = field
        if field and not cause.startswith(field):
            cause = f"{field}: {cause}"
        super().__init__(cause, fix, link=link)


class GateFailed(DevopsAgentError):
    """A policy gate decided to block (scan findings, failed validation, freeze window...)."""

    exit_code = EXIT_FAILED


class StageFailed(DevopsAgentError):
    """An operation of a stage failed (a build command exited non-zero, a deploy failed...)."""

    exit_code = EXIT_FAILED


class PlatformError(DevopsAgentError):
    """The platform (GitHub API or the local store) failed or refused a request."""

    exit_code = EXIT_FAILED


class RateLimitError(PlatformError):
    """A GitHub rate limit persisted beyond the retry budget."""
