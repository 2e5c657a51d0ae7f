"""Redaction of secrets in text that ends up in issues, comments and the context file.

Two layers: the values registered with :meth:`Actions.mask` (tokens from the environment and any
secret the caller masked) are replaced by ``***``; and well-known credential shapes are replaced
even when nobody registered them (a token printed by a failing command must not reach an issue).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from devops_agent.core.gha import Actions

REDACTED = "***"

#: (name, pattern); group 1, when present, is kept (e.g. the header name before the secret).
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "private key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
    ),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("authorization header", re.compile(r"(?i)\b(authorization:\s*(?:bearer|token|basic)\s+)[^\s'\"]+")),
    ("URL credentials", re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(?=@)")),
    (
        "secret assignment",
        re.compile(
            r"(?i)\b((?:[a-z0-9_]*?(?:password|passwd|secret|token|api[_-]?key|private[_-]?key))"
            r"\s*[=:]\s*['\"]?)[^\s'\"]{4,}"
        ),
    ),
)

#: Environment variables whose values are secrets by name.
_SECRET_ENV = re.compile(r"(?i)(token|secret|password|passwd|private_key|api_key|credentials)")
_NOT_SECRET_ENV = frozenset({"GITHUB_TOKEN_URL", "ACTIONS_ID_TOKEN_REQUEST_URL"})


def redact_patterns(text: str) -> str:
    for _name, pattern in PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + REDACTED, text)
    return text


def mask_environment(actions: Actions, env: Mapping[str, str]) -> int:
    """Register every secret-looking environment value with ``actions`` (``::add-mask::`` in CI).

    Returns how many values were masked. Short values (< 6 characters) are not masked: they would
    blank unrelated text and cannot be a real credential.
    """
    count = 0
    for name, value in env.items():
        if name in _NOT_SECRET_ENV or not _SECRET_ENV.search(name) or len(value) < 6:
            continue
        actions.mask(value)
        count += 1
    return count


def redact(text: str, actions: Actions | None = None) -> str:
    """Both layers: registered secrets, then credential patterns."""
    if actions is not None:
        text = actions.redact(text)
    return redact_patterns(text)
