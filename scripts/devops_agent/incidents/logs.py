"""Log excerpts of failed jobs: the lines around the first error, from the jobs API.

``GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs`` answers with a redirect to the plain-text
log (needs ``actions: read``); PyGithub does not cover it and the platform interface has no call
for it, so it is fetched here with ``requests``. A log that cannot be read is reported as a note,
never as a failure of the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

_TIMESTAMP = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
_ERROR = re.compile(
    r"##\[error\]|\berror\b|Traceback \(most recent call last\)|\bFAILED\b|exit code [1-9]", re.I
)
_NOISE = re.compile(r"^##\[(?:group|endgroup|debug)\]")
MAX_LOG_BYTES = 8 * 1024 * 1024
MAX_LINE = 400


def clean_lines(text: str) -> list[str]:
    """Log lines without runner timestamps, group markers and overlong tails."""
    out = []
    for raw in text.splitlines():
        line = _TIMESTAMP.sub("", raw.rstrip("\r"))
        if _NOISE.match(line):
            continue
        line = line.replace("##[error]", "error: ").replace("##[warning]", "warning: ")
        if len(line) > MAX_LINE:
            line = line[:MAX_LINE] + " …"
        out.append(line)
    return out


def excerpt_log(text: str, max_lines: int = 40, context: int = 5) -> str:
    """The part of a job log worth reading in an issue.

    From ``context`` lines before the first error line, at most ``max_lines`` lines; when no line
    looks like an error, the last ``max_lines`` lines (where a failing step usually ends).
    """
    lines = clean_lines(text)
    if max_lines <= 0 or not lines:
        return ""
    first = next((i for i, line in enumerate(lines) if _ERROR.search(line)), None)
    if first is None:
        chosen = lines[-max_lines:]
        skipped_before = len(lines) - len(chosen)
        skipped_after = 0
    else:
        start = max(first - context, 0)
        chosen = lines[start : start + max_lines]
        skipped_before = start
        skipped_after = len(lines) - start - len(chosen)
    head = [f"… {skipped_before} earlier lines omitted"] if skipped_before else []
    tail = [f"… {skipped_after} later lines omitted"] if skipped_after else []
    return "\n".join([*head, *chosen, *tail])


@dataclass(frozen=True)
class LogResult:
    text: str | None
    note: str = ""


def fetch_job_log(
    api_url: str, repository: str, job_id: int, token: str, *, timeout: float = 20.0
) -> LogResult:
    """The plain-text log of a job (its last ``MAX_LOG_BYTES``), or a note saying why not."""
    import requests

    url = f"{api_url.rstrip('/')}/repos/{quote(repository, safe='/')}/actions/jobs/{job_id}/logs"
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    try:
        # requests drops the Authorization header when redirected to another host (blob storage)
        with requests.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=True) as resp:
            if resp.status_code in (401, 403):
                return LogResult(None, f"not readable (HTTP {resp.status_code}): grant `actions: read`")
            if resp.status_code == 404:
                return LogResult(
                    None, "not available (HTTP 404): the log expired or the job is still running"
                )
            if resp.status_code >= 400:
                return LogResult(None, f"not available (HTTP {resp.status_code})")
            data = b""
            for chunk in resp.iter_content(chunk_size=65536):
                data = (data + chunk)[-MAX_LOG_BYTES:]
    except requests.RequestException as exc:
        return LogResult(None, f"not available ({type(exc).__name__})")
    return LogResult(data.decode("utf-8", errors="replace"))
